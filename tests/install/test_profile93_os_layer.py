"""Profile 93 (Proxmox VE + Ceph) in the lab up to its OS layer, through the real CLI.

``orch lab up --bare-metal`` makes three blank-disk guests, powered off, behind the
sushy-tools emulator, and writes their inventory; ``orch apply --target pve.os-install``
with that inventory checks their hardware over Redfish, powers them off and installs the lab
image through virtual media (the installer ISO on 127.0.0.1), then waits for SSH. testinfra
checks each installed system; ``orch plan`` afterwards must show the Proxmox and Ceph
layers as creates and nothing in the OS layer left to create; ``orch lab down`` removes it
all.

Two lab adaptations, both printed by the test:

* ``debian_iso`` is overridden with the installer ISO's loopback URL (``-p``);
* ``pve.boot-mode`` asks for UEFI, which the lab cannot honour: sushy-tools advertises no
  BootSourceOverrideMode for a BIOS guest (so the driver refuses any mode), there is no
  OVMF on this machine, and the lab image and the installer boot with BIOS GRUB. Unless
  the profile has a ``boot_mode`` parameter (then ``-p boot_mode=``, i.e. leave it), the
  test applies a copy of the profile whose only change is that the step leaves the mode
  out, beside a link to the repository's playbooks.

The profile needs three nodes (Ceph and corosync quorum preflights), so this test boots
three 512 MiB TCG guests twice (installer, then the installed system).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.install.install_support import first_boot_device, installed_host, media_inserted

pytestmark = [pytest.mark.slow, pytest.mark.libvirt, pytest.mark.bmc]

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "profiles" / "93-proxmox-ceph.yaml"
NODES = ("pve-1", "pve-2", "pve-3")
TARGET = "pve.os-install"
OS_LAYER = "bare-metal"
#: Redfish steps to one BMC endpoint run one at a time (the driver's endpoint limit), and the
#: lab's three systems share one emulator: the installs are serial, ~2-4 min each here.
APPLY_TIMEOUT = 1500.0


def lab_profile(workdir: Path) -> tuple[Path, list[str]]:
    """The profile to apply and the extra ``-p`` arguments the lab needs."""
    doc = yaml.safe_load(PROFILE.read_text())
    if "boot_mode" in (doc.get("parameters") or {}):
        return PROFILE, ["-p", "boot_mode="]
    # Edit the text, not a YAML round trip: PyYAML would turn the `on:` keys into `true:`.
    text, changed = re.subn(r"(type: bmc\.boot_device.*), mode: uefi", r"\1",
                            PROFILE.read_text())
    assert changed == 1, "expected one bmc.boot_device with mode: uefi in profile 93"
    (workdir / "profiles").mkdir()
    (workdir / "playbooks").symlink_to(REPO / "playbooks")
    path = workdir / "profiles" / PROFILE.name
    path.write_text(text)
    print(f"\n[p93] applying a copy of {PROFILE.name} whose pve.boot-mode leaves the mode "
          "out (the emulator advertises no BootSourceOverrideMode for BIOS guests; no OVMF)")
    return path, []


def orch(*args: str, timeout: float) -> tuple[int, str, list[str]]:
    """Run the real CLI; return (exit code, stdout, stderr lines stamped with the time
    since start, so each finished step shows when it ended)."""
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "orch_cli.main", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []

    def read_stderr() -> None:  # PlainProgress: one line per finished step
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(f"+{time.monotonic() - started:7.1f} s {line.rstrip()}")

    chunks: list[str] = []

    def read_stdout() -> None:
        assert proc.stdout is not None
        chunks.append(proc.stdout.read())

    readers = [threading.Thread(target=fn, daemon=True) for fn in (read_stderr, read_stdout)]
    for reader in readers:
        reader.start()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        lines.append(f"(killed after {timeout:.0f} s)")
    for reader in readers:
        reader.join(timeout=10)
    out = "".join(chunks)
    return proc.returncode, out, lines


def console_of(domain: str, lines: int = 15) -> str:
    try:
        text = Path(f"/var/log/libvirt/qemu/{domain}-console.log").read_text(errors="replace")
    except OSError as exc:
        return f"(no console log: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def test_profile93_nodes_installed_by_virtual_media_then_plan_shows_proxmox_and_ceph(
        conn: Any, iso_url: str, tmp_path: Path) -> None:
    profile, extra = lab_profile(tmp_path)
    inventory = tmp_path / "lab-proxmox-ceph.yaml"
    code, out, lines = orch("lab", "up", str(profile), "--bare-metal", "--out", str(inventory),
                            timeout=900)
    print("\n[p93] orch lab up --bare-metal:\n" + out)
    try:
        assert code == 0, "\n".join(lines[-30:])
        hosts = yaml.safe_load(inventory.read_text())["hosts"]
        assert [h["name"] for h in hosts] == list(NODES)
        assert all(not conn.lookupByName(h["libvirt"]["domain"]).isActive() for h in hosts)
        _install_and_plan(conn, profile, extra, inventory, hosts, iso_url, tmp_path)
    finally:
        code, out, lines = orch("lab", "down", str(profile), timeout=600)
        assert code == 0, "\n".join(lines[-30:])
        assert not inventory.exists()
        left = [d.name() for d in conn.listAllDomains() if "proxmox-ceph" in d.name()]
        assert left == [], f"lab down left domains: {left}"


def _install_and_plan(conn: Any, profile: Path, extra: list[str], inventory: Path,
                      hosts: list[dict[str, Any]], iso_url: str, tmp_path: Path) -> None:
    common = [str(profile), "-i", str(inventory), "--state", str(tmp_path / "p93.db"),
              "-p", f"debian_iso={iso_url}", *extra]
    started = time.monotonic()
    code, _out, lines = orch("apply", *common, "--target", TARGET, "--auto-approve",
                             timeout=APPLY_TIMEOUT)
    wall = time.monotonic() - started
    apply_lines = lines
    print(f"\n[p93] orch apply --target {TARGET}: exit {code} in {wall:.1f} s")
    for line in lines:
        if re.search(r"\[\s*\d+/\d+\]|Apply|FAILED|skipped", line):
            print(f"[p93]   {line}")
    domains = [h["libvirt"]["domain"] for h in hosts]
    assert code == 0, "\n".join(lines[-30:]) + "".join(
        f"\n--- {d} console:\n{console_of(d)}" for d in domains)

    key = Path(hosts[0]["ssh"]["private_key"].removeprefix("file:")) if hosts[0].get("ssh") \
        else Path(yaml.safe_load(inventory.read_text())["defaults"]["ssh"]["private_key"]
                  .removeprefix("file:"))
    machine_ids = set()
    for host, domain in zip(hosts, domains, strict=True):
        remote = installed_host(host["address"], key)
        assert 'VERSION_ID="12"' in remote.file("/etc/os-release").content_string
        assert remote.check_output("findmnt -no SOURCE /").startswith("/dev/vda")
        machine_ids.add(remote.file("/etc/machine-id").content_string.strip())
        assert first_boot_device(conn, domain) == "hd"
        assert media_inserted(conn, domain) == []
    assert len(machine_ids) == len(NODES), "clones share a machine-id"
    assert all(re.fullmatch(r"[0-9a-f]{32}", m) for m in machine_ids)

    code, out, lines = orch("plan", *common, "--format", "json", timeout=300)
    assert code in (0, 2), "\n".join(lines[-20:])
    plan = json.loads(out)
    actions: dict[str, dict[str, int]] = {}
    for step in plan["steps"]:
        step["action"] = "+".join(step["actions"])  # format 2: Terraform's actions[]
        per_layer = actions.setdefault(step["layer"], {})
        per_layer[step["action"]] = per_layer.get(step["action"], 0) + 1
    print("[p93] orch plan after the OS layer (actions per layer):")
    for layer, counts in actions.items():
        print(f"[p93]   {layer:18s} {json.dumps(counts, sort_keys=True)}")
    os_steps = [s for s in plan["steps"] if s["layer"] == OS_LAYER]
    assert os_steps and not [s["id"] for s in os_steps if s["action"] == "create"]
    upper = [s for s in plan["steps"] if s["layer"] in ("proxmox-ve", "ceph")]
    assert upper and all(s["action"] == "create" for s in upper)
    drifted = [f"{s['id']}: {s.get('reason', '')}" for s in os_steps
               if s["action"] not in ("no-op", "noop")]
    if drifted:
        print("[p93] OS-layer steps the plan does not call no-op:")
        for text in drifted:
            print(f"[p93]   {text}")

    # The BMC password went through every Redfish step: it must be nowhere a run wrote.
    bmc = yaml.safe_load(inventory.read_text())["hosts"][0]["bmc"]
    password = Path(bmc["password"].removeprefix("file:")).read_text().strip()
    assert len(password) >= 12
    for path in [tmp_path / "p93.db", *tmp_path.glob("p93.db-*")]:
        if path.exists():
            assert password.encode() not in path.read_bytes(), path
    assert password not in out
    assert not any(password in line for line in [*apply_lines, *lines])
