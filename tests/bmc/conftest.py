"""Fixtures for the BMC driver tests: small libvirt domains behind real emulated BMCs.

The domains are diskless QEMU (TCG) guests: enough for a BMC to power them, rewrite their
boot order and attach media, which is all these tests check through libvirt. The emulators
are started by ``lab.bmc`` exactly as ``orch lab up`` will start them.

Set ORCH_TEST_REDFISH_URL, ORCH_TEST_REDFISH_USER and ORCH_TEST_REDFISH_PASSWORD_REF (a
secret reference such as ``env:BMC_PW``) to also run the Redfish tests against a real BMC;
ORCH_TEST_REDFISH_SYSTEM picks its system when it has several. Checks through libvirt are
then skipped: only what the BMC itself reports is checked.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from orchestrator.secrets import Secret, resolve
from tests import domainxml
from tests.conftest import require_service

LIBVIRT_URI = "qemu:///system"
ISO_NAME = "orch-bmctest"
DOMAINS = ("orch-bmctest-a", "orch-bmctest-b")
# An empty 16 MiB disk each, where QEMU may read it (the emulator needs a disk to boot "Hdd").
IMAGES = Path("/var/lib/libvirt/images")
MACS = {"orch-bmctest-a": "52:54:00:b7:00:0a", "orch-bmctest-b": "52:54:00:b7:00:0b"}

DOMAIN_XML = """
<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>1024</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type><boot dev='hd'/></os>
  <devices>
    <interface type='user'><mac address='{mac}'/><model type='virtio'/></interface>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='{disk}'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><readonly/></disk>
    <graphics type='vnc' listen='127.0.0.1' autoport='yes'/>
  </devices>
</domain>
"""


def _libvirt() -> Any:
    import libvirt

    return libvirt.open(LIBVIRT_URI)


def _remove(conn: Any, name: str) -> None:
    import libvirt

    try:
        dom = conn.lookupByName(name)
    except libvirt.libvirtError:
        return
    if dom.isActive():
        dom.destroy()
    dom.undefine()


@pytest.fixture(scope="session")
def libvirt_conn() -> Iterator[Any]:
    try:
        conn = _libvirt()
    except Exception as exc:  # libvirtd not running: skipped locally, a failure in CI
        require_service(f"libvirt not reachable at {LIBVIRT_URI}: {exc}")
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def domains(libvirt_conn: Any) -> Iterator[tuple[str, ...]]:
    disks = {name: IMAGES / f"{name}.qcow2" for name in DOMAINS}
    for name in DOMAINS:
        _remove(libvirt_conn, name)
        IMAGES.mkdir(parents=True, exist_ok=True)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disks[name]), "16M"],
                       check=True, timeout=30)
        libvirt_conn.defineXML(DOMAIN_XML.format(name=name, mac=MACS[name], disk=disks[name]))
    yield DOMAINS
    for name in DOMAINS:
        _remove(libvirt_conn, name)
        disks[name].unlink(missing_ok=True)


@pytest.fixture(scope="session")
def bmc_lab(domains: tuple[str, ...], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from lab import bmc

    state = tmp_path_factory.mktemp("lab-state")
    lab = bmc.start(domains, state, libvirt_uri=LIBVIRT_URI)
    yield lab
    bmc.stop(state)


@pytest.fixture(scope="session")
def password(bmc_lab: Any) -> Secret:
    return resolve(bmc_lab.password_ref)


# -- the domain as libvirt sees it ---------------------------------------------------------

@dataclass
class DomainView:
    conn: Any
    name: str

    def dom(self) -> Any:
        return self.conn.lookupByName(self.name)

    def active(self) -> bool:
        return bool(self.dom().isActive())

    def persistent_xml(self) -> ET.Element:
        import libvirt

        return ET.fromstring(self.dom().XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))

    def first_boot_device(self) -> str:
        return domainxml.first_boot_device(self.persistent_xml())

    def cdrom_sources(self) -> list[str]:
        return domainxml.cdrom_sources(self.persistent_xml())

    def ensure_off(self) -> None:
        if self.active():
            self.dom().destroy()


@pytest.fixture
def domain_a(libvirt_conn: Any, domains: tuple[str, ...]) -> Iterator[DomainView]:
    view = DomainView(libvirt_conn, domains[0])
    view.ensure_off()
    yield view
    view.ensure_off()


# -- what a driver is handed ---------------------------------------------------------------

@dataclass
class RecordingLog:
    """Stands in for the executor's structured logger; keeps every line as text."""

    lines: list[str] = field(default_factory=list)

    def __getattr__(self, level: str) -> Any:
        def emit(event: str, **fields: Any) -> None:
            self.lines.append(f"{level} {event} {fields}")
        return emit

    def text(self) -> str:
        return "\n".join(self.lines)


def host_inputs(kind: str, endpoint: str, password: Secret, system: str = "",
                username: str = "admin", **extra: Any) -> dict[str, Any]:
    return {"host": {"name": "lab-a", "bmc": {
        "kind": kind, "endpoint": endpoint, "system": system, "username": username,
        "password": password, "verify_tls": True, "ca_bundle": None}, **extra}}


@dataclass(frozen=True)
class RedfishUnderTest:
    """The Redfish BMC a test talks to: the emulator (with its libvirt domain) or a real one."""

    endpoint: str
    system: str
    username: str
    password: Secret
    domain: DomainView | None  # None for a real BMC: no libvirt checks

    def inputs(self, **extra: Any) -> dict[str, Any]:
        inputs = host_inputs("redfish", self.endpoint, self.password, self.system,
                             self.username)
        inputs.update(extra)
        return inputs


@pytest.fixture(params=["emulator", "real"])
def redfish_bmc(request: pytest.FixtureRequest) -> RedfishUnderTest:
    if request.param == "real":
        url = os.environ.get("ORCH_TEST_REDFISH_URL")
        if not url:
            pytest.skip("set ORCH_TEST_REDFISH_URL/_USER/_PASSWORD_REF for a real BMC")
        return RedfishUnderTest(url, os.environ.get("ORCH_TEST_REDFISH_SYSTEM", ""),
                                os.environ.get("ORCH_TEST_REDFISH_USER", ""),
                                resolve(os.environ["ORCH_TEST_REDFISH_PASSWORD_REF"]), None)
    lab = request.getfixturevalue("bmc_lab")
    domain = request.getfixturevalue("domain_a")
    return RedfishUnderTest(lab.redfish_endpoint, domain.name, "admin",
                            request.getfixturevalue("password"), domain)


# -- an installer ISO served on 127.0.0.1 ---------------------------------------------------

@pytest.fixture(scope="session")
def iso_url(tmp_path_factory: pytest.TempPathFactory, libvirt_conn: Any) -> Iterator[str]:
    if not shutil.which("genisoimage"):
        require_service("genisoimage not installed")
    root = tmp_path_factory.mktemp("iso")
    (root / "content").mkdir()
    (root / "content" / "README").write_text("orch test media\n")
    subprocess.run(["genisoimage", "-quiet", "-V", "ORCHTEST", "-o", str(root / f"{ISO_NAME}.iso"),
                    str(root / "content")], check=True, timeout=60)
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{ISO_NAME}.iso"
    server.shutdown()
    server.server_close()
    # The emulator downloads inserted media into the `default` pool and keeps the copies.
    pool = libvirt_conn.storagePoolLookupByName("default")
    pool.refresh(0)
    for name in pool.listVolumes():
        if name.startswith(f"{ISO_NAME}-iso-"):
            pool.storageVolLookupByName(name).delete(0)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *_args: Any) -> None:
        pass


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    """Yields a one-item list that holds the elapsed seconds once the block ends."""
    box = [0.0]
    start = time.monotonic()
    try:
        yield box
    finally:
        box[0] = time.monotonic() - start


def no_secret(password: Secret, *texts: str) -> None:
    value = password.reveal()
    for text in texts:
        assert value not in text, "the BMC password leaked into output"


def apply_step(driver: Any, kind: str, inputs: dict[str, Any], log: RecordingLog | None = None,
               timeout: float = 120.0) -> dict[str, Any]:
    """Hand ``driver`` one step the way the executor does; return its outputs."""
    from orchestrator.driver import ApplyRequest
    from orchestrator.plan import Action
    from orchestrator.step import Step

    step = Step(id=f"lab-a/bmc[{kind}]", kind=kind, driver=driver.name, component="bmc",
                layer="hardware", endpoint=inputs["host"]["bmc"]["endpoint"])
    request = ApplyRequest(step=step, action=Action.CREATE, inputs=inputs, prior_outputs={},
                           upstream={}, deadline=time.monotonic() + timeout,
                           log=log if log is not None else RecordingLog())
    return dict(driver.apply(request).outputs)
