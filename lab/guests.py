"""How a profile's nodes become lab guests: the scaling rule, names, addresses and MACs.

The rule (one guest per node of the profile, loaded without an inventory):

* **vCPUs** = ``min(role cpu, 2)``;
* **memory** = ``memory_mib`` (512 MiB unless ``--memory-mib``), never more than the role's
  own ``memory_gib``;
* **OS disk** = a linked clone (qcow2 overlay) of the lab image, uploaded once per lab as
  ``base.qcow2``; the role's ``os`` disk names nothing else. In a *bare-metal* lab
  (``orch lab up --bare-metal``) it is a blank disk of the lab image's size instead, the
  guest is defined powered off, and the profile's own ``os.install`` installs it through
  the emulated BMC;
* **data disks** = one blank :data:`DATA_DISK_GIB` GiB qcow2 per non-OS disk of the role
  (``count`` expanded, at most :data:`MAX_DATA_DISKS`), in profile order, so ``foreach:
  disks:osd`` steps find devices (``vdb``, ``vdc``, ... in that order);
* **NICs** = one per profile NIC (``count`` expanded; at least one, at most
  :data:`MAX_NICS`), all on the lab's isolated network, each with a fixed MAC and a fixed
  DHCP lease; the first NIC's address is the node's inventory address.

Names carry the profile's name, so two labs never collide: network and pool
``orch-<profile>``, domains ``orch-<profile>-<node>``. The MACs' fourth byte is a hash of
the profile name; the /24 is picked once per lab from 10.220.0.0/16 (free of this host's
routes and libvirt networks) and kept in the lab's state directory.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import subprocess
from dataclasses import dataclass, field

from orchestrator.loader import Loaded

DATA_DISK_GIB = 1
MAX_DATA_DISKS = 4
MAX_NICS = 4
MAX_VCPUS = 2
DEFAULT_MEMORY_MIB = 512
LAB_SUPERNET = ipaddress.IPv4Network("10.220.0.0/16")


@dataclass(frozen=True)
class Nic:
    mac: str
    ip: str


@dataclass(frozen=True)
class Guest:
    """One lab guest for one node of the profile."""

    node: str
    role: str
    domain: str
    vcpus: int
    memory_mib: int
    nics: tuple[Nic, ...]
    #: volume names of the blank data disks, in profile order
    data_disks: tuple[str, ...] = field(default_factory=tuple)
    bmc_kind: str = "redfish"

    @property
    def address(self) -> str:
        return self.nics[0].ip

    @property
    def os_volume(self) -> str:
        return f"{self.node}-os.qcow2"


def slug(profile_name: str) -> str:
    """The part of libvirt names that comes from the profile (short, safe characters)."""
    s = re.sub(r"[^a-z0-9-]", "-", profile_name.lower()).strip("-")
    return s[:40] or "lab"


def lab_name(profile_name: str) -> str:
    return f"orch-{slug(profile_name)}"


def _hash_byte(profile_name: str) -> int:
    return hashlib.sha256(profile_name.encode()).digest()[0]


def design(loaded: Loaded, cidr: str, memory_mib: int = DEFAULT_MEMORY_MIB) -> list[Guest]:
    """The guests for every node of ``loaded`` (bound without an inventory), on ``cidr``."""
    name = loaded.profile.metadata.name
    net = ipaddress.IPv4Network(cidr)
    base = int(net.network_address)
    h = _hash_byte(name)
    guests = []
    for g, node in enumerate(loaded.all_nodes(), start=1):
        hw = node.hardware
        nic_count = min(MAX_NICS, max(1, sum(n.count for n in hw.nics)))
        nics = tuple(Nic(f"52:54:00:{h:02x}:{g:02x}:{k:02x}",
                         str(ipaddress.IPv4Address(base + (10 + g if k == 0 else
                                                           40 + 4 * g + k))))
                     for k in range(nic_count))
        disks: list[str] = []
        for d in hw.disks:
            if d.role == "os":
                continue
            for i in range(d.count):
                label = d.name if d.count == 1 else f"{d.name}{i}"
                disks.append(f"{node.name}-{label}.qcow2")
        role = loaded.profile.roles[node.role]
        memory = min(memory_mib, max(hw.memory_gib, 1) * 1024)
        guests.append(Guest(node.name, node.role, f"{lab_name(name)}-{node.name}",
                            max(1, min(hw.cpu, MAX_VCPUS)), memory, nics,
                            tuple(disks[:MAX_DATA_DISKS]),
                            "ipmi" if role.bmc == "ipmi" else "redfish"))
    return guests


def used_networks(uri: str = "qemu:///system") -> list[ipaddress.IPv4Network]:
    """Networks this host routes, plus those of defined libvirt networks (even inactive)."""
    out: list[ipaddress.IPv4Network] = []
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True,
                            timeout=10, check=False).stdout
    for line in routes.splitlines():
        word = line.split()[0] if line.split() else ""
        if word[:1].isdigit():
            out.append(ipaddress.IPv4Network(word, strict=False))
    names = subprocess.run(["virsh", "-c", uri, "net-list", "--all", "--name"],
                           capture_output=True, text=True, timeout=30, check=False).stdout
    for net in filter(None, (n.strip() for n in names.splitlines())):
        xml = subprocess.run(["virsh", "-c", uri, "net-dumpxml", net], capture_output=True,
                             text=True, timeout=30, check=False).stdout
        for addr, mask in re.findall(r"<ip address=['\"]([\d.]+)['\"] netmask=['\"]([\d.]+)",
                                     xml):
            out.append(ipaddress.IPv4Network(f"{addr}/{mask}", strict=False))
    return out


def pick_cidr(profile_name: str, uri: str = "qemu:///system") -> str:
    """A free /24 in :data:`LAB_SUPERNET`, starting at one chosen by the profile's name."""
    used = used_networks(uri)
    subnets = list(LAB_SUPERNET.subnets(new_prefix=24))
    start = int.from_bytes(hashlib.sha256(profile_name.encode()).digest()[:2], "big")
    for i in range(len(subnets)):
        net = subnets[(start + i) % len(subnets)]
        if not any(net.overlaps(u) for u in used):
            return str(net)
    raise RuntimeError(f"no free /24 left in {LAB_SUPERNET}")
