"""ansible_inventory: orch hosts to an Ansible inventory, without importing Ansible."""

from __future__ import annotations

import subprocess
import sys

from drivers.ansible.inventory import ansible_inventory, group_name
from orchestrator.secrets import Secret


def test_hosts_grouped_by_role_with_connection_vars() -> None:
    hosts = [
        {"name": "lab-01", "node": "pve-1", "role": "pve", "address": "192.0.2.11",
         "ssh": {"user": "root", "port": 22, "private_key": {"$secret": "file:/keys/id"}}},
        {"name": "lab-02", "node": "pve-2", "role": "pve", "address": "192.0.2.12",
         "ssh": {"user": "admin", "port": 2222,
                 "private_key": {"$secret": "env:LAB_KEY"}, "password": Secret("env:P", "pw")}},
        {"name": "l0", "role": "kvm-host", "address": "192.0.2.20"},
    ]
    inventory = ansible_inventory(hosts, key_files={"lab-02": "/tmp/run/keys/0.key"})
    assert inventory == {"all": {
        "hosts": {
            "lab-01": {"ansible_host": "192.0.2.11", "ansible_port": 22, "ansible_user": "root",
                       "ansible_ssh_private_key_file": "/keys/id", "orch_node": "pve-1",
                       "orch_role": "pve"},
            "lab-02": {"ansible_host": "192.0.2.12", "ansible_port": 2222,
                       "ansible_user": "admin",
                       "ansible_ssh_private_key_file": "/tmp/run/keys/0.key",
                       "orch_node": "pve-2", "orch_role": "pve"},
            "l0": {"ansible_host": "192.0.2.20", "ansible_port": 22, "ansible_user": "root",
                   "orch_role": "kvm-host"},
        },
        "children": {"kvm_host": {"hosts": {"l0": {}}},
                     "pve": {"hosts": {"lab-01": {}, "lab-02": {}}}},
    }}
    assert "pw" not in repr(inventory)


def test_group_names_are_identifiers() -> None:
    assert group_name("pve-node") == "pve_node"
    assert group_name("3par") == "_3par"


def test_the_inventory_module_does_not_import_ansible() -> None:
    code = ("import sys, drivers.ansible.inventory, drivers.ansible; "
            "print(sorted(m for m in sys.modules if m.startswith('ansible')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
