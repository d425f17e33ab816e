"""``libvirt.domain``: a persistent guest, kept running or stopped as the step asks.

The domain's XML comes from :func:`drivers.libvirt.xml.domain_xml` for the accelerator
the preflight chose (KVM with a host-passthrough CPU, or TCG with a bounded translation
cache). Changes to an existing domain are written to its persistent definition and take
effect at its next boot; the desired power state is applied at once.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from drivers.libvirt import xml
from drivers.libvirt.connection import boundary, lookup
from orchestrator.driver import Observed
from orchestrator.errors import StepTimeoutError


def console_log_path(spec: xml.DomainSpec) -> str:
    return spec.console_log or f"/var/log/libvirt/qemu/{spec.name}-console.log"


def _outputs(dom: Any, accel: str) -> dict[str, Any]:
    shape = xml.read_domain(dom.XMLDesc(0))
    return {"name": dom.name(), "uuid": dom.UUIDString(), "accel": accel,
            "domain_type": shape["type"], "cpu_mode": shape["cpu_mode"],
            "macs": shape["macs"], "console_log": shape["console_log"],
            "state": "running" if dom.isActive() else "stopped"}


def ensure(conn: Any, spec: xml.DomainSpec, uri: str, *, accel: str, tb_cache_mib: int,
           deadline: float) -> dict[str, Any]:
    """Define (or redefine) the domain and bring it to ``spec.state``.

    An existing domain of this name is adopted and its definition updated to ``spec``.
    Raises :class:`PermanentError` for XML libvirt rejects, :class:`StepTimeoutError` when
    the guest does not stop before ``deadline``.
    """
    with boundary(uri, "libvirt.domain"):
        dom = lookup(conn.lookupByName, spec.name)
        text = xml.domain_xml(spec, accel=accel, console_log=console_log_path(spec),
                              tb_cache_mib=tb_cache_mib,
                              uuid=dom.UUIDString() if dom is not None else "")
        if dom is None or _differs(dom, text):
            dom = conn.defineXML(text)
        if spec.state == "running" and not dom.isActive():
            dom.create()
        elif spec.state == "stopped" and dom.isActive():
            stop(dom, uri, grace=spec.shutdown_timeout, deadline=deadline)
        return _outputs(dom, accel)


def _differs(dom: Any, text: str) -> bool:
    have = xml.read_domain(dom.XMLDesc(0x2))  # VIR_DOMAIN_XML_INACTIVE: the definition
    want = xml.read_domain(text)
    return any(have[k] != want[k] for k in want)


def stop(dom: Any, uri: str, *, grace: float, deadline: float) -> None:
    """ACPI shutdown, then a hard power-off after ``grace`` seconds; bounded by
    ``deadline`` (raises :class:`StepTimeoutError` past it)."""
    import libvirt

    grace_end = min(time.monotonic() + grace, deadline)
    # not running any more, or no ACPI: fall through to destroy
    with contextlib.suppress(libvirt.libvirtError):
        dom.shutdown()
    while time.monotonic() < grace_end:
        if not dom.isActive():
            return
        time.sleep(0.5)
    if dom.isActive():
        dom.destroy()
    if time.monotonic() > deadline:
        raise StepTimeoutError(f"domain {dom.name()} did not stop in time", endpoint=uri,
                               operation="libvirt.domain")


def delete(conn: Any, name: str, uri: str, *, local_log: str = "") -> None:
    """Power off and undefine the domain (its volumes are their own steps); gone is fine.

    ``local_log`` (the console log, when libvirtd runs on this machine) is removed too.
    """
    import libvirt

    if local_log:
        Path(local_log).unlink(missing_ok=True)
    with boundary(uri, "libvirt.domain"):
        dom = lookup(conn.lookupByName, name)
        if dom is None:
            return
        if dom.isActive():
            try:
                dom.destroy()
            except libvirt.libvirtError:
                if dom.isActive():
                    raise
        flags = (libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
                 | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                 | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
        dom.undefineFlags(flags)


def observe(conn: Any, spec: xml.DomainSpec, uri: str, *, accel: str,
            tb_cache_mib: int) -> Observed:
    """Whether the domain exists, and how its definition and power state differ."""
    want = xml.read_domain(xml.domain_xml(spec, accel=accel, console_log=console_log_path(spec),
                                          tb_cache_mib=tb_cache_mib))
    with boundary(uri, "read libvirt.domain"):
        dom = lookup(conn.lookupByName, spec.name)
        if dom is None:
            return Observed(exists=False)
        have = xml.read_domain(dom.XMLDesc(0x2))
        drift = {k: f"{have[k]} (want {want[k]})" for k in want if have[k] != want[k]}
        state = "running" if dom.isActive() else "stopped"
        if state != spec.state:
            drift["state"] = f"{state} (want {spec.state})"
        return Observed(exists=True, drift=drift, outputs=_outputs(dom, accel))
