"""The bound nodes as an Ansible inventory (``orch inventory --format ansible``).

Groups are the profile's roles; host variables carry the address, SSH user and port, and a
private key *file* path where the reference is ``file:`` (an ``env:`` key cannot be named in
a file and is left to the SSH agent). No secret value is ever written.
"""

from __future__ import annotations

from typing import Any

from orchestrator.loader import Loaded


def ansible_inventory_for(loaded: Loaded) -> dict[str, Any]:
    groups: dict[str, Any] = {}
    for role, nodes in loaded.nodes.items():
        hosts: dict[str, Any] = {}
        for n in nodes:
            h = n.host
            hv: dict[str, Any] = {"ansible_host": h.address or n.name, "orch_node": n.name,
                                  "orch_role": role}
            if h.ssh is not None:
                hv["ansible_user"] = h.ssh.user
                hv["ansible_port"] = h.ssh.port
                if h.ssh.private_key and h.ssh.private_key.startswith("file:"):
                    hv["ansible_ssh_private_key_file"] = h.ssh.private_key[5:]
            hosts[n.name] = hv
        groups[role] = {"hosts": hosts}
    return {"all": {"children": groups,
                    "vars": {"orch_profile": loaded.profile.metadata.name}}}
