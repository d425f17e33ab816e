"""Applies Ansible driver steps as the executor would; loads the shared sshd helpers."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

from drivers.ansible import AnsibleDriver, AnsibleSettings
from orchestrator.driver import ApplyRequest, ApplyResult
from orchestrator.plan import Action
from orchestrator.step import Step


def _load_sshd_helpers() -> Any:
    """The real-sshd fixture module lives with the SSH driver's tests; load it by path."""
    path = Path(__file__).resolve().parents[1] / "ssh" / "sshd_server.py"
    spec = importlib.util.spec_from_file_location("orch_test_sshd_server", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


sshd_server = _load_sshd_helpers()


class RecordingLog:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __getattr__(self, level: str) -> Any:
        def log(event: str, **fields: Any) -> None:
            self.lines.append(f"{level} {event} {fields!r}")
        return log

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class Runner:
    def __init__(self, driver: AnsibleDriver) -> None:
        self.driver = driver
        self.log = RecordingLog()
        self.reports: list[str] = []

    def apply(self, inputs: dict[str, Any], *, timeout: float = 120,
              action: Action = Action.CREATE) -> ApplyResult:
        step = Step(id="local/ansible", kind="ansible.playbook", driver="ansible",
                    component="test", layer="os", timeout=timeout)
        request = ApplyRequest(step=step, action=action, inputs=inputs, prior_outputs={},
                               upstream={}, deadline=time.monotonic() + timeout,
                               log=self.log, report=self.reports.append)
        return self.driver.apply(request)


def settings(known_hosts: Path, **more: Any) -> AnsibleSettings:
    # The "host" is this machine, whose root PATH may lead to a pyenv shim; Debian's own
    # Python is what a real guest would offer.
    return AnsibleSettings(known_hosts=str(known_hosts), python_interpreter="/usr/bin/python3",
                           **more)
