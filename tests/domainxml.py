"""What a libvirt domain's persistent XML says about booting, for tests that check what a
BMC (or the driver) did to it: the first boot device and the inserted virtual media."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any


def persistent_xml(conn: Any, domain: str) -> ET.Element:
    import libvirt

    return ET.fromstring(conn.lookupByName(domain).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))


def first_boot_device(tree: ET.Element) -> str:
    """'network', 'hd' or 'cdrom': per-device order 1 first, else <os><boot dev>."""
    for dev in tree.find("devices") or ():
        boot = dev.find("boot")
        if boot is not None and boot.get("order") == "1":
            if dev.tag == "interface":
                return "network"
            return "cdrom" if dev.get("device") == "cdrom" else "hd"
    os_boot = tree.find("os/boot")
    return os_boot.get("dev", "") if os_boot is not None else ""


def cdrom_sources(tree: ET.Element) -> list[str]:
    """The files in the domain's CD-ROM drives (inserted virtual media)."""
    return [src.get("file", "") for disk in tree.iter("disk")
            if disk.get("device") == "cdrom" and (src := disk.find("source")) is not None]
