"""``libvirt.network``: a persistent, autostarted virtual network with fixed DHCP leases."""

from __future__ import annotations

from typing import Any

from drivers.libvirt import xml
from drivers.libvirt.connection import boundary, lookup
from orchestrator.driver import Observed
from orchestrator.errors import PermanentError


def _desired(spec: xml.NetworkSpec) -> tuple[str, dict[str, object]]:
    try:
        text = xml.network_xml(spec)
    except ValueError as exc:
        raise PermanentError(str(exc), operation="libvirt.network") from None
    return text, xml.read_network(text)


def _drift(want: dict[str, object], have: dict[str, object]) -> dict[str, str]:
    drift = {}
    for key in ("mode", "cidr"):
        if want[key] != have[key]:
            drift[key] = f"{have[key]} (want {want[key]})"
    if want["bridge"] and want["bridge"] != have["bridge"]:
        drift["bridge"] = f"{have['bridge']} (want {want['bridge']})"
    if want["hosts"] != have["hosts"]:
        drift["hosts"] = f"fixed leases {have['hosts']} (want {want['hosts']})"
    return drift


def _outputs(net: Any) -> dict[str, Any]:
    shape = xml.read_network(net.XMLDesc(0))
    return {"name": net.name(), "uuid": net.UUIDString(), "bridge": net.bridgeName(),
            "cidr": shape["cidr"], "active": bool(net.isActive())}


def ensure(conn: Any, spec: xml.NetworkSpec, uri: str) -> dict[str, Any]:
    """Define, start and autostart the network; adopt one that already has this shape.

    Fixed leases are changed live on an existing network. Raises :class:`PermanentError`
    when an existing network differs in mode, CIDR or bridge (that needs a replace).
    """
    text, want = _desired(spec)
    with boundary(uri, "libvirt.network"):
        net = lookup(conn.networkLookupByName, spec.name)
        if net is None:
            net = conn.networkDefineXML(text)
        else:
            drift = _drift(want, xml.read_network(net.XMLDesc(0)))
            fixed = {k: v for k, v in drift.items() if k != "hosts"}
            if fixed:
                raise PermanentError(
                    f"network {spec.name} exists with another shape: {fixed}",
                    endpoint=uri, operation="libvirt.network",
                    hint="replace the step (delete and create) to change these")
            if "hosts" in drift:
                _update_leases(net, spec, xml.read_network(net.XMLDesc(0)))
        if not net.isActive():
            net.create()
        if not net.autostart():
            net.setAutostart(1)
        return _outputs(net)


def _update_leases(net: Any, spec: xml.NetworkSpec, have: dict[str, Any]) -> None:
    import libvirt

    flags = libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG
    if net.isActive():
        flags |= libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE
    section = libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST
    wanted = {h.mac.lower(): h for h in spec.hosts}
    for mac, ip in have["hosts"].items():
        if mac not in wanted or wanted[mac].ip != ip:
            net.update(libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE, section, -1,
                       f"<host mac='{mac}' ip='{ip}'/>", flags)
    for mac, host in wanted.items():
        if have["hosts"].get(mac) != host.ip:
            net.update(libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, section, -1,
                       xml.dhcp_host_xml(host), flags)


def delete(conn: Any, name: str, uri: str) -> None:
    """Stop and undefine the network; a network already gone is fine."""
    with boundary(uri, "libvirt.network"):
        net = lookup(conn.networkLookupByName, name)
        if net is None:
            return
        if net.isActive():
            net.destroy()
        net.undefine()


def observe(conn: Any, spec: xml.NetworkSpec, uri: str) -> Observed:
    """Whether the network exists, and how it differs from ``spec``."""
    _, want = _desired(spec)
    with boundary(uri, "read libvirt.network"):
        net = lookup(conn.networkLookupByName, spec.name)
        if net is None:
            return Observed(exists=False)
        drift = _drift(want, xml.read_network(net.XMLDesc(0)))
        if not net.isActive():
            drift["active"] = "network is stopped"
        return Observed(exists=True, drift=drift, outputs=_outputs(net))
