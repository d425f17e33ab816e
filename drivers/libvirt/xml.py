"""Pure builders and readers of libvirt XML: no libvirt import, no I/O.

Each ``*_xml`` function turns validated step inputs (the ``*Spec`` structs) into the XML
libvirt defines; each ``read_*`` function pulls back the few fields orch compares for drift.
"""

from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET
from typing import Annotated, Literal

import msgspec

MAC = Annotated[str, msgspec.Meta(pattern=r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$")]
Name = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")]


class DhcpHost(msgspec.Struct, forbid_unknown_fields=True):
    mac: MAC
    ip: str
    name: str = ""


class NetworkSpec(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    cidr: str
    mode: Literal["isolated", "nat"] = "isolated"
    bridge: str = ""
    dhcp: bool = True
    hosts: list[DhcpHost] = msgspec.field(default_factory=list)


class PoolSpec(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    path: str = ""


class VolumeSpec(msgspec.Struct, forbid_unknown_fields=True):
    pool: Name
    name: Name
    #: A qcow2 file on the orch host, uploaded as this volume's content.
    source: str = ""
    #: A volume of the same pool this one is a qcow2 overlay of (a linked clone).
    backing: str = ""
    capacity_gib: float = 0.0


class DiskSpec(msgspec.Struct, forbid_unknown_fields=True):
    volume: str
    pool: str
    bus: Literal["virtio", "sata", "scsi"] = "virtio"


class NicSpec(msgspec.Struct, forbid_unknown_fields=True):
    network: str
    mac: MAC
    model: str = "virtio"


class DomainSpec(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    vcpus: Annotated[int, msgspec.Meta(ge=1)] = 1
    memory_mib: Annotated[int, msgspec.Meta(ge=64)] = 512
    disks: list[DiskSpec] = msgspec.field(default_factory=list)
    nics: list[NicSpec] = msgspec.field(default_factory=list)
    boot: list[Literal["hd", "network", "cdrom"]] = msgspec.field(default_factory=lambda: ["hd"])
    state: Literal["running", "stopped"] = "running"
    console_log: str = ""
    accelerator: Literal["auto", "kvm", "tcg"] = "auto"
    ssh_authorized_keys: list[str] = msgspec.field(default_factory=list)
    kernel: str = ""
    initrd: str = ""
    cmdline: str = ""
    #: Seconds an ACPI shutdown may take before the guest is powered off hard.
    shutdown_timeout: Annotated[float, msgspec.Meta(ge=0)] = 60.0


def _text(parent: ET.Element, tag: str, text: str, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    el.text = text
    return el


def _dump(root: ET.Element) -> str:
    ET.indent(root)
    return ET.tostring(root, encoding="unicode")


# -- networks --------------------------------------------------------------------------------

def network_xml(spec: NetworkSpec) -> str:
    """A libvirt network: the host gets the first address of ``cidr``; DHCP serves the
    upper half of the range plus a fixed lease for each of ``hosts``. Raises ValueError for
    a bad CIDR or a fixed address outside it."""
    net = ipaddress.IPv4Network(spec.cidr, strict=False)
    gateway = net.network_address + 1
    root = ET.Element("network")
    _text(root, "name", spec.name)
    if spec.mode == "nat":
        ET.SubElement(root, "forward", mode="nat")
    bridge = {"stp": "on", "delay": "0"}
    if spec.bridge:
        bridge["name"] = spec.bridge
    ET.SubElement(root, "bridge", bridge)
    ip = ET.SubElement(root, "ip", address=str(gateway), netmask=str(net.netmask))
    if spec.dhcp:
        dhcp = ET.SubElement(ip, "dhcp")
        hosts = list(net.hosts())
        start, end = hosts[len(hosts) // 2], hosts[-1]
        ET.SubElement(dhcp, "range", start=str(start), end=str(end))
        for host in spec.hosts:
            if ipaddress.IPv4Address(host.ip) not in net:
                raise ValueError(f"fixed lease {host.ip} is outside {spec.cidr}")
            attrs = {"mac": host.mac.lower(), "ip": host.ip}
            if host.name:
                attrs["name"] = host.name
            ET.SubElement(dhcp, "host", attrs)
    return _dump(root)


def dhcp_host_xml(host: DhcpHost) -> str:
    attrs = {"mac": host.mac.lower(), "ip": host.ip}
    if host.name:
        attrs["name"] = host.name
    return ET.tostring(ET.Element("host", attrs), encoding="unicode")


def read_network(xml: str) -> dict[str, object]:
    """The comparable shape of a defined network: mode, cidr, bridge, fixed leases."""
    root = ET.fromstring(xml)
    forward = root.find("forward")
    ip = root.find("ip")
    cidr = ""
    if ip is not None:
        cidr = str(ipaddress.IPv4Network(f"{ip.get('address')}/{ip.get('netmask')}",
                                         strict=False))
    bridge = root.find("bridge")
    hosts = {h.get("mac", "").lower(): h.get("ip", "") for h in root.iterfind("ip/dhcp/host")}
    return {"mode": forward.get("mode", "") if forward is not None else "isolated",
            "cidr": cidr, "bridge": bridge.get("name", "") if bridge is not None else "",
            "hosts": hosts}


# -- pools and volumes -----------------------------------------------------------------------

def pool_xml(name: str, path: str) -> str:
    root = ET.Element("pool", type="dir")
    _text(root, "name", name)
    target = ET.SubElement(root, "target")
    _text(target, "path", path)
    return _dump(root)


def volume_xml(name: str, capacity_bytes: int, *, backing_path: str = "") -> str:
    """A qcow2 volume; with ``backing_path`` an overlay on that qcow2 file."""
    root = ET.Element("volume")
    _text(root, "name", name)
    _text(root, "capacity", str(capacity_bytes), unit="bytes")
    target = ET.SubElement(root, "target")
    ET.SubElement(target, "format", type="qcow2")
    _text(ET.SubElement(target, "permissions"), "mode", "0644")
    if backing_path:
        store = ET.SubElement(root, "backingStore")
        _text(store, "path", backing_path)
        ET.SubElement(store, "format", type="qcow2")
    return _dump(root)


def read_volume(xml: str) -> dict[str, object]:
    root = ET.fromstring(xml)
    fmt = root.find("target/format")
    backing = root.find("backingStore/path")
    return {"format": fmt.get("type", "") if fmt is not None else "",
            "backing": backing.text or "" if backing is not None else "",
            "capacity": int(root.findtext("capacity") or 0),
            "path": root.findtext("target/path") or ""}


# -- domains ---------------------------------------------------------------------------------

SMBIOS_KEY_PREFIX = "io.systemd.credential:ssh.authorized_keys.root="


def domain_xml(spec: DomainSpec, *, accel: str, console_log: str, tb_cache_mib: int,
               uuid: str = "") -> str:
    """A domain for ``accel`` ("kvm": host-passthrough CPU, nested virt where the host
    allows it; "tcg": QEMU's emulated CPU with a bounded translation cache). ``uuid`` is
    needed to redefine an existing domain."""
    root = ET.Element("domain", type="kvm" if accel == "kvm" else "qemu")
    _text(root, "name", spec.name)
    if uuid:
        _text(root, "uuid", uuid)
    _text(root, "memory", str(spec.memory_mib), unit="MiB")
    _text(root, "vcpu", str(spec.vcpus))
    if spec.ssh_authorized_keys:
        sysinfo = ET.SubElement(root, "sysinfo", type="smbios")
        oem = ET.SubElement(sysinfo, "oemStrings")
        for key in spec.ssh_authorized_keys:
            _text(oem, "entry", SMBIOS_KEY_PREFIX + key.strip())
    os_el = ET.SubElement(root, "os")
    _text(os_el, "type", "hvm", arch="x86_64", machine="pc")
    if spec.kernel:
        _text(os_el, "kernel", spec.kernel)
        if spec.initrd:
            _text(os_el, "initrd", spec.initrd)
        _text(os_el, "cmdline", spec.cmdline or "console=ttyS0")
    for dev in spec.boot:
        ET.SubElement(os_el, "boot", dev=dev)
    if spec.ssh_authorized_keys:
        ET.SubElement(os_el, "smbios", mode="sysinfo")
    features = ET.SubElement(root, "features")
    ET.SubElement(features, "acpi")
    ET.SubElement(features, "apic")
    if accel == "kvm":
        ET.SubElement(root, "cpu", mode="host-passthrough", check="none", migratable="off")
    else:
        # Spelled out because libvirt would add it anyway (and drift would see it).
        cpu = ET.SubElement(root, "cpu", mode="custom", match="exact", check="none")
        _text(cpu, "model", "qemu64", fallback="forbid")
        if tb_cache_mib:
            tcg = ET.SubElement(features, "tcg")
            _text(tcg, "tb-cache", str(tb_cache_mib), unit="MiB")
    _text(root, "on_poweroff", "destroy")
    _text(root, "on_reboot", "restart")
    _text(root, "on_crash", "destroy")
    devices = ET.SubElement(root, "devices")
    prefix = {"virtio": "vd", "sata": "sd", "scsi": "sd"}
    counters: dict[str, int] = {}
    for disk in spec.disks:
        p = prefix[disk.bus]
        n = counters.get(p, 0)
        counters[p] = n + 1
        el = ET.SubElement(devices, "disk", type="volume", device="disk")
        ET.SubElement(el, "driver", name="qemu", type="qcow2", discard="unmap")
        ET.SubElement(el, "source", pool=disk.pool, volume=disk.volume)
        ET.SubElement(el, "target", dev=f"{p}{chr(ord('a') + n)}", bus=disk.bus)
    for nic in spec.nics:
        el = ET.SubElement(devices, "interface", type="network")
        ET.SubElement(el, "mac", address=nic.mac.lower())
        ET.SubElement(el, "source", network=nic.network)
        ET.SubElement(el, "model", type=nic.model)
    serial = ET.SubElement(devices, "serial", type="pty")
    ET.SubElement(serial, "log", file=console_log, append="off")
    ET.SubElement(serial, "target", port="0")
    console = ET.SubElement(devices, "console", type="pty")
    ET.SubElement(console, "target", type="serial", port="0")
    rng = ET.SubElement(devices, "rng", model="virtio")
    _text(rng, "backend", "/dev/urandom", model="random")
    return _dump(root)


def read_domain(xml: str) -> dict[str, object]:
    """The comparable shape of a domain: type, CPU mode, vCPUs, memory, MACs, disks."""
    root = ET.fromstring(xml)
    cpu = root.find("cpu")
    memory = root.find("memory")
    mib = 0
    if memory is not None and memory.text:
        unit = memory.get("unit", "KiB")
        scale = {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024, "b": 1 / 2**20, "bytes": 1 / 2**20}
        mib = round(int(memory.text) * scale.get(unit, 1 / 1024))
    return {
        "type": root.get("type", ""),
        "cpu_mode": cpu.get("mode", "") if cpu is not None else "",
        "vcpus": int(root.findtext("vcpu") or 0),
        "memory_mib": mib,
        "macs": [m.get("address", "") for m in root.iterfind("devices/interface/mac")],
        "disks": [f"{s.get('pool')}/{s.get('volume')}"
                  for s in root.iterfind("devices/disk/source") if s.get("volume")],
        "console_log": next((lg.get("file", "") for lg in
                             root.iterfind("devices/serial/log")), ""),
    }
