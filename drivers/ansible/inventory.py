"""Ansible inventory from orch's inventory hosts: a pure function, no Ansible imported.

``orch inventory --format ansible`` prints :func:`ansible_inventory`'s result as YAML; the
Ansible driver writes the same structure (plus key files it materialised) for a run. Hosts
have the ``inputs["host"]`` shape; each lands in ``all`` and in a group named after its role.
Passwords are never written here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.secrets import SECRET_KEY


def group_name(role: str) -> str:
    """Ansible group names are identifiers: ``pve-node`` becomes ``pve_node``."""
    name = re.sub(r"\W", "_", role.strip()) or "ungrouped_hosts"
    return f"_{name}" if name[0].isdigit() else name


def key_file_of(private_key: Any) -> str | None:
    """The key file a host's ``ssh.private_key`` names, when it names one directly.

    A ``file:`` reference with an absolute or ``~`` path (unresolved, or resolved into a
    Secret) and a plain path string name a file; key text and ``env:`` references do not.
    """
    reference = None
    if isinstance(private_key, Mapping) and SECRET_KEY in private_key:
        reference = str(private_key[SECRET_KEY])
    elif hasattr(private_key, "reference") and hasattr(private_key, "reveal"):
        reference = str(private_key.reference)
    elif isinstance(private_key, str) and private_key and "PRIVATE KEY-----" not in private_key:
        return os.path.expanduser(private_key)
    if reference and reference.startswith("file:"):
        path = os.path.expanduser(reference[len("file:"):])
        if os.path.isabs(path):
            return path
    return None


def host_vars(host: Mapping[str, Any], key_file: str | None = None) -> dict[str, Any]:
    ssh = host.get("ssh") or {}
    out: dict[str, Any] = {
        "ansible_host": str(host["address"]),
        "ansible_port": int(ssh.get("port") or 22),
        "ansible_user": str(ssh.get("user") or "root"),
    }
    key_file = key_file or key_file_of(ssh.get("private_key"))
    if key_file:
        out["ansible_ssh_private_key_file"] = key_file
    for key in ("node", "role"):
        if host.get(key):
            out[f"orch_{key}"] = str(host[key])
    return out


def ansible_inventory(hosts: Sequence[Mapping[str, Any]],
                      key_files: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A YAML-able Ansible inventory: every host under ``all``, one group per role.

    ``key_files`` maps host names to key files written for this run (for keys held as text).
    """
    all_hosts: dict[str, Any] = {}
    groups: dict[str, dict[str, Any]] = {}
    for host in hosts:
        name = str(host.get("name") or host["address"])
        all_hosts[name] = host_vars(host, (key_files or {}).get(name))
        if host.get("role"):
            group = groups.setdefault(group_name(str(host["role"])), {"hosts": {}})
            group["hosts"][name] = {}
    inventory: dict[str, Any] = {"all": {"hosts": all_hosts}}
    if groups:
        inventory["all"]["children"] = dict(sorted(groups.items()))
    return inventory
