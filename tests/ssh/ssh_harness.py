"""Applies SSH driver steps as the executor would, recording logs and progress."""

from __future__ import annotations

import time
from typing import Any

from drivers.ssh import SshDriver
from orchestrator.driver import ApplyRequest, ApplyResult
from orchestrator.plan import Action
from orchestrator.step import Step


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
