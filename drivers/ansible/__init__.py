"""The Ansible driver: playbooks from playbooks/ run through ansible-runner.

ansible_runner is imported only when a playbook runs. :func:`ansible_inventory` (for
``orch inventory --format ansible``) lives in :mod:`drivers.ansible.inventory`, which imports
no Ansible at all.
"""

from drivers.ansible.driver import AnsibleDriver
from drivers.ansible.inventory import ansible_inventory
from drivers.ansible.settings import AnsibleSettings

__all__ = ["AnsibleDriver", "AnsibleSettings", "ansible_inventory"]
