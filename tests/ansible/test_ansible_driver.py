"""The Ansible driver: playbooks applied through ansible-runner to a real local sshd."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from ansible_harness import Runner, settings, sshd_server

from drivers.ansible import AnsibleDriver
from orchestrator.errors import PermanentError, StepTimeoutError, TransientError
from orchestrator.secrets import resolve


@pytest.mark.slow
def test_smoke_playbook_writes_the_file_on_the_host_and_is_idempotent(
        sshd: Any, run: Runner, tmp_path: Path, known_hosts: Path) -> None:
    target = tmp_path / "orch-smoke"
    inputs = {"playbook": "common/smoke.yml", "hosts": [sshd.host()],
              "extra_vars": {"smoke_path": str(target), "smoke_value": "forty-two"}}
    start = time.monotonic()
    first = run.apply(inputs)
    elapsed = time.monotonic() - start
    assert "value=forty-two" in target.read_text()
    assert "host=local" in target.read_text()
    assert first.outputs["changed"] == 1
    assert first.outputs["stats"]["local"].get("failures", 0) == 0
    assert "TASK [Write the smoke file] ok=1 changed=1" in run.reports
    assert f"[127.0.0.1]:{sshd.port}" in known_hosts.read_text() or \
        known_hosts.read_text().startswith("|1|")  # OpenSSH may hash the entry
    second = run.apply(inputs)
    assert second.outputs["changed"] == 0
    assert elapsed < 60


@pytest.mark.slow
def test_a_failing_task_is_reported_with_host_task_and_message(
        sshd: Any, run: Runner, tmp_path: Path) -> None:
    inputs = {"playbook": "common/smoke.yml", "hosts": [sshd.host()],
              "extra_vars": {"smoke_path": str(tmp_path / "f"), "smoke_fail": True}}
    with pytest.raises(PermanentError) as info:
        run.apply(inputs)
    text = str(info.value)
    assert "playbook common/smoke.yml failed on 1 host(s)" in text
    assert "local: TASK [Fail on purpose when asked] failed: smoke_fail was set" in text
    assert "ansible task failed" in run.log.text


@pytest.mark.slow
def test_tags_and_a_key_from_a_file_reference(sshd: Any, run: Runner, tmp_path: Path) -> None:
    """A file: key reference is used in place (no copy); tags select the tasks."""
    key = resolve(f"file:{sshd.client_key}")
    target = tmp_path / "tagged"
    run.apply({"playbook": "common/smoke.yml", "hosts": [sshd.host(private_key=key)],
               "extra_vars": {"smoke_path": str(target)}, "tags": ["never-matches"]})
    assert not target.exists()  # no task carries that tag


@pytest.mark.slow
def test_an_unreachable_host_is_transient(sshd: Any, run: Runner, tmp_path: Path) -> None:
    port = sshd_server.free_port()
    with pytest.raises(TransientError) as info:
        run.apply({"playbook": "common/smoke.yml", "hosts": [sshd.host(port=port)],
                   "extra_vars": {"smoke_path": str(tmp_path / "never")}})
    assert "local: TASK [Gathering Facts] unreachable" in str(info.value)
    assert "Connection refused" in str(info.value)


@pytest.mark.slow
def test_a_wrong_key_is_permanent_and_never_leaks_key_text(
        sshd: Any, run: Runner, tmp_path: Path) -> None:
    stranger = sshd_server.keygen(tmp_path / "stranger").read_text()
    with pytest.raises(PermanentError) as info:
        run.apply({"playbook": "common/smoke.yml", "hosts": [sshd.host(private_key=stranger)],
                   "extra_vars": {"smoke_path": str(tmp_path / "never")}})
    assert not isinstance(info.value, TransientError)
    assert "Permission denied" in str(info.value)
    assert "PRIVATE KEY" not in str(info.value) + run.log.text


def test_playbook_paths_cannot_leave_playbooks_dir(run: Runner) -> None:
    with pytest.raises(PermanentError, match="no playbook"):
        run.apply({"playbook": "../pyproject.toml", "hosts": [{"name": "x",
                                                                "address": "127.0.0.1"}]})


@pytest.mark.slow
def test_a_playbook_past_the_deadline_is_stopped(sshd: Any, tmp_path: Path,
                                                 known_hosts: Path) -> None:
    books = tmp_path / "books"
    books.mkdir()
    (books / "sleep.yml").write_text(
        "- name: Sleep\n  hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Sleep long\n      ansible.builtin.command: sleep 60\n")
    driver = AnsibleDriver(settings(known_hosts, playbooks_dir=str(books)))
    start = time.monotonic()
    with pytest.raises(StepTimeoutError, match="deadline"):
        Runner(driver).apply({"playbook": "sleep.yml", "hosts": [sshd.host()]}, timeout=8)
    assert time.monotonic() - start < 20
