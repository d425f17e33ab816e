from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sshd_server import Sshd, available, ensure_password_user, running_sshd

from drivers.ssh import SshDriver, SshSettings
from orchestrator.driver import ApplyRequest, ApplyResult
from orchestrator.plan import Action
from orchestrator.step import Step


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    why = available()
    if why:
        pytest.fail(why)  # CI installs it; a silent skip would hide a broken tier
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture(scope="session")
def password_user(sshd: Sshd) -> tuple[str, str]:
    from sshd_server import PASSWORD_USER
    return PASSWORD_USER, ensure_password_user()


class RecordingLog:
    """Stands in for the executor's structured logger; keeps every event as text."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def _log(self, level: str, event: str, **fields: Any) -> None:
        self.lines.append(f"{level} {event} {fields!r}")

    def info(self, event: str, **fields: Any) -> None:
        self._log("info", event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log("warning", event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self._log("error", event, **fields)

    def debug(self, event: str, **fields: Any) -> None:
        self._log("debug", event, **fields)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class Runner:
    """Builds steps for the SSH driver and applies them as the executor would."""

    def __init__(self, driver: SshDriver) -> None:
        self.driver = driver
        self.log = RecordingLog()
        self.reports: list[str] = []

    def apply(self, kind: str, inputs: dict[str, Any], *, timeout: float = 30,
              action: Action = Action.CREATE) -> ApplyResult:
        step = Step(id=f"local/{kind}", kind=kind, driver="ssh", component="test",
                    layer="os", inputs={}, timeout=timeout)
        request = ApplyRequest(step=step, action=action, inputs=inputs, prior_outputs={},
                               upstream={}, deadline=time.monotonic() + timeout,
                               log=self.log, report=self.reports.append)
        return self.driver.apply(request)


@pytest.fixture
def known_hosts(tmp_path: Path) -> Path:
    return tmp_path / "state" / "known_hosts"


@pytest.fixture
def driver(known_hosts: Path) -> Iterator[SshDriver]:
    d = SshDriver(SshSettings(known_hosts=str(known_hosts), connect_timeout=5,
                              wait_interval=0.5))
    yield d
    d.close()


@pytest.fixture
def run(driver: SshDriver) -> Runner:
    return Runner(driver)
