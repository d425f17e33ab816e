"""Fixtures for the libvirt driver tests: a real libvirtd, unique names, full clean-up.

Every object a test makes is named ``orchtest-<run>-...``; the session's last act deletes
whatever is left with this run's prefix, so a failing test leaves nothing behind either.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from drivers.libvirt import LibvirtDriver, LibvirtSettings
from orchestrator.driver import ApplyRequest
from orchestrator.plan import Action
from orchestrator.step import Step

URI = os.environ.get("ORCH_TEST_LIBVIRT_URI", "qemu:///system")
PREFIX = f"orchtest-{uuid.uuid4().hex[:6]}"
LOG = logging.getLogger("tests.libvirt")


def step_for(kind: str, inputs: Mapping[str, Any], name: str = "") -> Step:
    return Step(id=f"lab/{kind}[{name or inputs.get('name', '')}]", kind=kind,
                driver="libvirt", component="lab", layer="lab", inputs=dict(inputs),
                endpoint=URI)


def apply(driver: LibvirtDriver, kind: str, inputs: Mapping[str, Any],
          action: Action = Action.CREATE, timeout: float = 300.0) -> dict[str, Any]:
    """Run one step through the driver as the executor would; return its outputs."""
    step = step_for(kind, inputs)
    request = ApplyRequest(step=step, action=action, inputs=dict(inputs), prior_outputs={},
                           upstream={}, deadline=time.monotonic() + timeout, log=LOG)
    return dict(driver.apply(request).outputs)


def free_cidr() -> str:
    """A /24 in 10.251.0.0/16 that no route on this host uses yet."""
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True,
                            timeout=10, check=True).stdout
    used = [ipaddress.IPv4Network(w.split()[0], strict=False)
            for w in routes.splitlines() if w and w.split()[0][0].isdigit()]
    for third in range(10, 250):
        net = ipaddress.IPv4Network(f"10.251.{third}.0/24")
        if not any(net.overlaps(u) for u in used):
            return str(net)
    raise RuntimeError("no free /24 in 10.251.0.0/16")


@pytest.fixture(scope="session")
def conn() -> Iterator[Any]:
    import libvirt

    try:
        c = libvirt.open(URI)
    except libvirt.libvirtError as exc:  # CI starts libvirtd; a skip would hide that
        pytest.fail(f"libvirtd is not reachable at {URI}: {exc}")
    yield c
    _sweep(c)
    c.close()


@pytest.fixture(scope="session")
def driver(conn: Any) -> Iterator[LibvirtDriver]:
    d = LibvirtDriver(LibvirtSettings(uri=URI))
    yield d
    d.close()


def leftovers(conn: Any, prefix: str = PREFIX) -> list[str]:
    """Every domain, network, pool and volume whose name starts with ``prefix``."""
    found = [f"domain {d.name()}" for d in conn.listAllDomains() if d.name().startswith(prefix)]
    found += [f"network {n.name()}" for n in conn.listAllNetworks()
              if n.name().startswith(prefix)]
    for p in conn.listAllStoragePools():
        if p.name().startswith(prefix):
            found.append(f"pool {p.name()}")
        if p.isActive():
            p.refresh(0)
            found += [f"volume {p.name()}/{v}" for v in p.listVolumes() if v.startswith(prefix)]
    return found


def _sweep(conn: Any) -> None:
    """Delete what this run left behind (after a failure); never raises."""
    import libvirt

    def quietly(fn: Any, *args: Any) -> None:
        with contextlib.suppress(libvirt.libvirtError):
            fn(*args)

    for d in conn.listAllDomains():
        if d.name().startswith(PREFIX):
            if d.isActive():
                quietly(d.destroy)
            quietly(d.undefineFlags, 0)
    for p in conn.listAllStoragePools():
        if p.isActive():
            p.refresh(0)
            vols = sorted(p.listAllVolumes(), key=lambda v: "base" in v.name())
            for v in vols:
                if v.name().startswith(PREFIX):
                    quietly(v.delete, 0)
        if p.name().startswith(PREFIX):
            if p.isActive():
                quietly(p.destroy)
            quietly(p.delete, 0)
            quietly(p.undefine)
    for n in conn.listAllNetworks():
        if n.name().startswith(PREFIX):
            if n.isActive():
                quietly(n.destroy)
            quietly(n.undefine)
