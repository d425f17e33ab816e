"""Helpers for the install tests: the blank-disk lab, profiles, the engine, timings."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests import domainxml

URI = "qemu:///system"
POOL = "default"
RUN = uuid.uuid4().hex[:6]
PREFIX = f"orch-inst-{RUN}"
LOG = logging.getLogger("tests.install")
MEMORY_MIB = 512


# -- installer ISO ------------------------------------------------------------------------

# -- libvirt through the real driver --------------------------------------------------------

def libvirt_apply(driver: Any, kind: str, inputs: Mapping[str, Any],
                  timeout: float = 600.0) -> dict[str, Any]:
    """One libvirt step through the driver, as the executor hands it over."""
    from orchestrator.driver import ApplyRequest
    from orchestrator.plan import Action
    from orchestrator.step import Step

    step = Step(id=f"install-lab/{kind}[{inputs.get('name', '')}]", kind=kind,
                driver="libvirt", component="install-lab", layer="lab", inputs=dict(inputs),
                endpoint=URI)
    request = ApplyRequest(step=step, action=Action.CREATE, inputs=dict(inputs),
                           prior_outputs={}, upstream={}, deadline=time.monotonic() + timeout,
                           log=LOG)
    return dict(driver.apply(request).outputs)


def free_cidr() -> str:
    """A /24 in 10.252.0.0/16 that no route on this host uses yet."""
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True,
                            timeout=10, check=True).stdout
    used = [ipaddress.IPv4Network(w.split()[0], strict=False)
            for w in routes.splitlines() if w and w.split()[0][0].isdigit()]
    for third in range(10, 250):
        net = ipaddress.IPv4Network(f"10.252.{third}.0/24")
        if not any(net.overlaps(u) for u in used):
            return str(net)
    raise RuntimeError("no free /24 in 10.252.0.0/16")


def _sweep(conn: Any, prefix: str = PREFIX) -> None:
    """Delete what this run made (domains, volumes, ISO copies, networks); never raises."""
    import libvirt

    def quietly(fn: Any, *args: Any) -> None:
        with contextlib.suppress(libvirt.libvirtError):
            fn(*args)

    uuids = set()
    for d in conn.listAllDomains():
        if d.name().startswith(prefix):
            uuids.add(d.UUIDString())
            if d.isActive():
                quietly(d.destroy)
            quietly(d.undefineFlags, 0)
    with contextlib.suppress(libvirt.libvirtError):
        pool = conn.storagePoolLookupByName(POOL)
        pool.refresh(0)
        for v in pool.listAllVolumes():
            # The emulator names its copy <iso name>-<domain uuid>.img.
            if v.name().startswith(prefix) or any(u in v.name() for u in uuids):
                quietly(v.delete, 0)
    for n in conn.listAllNetworks():
        if n.name().startswith(prefix):
            if n.isActive():
                quietly(n.destroy)
            quietly(n.undefine)


# -- the lab -------------------------------------------------------------------------------

@dataclass(frozen=True)
class LabNode:
    name: str  # inventory host name
    domain: str
    mac: str
    address: str

    @property
    def console_log(self) -> Path:
        return Path(f"/var/log/libvirt/qemu/{self.domain}-console.log")


@dataclass
class InstallLab:
    nodes: list[LabNode]
    network: str
    cidr: str
    bmc: Any  # lab.bmc.BmcLab
    iso_url: str
    key_path: Path
    workdir: Path
    conn: Any
    timings: dict[str, float] = field(default_factory=dict)

    def inventory(self, name: str = "install-lab") -> Path:
        """Write the inventory binding the lab's nodes (loopback BMC, lab key)."""
        doc = {
            "apiVersion": "orch/v1", "kind": "Inventory",
            "metadata": {"name": name, "description": "blank-disk guests for virtual-media "
                                                      "installs (tests/install)"},
            "defaults": {
                "ssh": {"user": "root", "private_key": f"file:{self.key_path}"},
                "bmc": {"kind": "redfish", "endpoint": self.bmc.redfish_endpoint,
                        "username": "admin", "password": self.bmc.password_ref,
                        "verify_tls": False},
            },
            # A fresh known_hosts: every install makes new host keys on the same addresses.
            "drivers": {"ssh": {"known_hosts": str(self.workdir / "known_hosts")},
                        "ansible": {"known_hosts": str(self.workdir / "known_hosts")}},
            "hosts": [{"name": n.name, "address": n.address, "bmc": {"system": n.domain},
                       "libvirt": {"uri": URI, "domain": n.domain}} for n in self.nodes],
        }
        path = self.workdir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def first_boot_device(self, node: LabNode) -> str:
        return first_boot_device(self.conn, node.domain)

    def media_inserted(self, node: LabNode) -> list[str]:
        return media_inserted(self.conn, node.domain)

    def disk_allocation(self, node: LabNode) -> int:
        import libvirt

        with contextlib.suppress(libvirt.libvirtError):
            pool = self.conn.storagePoolLookupByName(POOL)
            pool.refresh(0)
            return int(pool.storageVolLookupByName(f"{node.domain}-disk").info()[2])
        return -1


def first_boot_device(conn: Any, domain: str) -> str:
    return domainxml.first_boot_device(domainxml.persistent_xml(conn, domain))


def media_inserted(conn: Any, domain: str) -> list[str]:
    return domainxml.cdrom_sources(domainxml.persistent_xml(conn, domain))


def image_capacity_gib() -> float:
    from drivers.libvirt.volume import qcow2_virtual_size
    from lab.image import build_image

    return qcow2_virtual_size(build_image()) / (1 << 30)


@contextlib.contextmanager
def install_lab(conn: Any, driver: Any, iso_url: str, workdir: Path, count: int,
                names: tuple[str, ...] = ()) -> Iterator[InstallLab]:
    """``count`` stopped guests with blank disks, their BMCs and an isolated network."""
    from lab import bmc
    from lab.image import lab_keypair

    key_path, public_key = lab_keypair()
    names = names or tuple(f"node-{i + 1}" for i in range(count))
    cidr = free_cidr()
    net = ipaddress.IPv4Network(cidr)
    third = int(str(net.network_address).split(".")[2])
    nodes = [LabNode(name, f"{PREFIX}-{name}", f"52:54:00:a5:{third:02x}:{i + 11:02x}",
                     str(net.network_address + 11 + i)) for i, name in enumerate(names)]
    network = f"{PREFIX}-net"
    state = workdir / "lab-state"
    started = time.monotonic()
    try:
        libvirt_apply(driver, "libvirt.network", {
            "name": network, "cidr": cidr, "mode": "isolated",
            "hosts": [{"mac": n.mac, "ip": n.address, "name": n.name} for n in nodes]})
        bmc.ensure_default_pool(URI)
        capacity = image_capacity_gib()
        for n in nodes:
            libvirt_apply(driver, "libvirt.volume", {"pool": POOL, "name": f"{n.domain}-disk",
                                                     "capacity_gib": capacity})
            libvirt_apply(driver, "libvirt.domain", {
                "name": n.domain, "vcpus": 1, "memory_mib": MEMORY_MIB,
                "disks": [{"volume": f"{n.domain}-disk", "pool": POOL}],
                "nics": [{"network": network, "mac": n.mac}], "boot": ["hd"],
                "state": "stopped", "ssh_authorized_keys": [public_key]})
        lab = bmc.start([n.domain for n in nodes], state, libvirt_uri=URI)
        result = InstallLab(nodes, network, cidr, lab, iso_url, key_path, workdir, conn)
        result.timings["lab"] = time.monotonic() - started
        yield result
    finally:
        bmc.stop(state)
        _sweep(conn, PREFIX)


# -- profiles and the engine ----------------------------------------------------------------

def write_profile(path: Path, *, image: str, known_hosts: Path, install_timeout: float,
                  ssh_timeout: float, count: int = 1) -> Path:
    """One role whose only component is ``os.install`` from ``image``."""
    doc = {
        "apiVersion": "orch/v1", "kind": "Profile",
        "metadata": {"name": "vmedia-install",
                     "description": "Install the lab image by Redfish virtual media"},
        "roles": {"node": {"count": count, "bmc": "redfish",
                           "description": "a blank-disk lab guest behind sushy-tools"}},
        "drivers": {"ssh": {"known_hosts": str(known_hosts)}},
        "layers": [{"name": "os", "components": [{
            "name": "node.os-install", "type": "os.install", "on": "node",
            "with": {"image": image, "os": "Debian 12 (orch lab image)",
                     "install_timeout": install_timeout, "ssh_timeout": ssh_timeout}}]}],
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@dataclass
class EngineRun:
    report: Any
    #: step id -> (start offset, duration) in seconds from the run's start
    phases: dict[str, tuple[float, float]]


def apply_profile(profile: Path, inventory: Path, state: Path,
                  target: tuple[str, ...] = ()) -> EngineRun:
    """Plan and apply ``profile`` in-process, exactly as `orch apply` does, timing steps."""
    from orchestrator.driver import DriverRegistry
    from orchestrator.executor import ExecOptions, Executor
    from orchestrator.loader import load
    from orchestrator.plan import Mode
    from orchestrator.planner import PlanOptions, make_plan
    from orchestrator.state import Holder, open_store

    loaded = load(str(profile), str(inventory), {})
    store = open_store(str(state))
    started = time.monotonic()
    begun: dict[str, float] = {}
    phases: dict[str, tuple[float, float]] = {}

    def on_event(event: str, step_id: str, detail: str) -> None:
        now = time.monotonic() - started
        if event in ("start", "started", "running"):
            begun.setdefault(step_id, now)
        elif step_id in begun or event in ("succeeded", "done", "failed", "finished"):
            phases[step_id] = (begun.get(step_id, now), now - begun.get(step_id, now))
        LOG.info("%7.1f s %s %s %s", now, event, step_id, detail)

    try:
        with store.locked(loaded.profile.metadata.name, Holder.me(), timeout=0):
            plan = make_plan(loaded, store, PlanOptions(Mode.NORMAL, target, ()))
            opts = ExecOptions(parallelism=10, on_event=on_event, base_dir=profile.parent,
                               check_state_hash=False)
            report = Executor(plan, store, DriverRegistry(), opts).run()
    finally:
        store.close()
    return EngineRun(report, phases)


def print_phases(title: str, run: EngineRun) -> None:
    print(f"\n[install] {title}: {run.report.wall_seconds:.1f} s wall")
    for step_id, outcome in run.report.outcomes.items():
        offset = run.phases.get(step_id, (0.0, 0.0))[0]
        print(f"[install]   {step_id:60s} +{offset:7.1f} s  {outcome.duration:7.1f} s  "
              f"{outcome.status.value}")


def console_tail(node: LabNode, lines: int = 15) -> str:
    try:
        text = node.console_log.read_text(errors="replace")
    except OSError as exc:
        return f"(no console log: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def installed_host(address: str, key: Path) -> Any:
    """A testinfra host logged in as root with the lab key (paramiko backend)."""
    import testinfra

    return testinfra.get_host(f"paramiko://root@{address}", ssh_identity_file=str(key),
                              timeout=30)
