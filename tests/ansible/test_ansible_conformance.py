"""The driver conformance kit (orchestrator.testing) on the Ansible driver, against the real
OpenSSH server on 127.0.0.1 that the Ansible tier starts. The playbook writes a marker file
in a temporary directory and the delete playbook removes it; the login key is given as a
secret reference, so the kit can check it never comes back in outputs or errors. A playbook
run leaves nothing the driver can read (can_read is False), as the SSH driver's commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ansible_harness import settings, sshd_server

from drivers.ansible import AnsibleDriver
from orchestrator.step import Step
from orchestrator.testing import CHECKS, Case

PLAY = """- name: conformance marker
  hosts: all
  gather_facts: false
  tasks:
    - name: marker
      ansible.builtin.copy: {{dest: {marker}, content: "orch\\n", mode: "0644"}}
"""
UNPLAY = """- name: conformance marker removed
  hosts: all
  gather_facts: false
  tasks:
    - name: marker gone
      ansible.builtin.file: {{path: {marker}, state: absent}}
"""


def _case(sshd: Any, tmp_path: Path) -> tuple[AnsibleDriver, Case]:
    books = tmp_path / "books"
    books.mkdir()
    marker = tmp_path / "marker"
    (books / "make.yml").write_text(PLAY.format(marker=marker))
    (books / "unmake.yml").write_text(UNPLAY.format(marker=marker))
    driver = AnsibleDriver(settings(tmp_path / "known_hosts", playbooks_dir=str(books)))
    host = sshd.host(private_key={"$secret": f"file:{sshd.client_key}"})
    step = Step("local/ansible", "ansible.playbook", "ansible", "marker", "os",
                {"playbook": "make.yml", "on_delete_playbook": "unmake.yml", "hosts": [host]},
                endpoint=sshd.address)
    closed = sshd.host(port=sshd_server.free_port(),
                       private_key={"$secret": f"file:{sshd.client_key}"})
    failing = Step("local/refused", "ansible.playbook", "ansible", "refused", "os",
                   {"playbook": "make.yml", "hosts": [closed]}, endpoint=sshd.address)
    return driver, Case(step, failing, secrets=(sshd.client_key.read_text().strip(),),
                        timeout=120, stable_outputs=False)


@pytest.mark.slow
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_the_ansible_driver_conforms(check, sshd: Any, tmp_path: Path) -> None:
    driver, case = _case(sshd, tmp_path)
    check(driver, case)
