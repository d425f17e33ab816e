"""Two linked clones of the lab image boot under libvirt, each with its own fixed DHCP
address and its own SSH host keys, reached over SSH with the lab key (paramiko)."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest
from conftest import PREFIX, apply, free_cidr, leftovers, step_for

from drivers.libvirt import LibvirtDriver
from lab.image import build_image, image_path, lab_keypair
from orchestrator.plan import Action

pytestmark = [pytest.mark.libvirt, pytest.mark.slow]
BOOT_TIMEOUT = 300.0


def wait_for_ssh(address: str, key: Path, deadline: float) -> tuple[paramiko.SSHClient, float]:
    """A connected client as root@address, and the seconds it took; fails past deadline."""
    started = time.monotonic()
    last: Exception | None = None
    pkey = paramiko.Ed25519Key.from_private_key_file(str(key))
    while time.monotonic() < deadline:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # fresh lab guests
        try:
            client.connect(address, username="root", pkey=pkey, timeout=5, banner_timeout=10,
                           auth_timeout=10, look_for_keys=False, allow_agent=False)
            return client, time.monotonic() - started
        except (TimeoutError, OSError, paramiko.SSHException) as exc:
            last = exc
            client.close()
            time.sleep(2)
    raise AssertionError(f"no SSH to {address} in time: {last!r}")


def run(client: paramiko.SSHClient, command: str) -> str:
    _, stdout, stderr = client.exec_command(command, timeout=30)
    out = stdout.read().decode()
    assert stdout.channel.recv_exit_status() == 0, stderr.read().decode()
    return out


@pytest.fixture(scope="session")
def guests(driver: LibvirtDriver, conn: Any) -> Iterator[dict[str, Any]]:
    """Network, pool, base volume from the lab image, two linked clones, two running
    domains; torn down through the driver at the end (and proven gone)."""
    build_image()  # cached: CI builds it in .ci/install.d/30-image.sh
    key, public = lab_keypair()
    cidr = free_cidr()
    base = cidr.rsplit(".", 1)[0]
    names = [f"{PREFIX}-g{i}" for i in (1, 2)]
    macs = [f"52:54:00:0b:00:0{i}" for i in (1, 2)]
    ips = [f"{base}.{11 + i}" for i in range(2)]
    net = {"name": f"{PREFIX}-labnet", "cidr": cidr,
           "hosts": [{"mac": m, "ip": ip, "name": n} for m, ip, n in zip(macs, ips, names,
                                                                          strict=True)]}
    pool = {"name": f"{PREFIX}-labpool"}
    base_vol = {"pool": pool["name"], "name": f"{PREFIX}-base.qcow2", "source": str(image_path())}
    vols = [{"pool": pool["name"], "name": f"{n}.qcow2", "backing": base_vol["name"]}
            for n in names]
    doms = [{"name": n, "memory_mib": 512, "vcpus": 1,
             "disks": [{"pool": pool["name"], "volume": v["name"]}],
             "nics": [{"network": net["name"], "mac": m}], "ssh_authorized_keys": [public],
             "shutdown_timeout": 20}
            for n, v, m in zip(names, vols, macs, strict=True)]
    steps: list[tuple[str, dict[str, Any]]] = [
        ("libvirt.network", net), ("libvirt.pool", pool), ("libvirt.volume", base_vol),
        *[("libvirt.volume", v) for v in vols], *[("libvirt.domain", d) for d in doms]]
    outputs: dict[str, dict[str, Any]] = {}
    try:
        t0 = time.monotonic()
        for kind, inputs in steps:
            outputs[inputs["name"]] = apply(driver, kind, inputs)
        started = time.monotonic()
        deadline = started + BOOT_TIMEOUT
        with concurrent.futures.ThreadPoolExecutor(2) as pool_:
            clients = list(pool_.map(lambda ip: wait_for_ssh(ip, key, deadline), ips))
        yield {"names": names, "ips": ips, "macs": macs, "doms": doms, "vols": vols,
               "base": base_vol, "outputs": outputs, "clients": [c for c, _ in clients],
               "ssh_seconds": [round(s, 1) for _, s in clients],
               "define_seconds": round(started - t0, 1)}
        for client, _ in clients:
            client.close()
    finally:
        for kind, inputs in reversed(steps):
            apply(driver, kind, inputs, Action.DELETE)
    assert leftovers(conn) == [], "the driver's deletes left objects behind"


def test_clones_boot_to_ssh_with_their_fixed_dhcp_addresses(guests: dict[str, Any],
                                                          capsys: Any) -> None:
    seen = []
    for client, ip, mac in zip(guests["clients"], guests["ips"], guests["macs"], strict=True):
        addrs = run(client, "ip -4 -o addr show scope global")
        assert f"inet {ip}/" in addrs
        link = run(client, "ip -o link")
        assert mac in link
        seen.append(ip)
    assert len(set(seen)) == 2
    with capsys.disabled():
        print(f"\n  define+start {guests['define_seconds']} s; boot to SSH "
              f"{guests['ssh_seconds']} s (two guests at once)")


def test_clones_have_distinct_ssh_host_keys_and_machine_ids(guests: dict[str, Any]) -> None:
    host_keys = [c.get_transport().get_remote_server_key().get_base64()
                 for c in guests["clients"]]
    assert len(set(host_keys)) == 2
    ids = [run(c, "cat /etc/machine-id").strip() for c in guests["clients"]]
    assert all(len(i) == 32 for i in ids) and ids[0] != ids[1]


def test_clones_are_linked_to_one_base_volume(driver: LibvirtDriver,
                                              guests: dict[str, Any]) -> None:
    base_path = guests["outputs"][guests["base"]["name"]]["path"]
    for vol in guests["vols"]:
        out = guests["outputs"][vol["name"]]
        assert out["backing"] == base_path
        assert driver.read(step_for("libvirt.volume", vol), out).drift == {}


def test_boot_is_visible_in_the_serial_console_log(guests: dict[str, Any]) -> None:
    for dom in guests["doms"]:
        log = Path(guests["outputs"][dom["name"]]["console_log"])
        # sshd can answer before getty has printed its prompt on ttyS0: wait (bounded)
        deadline = time.monotonic() + 120
        text = log.read_text(errors="replace")
        while " login: " not in text and time.monotonic() < deadline:
            time.sleep(1)
            text = log.read_text(errors="replace")
        assert "Linux version" in text  # the kernel printed on ttyS0
        assert "Started ssh.service" in text or "OpenBSD Secure Shell server" in text
        assert " login: " in text  # getty on ttyS0


def test_guests_read_back_without_drift_and_run_on_the_chosen_accelerator(
        driver: LibvirtDriver, guests: dict[str, Any]) -> None:
    verdict = driver.accelerator(driver.settings.uri)
    for dom in guests["doms"]:
        observed = driver.read(step_for("libvirt.domain", dom), guests["outputs"][dom["name"]])
        assert observed.exists and observed.drift == {}
        assert observed.outputs["accel"] == verdict.accel.value
        want_type = "kvm" if verdict.accel.value == "kvm" else "qemu"
        assert observed.outputs["domain_type"] == want_type
