"""The documents a lab is made of: an internal profile, its inventory, and the lab inventory.

``orch lab up`` does not create guests by hand: it writes a small **lab profile** whose
components are the libvirt driver's step kinds (network, pool, base volume, one linked
clone and blank data disks per guest, one domain per guest) followed by ``ssh.wait`` on
every guest, and applies it with the engine. So the lab itself is planned, journaled and
resumable, ``orch plan`` on the lab profile shows drift (a guest removed behind orch's
back), and ``orch lab down`` is that profile's destroy plan.

The **lab inventory** (``inventories/lab-<profile>.yaml``) is what the operator gets: the
guests' addresses, the lab key and BMC password as ``file:`` references, the emulated BMC
endpoints and the libvirt domain of each host, bound role by role.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lab.guests import Guest, lab_name
from orchestrator.model import API_VERSION

LIBVIRT_URI = "qemu:///system"
SSH_TIMEOUT = 600.0


def lab_profile(profile_name: str, cidr: str, guests: Sequence[Guest], public_key: str,
                *, image_source: str = "lab", blank_os_gib: int = 0) -> dict[str, Any]:
    """The lab profile for ``guests`` on ``cidr`` (a plain dict, written as YAML).

    ``blank_os_gib`` > 0 makes a *bare-metal* lab: each guest gets a blank OS disk of that
    size instead of a linked clone, is defined powered off with boot from disk, and nothing
    waits for SSH: the profile's own ``os.install`` (through the emulated BMCs) puts the OS
    there, as on a rack."""
    bare_metal = blank_os_gib > 0
    name = lab_name(profile_name)
    roles: dict[str, Any] = {}
    for g in guests:
        roles.setdefault(g.role, {"count": 0, "bmc": "none"})["count"] += 1
    network = {"name": "network", "type": "libvirt.network",
               "with": {"name": name, "cidr": cidr, "mode": "isolated",
                        "hosts": [{"mac": n.mac, "ip": n.ip, **({"name": g.node} if k == 0
                                                               else {})}
                                  for g in guests for k, n in enumerate(g.nics)]}}
    pool = {"name": "pool", "type": "libvirt.pool",
            "with": {"name": name, "path": f"/var/lib/libvirt/images/{name}"}}
    base = {"name": "base-image", "type": "libvirt.volume", "after": ["pool"],
            "with": {"pool": name, "name": "base.qcow2", "source": image_source}}
    per_guest: list[dict[str, Any]] = []
    for g in guests:
        per_guest.append({"name": f"{g.node}.os-disk", "type": "libvirt.volume",
                          "after": ["pool"] if bare_metal else ["base-image"],
                          "with": ({"pool": name, "name": g.os_volume,
                                    "capacity_gib": blank_os_gib} if bare_metal else
                                   {"pool": name, "name": g.os_volume,
                                    "backing": "base.qcow2"})})
        disk_names = []
        for vol in g.data_disks:
            comp = f"{g.node}.disk-{vol.removeprefix(g.node + '-').removesuffix('.qcow2')}"
            disk_names.append(comp)
            per_guest.append({"name": comp, "type": "libvirt.volume", "after": ["pool"],
                              "with": {"pool": name, "name": vol, "capacity_gib": 1}})
        per_guest.append({
            "name": f"{g.node}.domain", "type": "libvirt.domain",
            "after": ["network", f"{g.node}.os-disk", *disk_names],
            "with": {"name": g.domain, "vcpus": g.vcpus, "memory_mib": g.memory_mib,
                     "disks": [{"pool": name, "volume": v}
                               for v in (g.os_volume, *g.data_disks)],
                     "nics": [{"network": name, "mac": n.mac} for n in g.nics],
                     "ssh_authorized_keys": [public_key], "shutdown_timeout": 10,
                     **({"boot": ["hd"], "state": "stopped"} if bare_metal
                        else {"state": "running"})}})
    ready = [] if bare_metal else [
        {"name": f"ssh-ready.{role}", "type": "ssh.wait", "on": role,
         "after": [f"{g.node}.domain" for g in guests if g.role == role],
         "with": {"timeout": SSH_TIMEOUT}} for role in roles]
    network_layer = [network, pool] if bare_metal else [network, pool, base]
    layers = [{"name": "lab-network", "components": network_layer},
              {"name": "lab-guests", "components": per_guest}]
    if ready:
        layers.append({"name": "lab-ready", "components": ready})
    return {
        "apiVersion": API_VERSION, "kind": "Profile",
        "metadata": {"name": f"lab-{name.removeprefix('orch-')}"[:63],
                     "title": f"Lab guests for profile {profile_name}", "lab": True},
        "drivers": {"libvirt": {"uri": LIBVIRT_URI}},
        "roles": roles,
        "layers": layers,
    }


def _hosts(guests: Sequence[Guest]) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    hosts: list[dict[str, Any]] = []
    roles: dict[str, list[str]] = {}
    for g in guests:
        hosts.append({"name": g.node, "address": g.address, "roles": [g.role],
                      "libvirt": {"uri": LIBVIRT_URI, "domain": g.domain}})
        roles.setdefault(g.role, []).append(g.node)
    return hosts, roles


def _inventory(name: str, description: str, hosts: list[dict[str, Any]],
               roles: dict[str, list[str]], key: Path, known_hosts: Path) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION, "kind": "Inventory",
        "metadata": {"name": name, "description": description},
        "defaults": {"ssh": {"user": "root", "private_key": f"file:{key}"}},
        "drivers": {"libvirt": {"uri": LIBVIRT_URI},
                    "ssh": {"known_hosts": str(known_hosts)},
                    "ansible": {"known_hosts": str(known_hosts)}},
        "roles": roles, "hosts": hosts,
    }


def internal_inventory(profile_name: str, guests: Sequence[Guest], key: Path,
                       known_hosts: Path) -> dict[str, Any]:
    """The inventory the lab profile itself is applied with (no BMCs yet)."""
    hosts, roles = _hosts(guests)
    return _inventory(lab_name(profile_name), "lab guests (internal)", hosts, roles, key,
                      known_hosts)


def lab_inventory(profile_name: str, guests: Sequence[Guest], key: Path, known_hosts: Path,
                  bmcs: Mapping[str, Mapping[str, Any]] | None) -> dict[str, Any]:
    """The inventory ``orch apply PROFILE -i ...`` uses; ``bmcs`` maps a domain to its
    ``bmc:`` mapping (password as a plain ``file:`` reference)."""
    hosts, roles = _hosts(guests)
    for h, g in zip(hosts, guests, strict=True):
        h["labels"] = {"lab": profile_name}
        if bmcs and g.domain in bmcs:
            h["bmc"] = dict(bmcs[g.domain])
    return _inventory(lab_name(profile_name),
                      f"lab guests for profile {profile_name} (written by `orch lab up`)",
                      hosts, roles, key, known_hosts)
