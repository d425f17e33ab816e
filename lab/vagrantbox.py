"""A Vagrant box (provider libvirt) made from the cached lab image, for ``vagrant/``.

The box is a tar of ``metadata.json`` and ``box.img`` (the lab qcow2 itself), written next
to the image as ``<image stem>.box`` and added to Vagrant as :data:`BOX_NAME`. The lab
image has no ``vagrant`` user: the Vagrantfile logs in as root with the lab key, which
the guest reads from an SMBIOS OEM string as it does under orch (see :mod:`lab.image`).
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

from drivers.libvirt.volume import qcow2_virtual_size
from lab.image import build_image

BOX_NAME = "orch-lab"
GIB = 1 << 30


def build_box(image: Path | None = None) -> Path:
    """The ``.box`` file for the lab image (made once, beside the image)."""
    image = image or build_image()
    box = image.with_suffix(".box")
    if box.exists():
        return box
    meta = image.with_suffix(".box-metadata.json")
    meta.write_text(json.dumps({"provider": "libvirt", "format": "qcow2",
                                "virtual_size": max(1, -(-qcow2_virtual_size(image) // GIB))}))
    tmp = box.with_suffix(".tmp")
    with tarfile.open(tmp, "w") as tar:
        tar.add(meta, arcname="metadata.json")
        tar.add(image, arcname="box.img")
    meta.unlink()
    tmp.replace(box)
    return box


def add_box(name: str = BOX_NAME, *, timeout: float = 600) -> str:
    """``vagrant box add`` the lab box under ``name`` (replacing an older one)."""
    box = build_box()
    subprocess.run(["vagrant", "box", "add", "--force", "--name", name, str(box)],
                   check=True, capture_output=True, text=True, timeout=timeout)
    return name


if __name__ == "__main__":
    print(add_box())


VAGRANT_DIR = Path(__file__).resolve().parents[1] / "vagrant"


def vagrant_env(network: str, cidr: str, prefix: str, dotfile: Path,
                nodes: int = 3) -> dict[str, str]:
    """Environment for ``vagrant`` run on ``vagrant/Vagrantfile`` with its state in
    ``dotfile`` (so two runs never share machines)."""
    import os

    return {**os.environ, "VAGRANT_CWD": str(VAGRANT_DIR), "VAGRANT_DOTFILE_PATH": str(dotfile),
            "ORCH_VAGRANT_NETWORK": network, "ORCH_VAGRANT_CIDR": cidr,
            "ORCH_VAGRANT_PREFIX": prefix, "ORCH_VAGRANT_NODES": str(nodes),
            "ORCH_VAGRANT_BOX": BOX_NAME}


def vagrant(args: list[str], env: dict[str, str], *,
            timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["vagrant", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def isolated_network(name: str, cidr: str, *, create: bool = True) -> None:
    """Create (transient, DHCP on the upper half) or remove an isolated libvirt network
    for the Vagrant lab; removing one already gone is fine."""
    import ipaddress

    if not create:
        subprocess.run(["virsh", "net-destroy", name], capture_output=True, timeout=60,
                       check=False)
        return
    net = ipaddress.IPv4Network(cidr)
    hosts = list(net.hosts())
    xml = (f"<network><name>{name}</name><bridge stp='on' delay='0'/>"
           f"<ip address='{hosts[0]}' netmask='{net.netmask}'><dhcp>"
           f"<range start='{hosts[len(hosts) // 2]}' end='{hosts[-1]}'/></dhcp></ip>"
           "</network>")
    subprocess.run(["virsh", "net-create", "/dev/stdin"], input=xml, text=True,
                   capture_output=True, timeout=60, check=True)
