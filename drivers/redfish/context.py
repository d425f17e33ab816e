"""What one operation on one system carries: settings, where it runs, and how to wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from drivers.redfish.errors import translate
from drivers.redfish.settings import RedfishSettings
from orchestrator.errors import StepTimeoutError, TransientError

T = TypeVar("T")


@dataclass
class OperationContext:
    settings: RedfishSettings
    endpoint: str
    operation: str
    deadline: float
    log: Any
    report: Callable[[str], None] = lambda _text: None
    cancelled: threading.Event = field(default_factory=threading.Event)
    secrets: tuple[str, ...] = ()

    def translate(self, exc: BaseException) -> Exception:
        return translate(exc, endpoint=self.endpoint, operation=self.operation,
                         secrets=self.secrets)

    def wait_until(self, read: Callable[[], T], done: Callable[[T], bool], *, timeout: float,
                   what: str, tolerate_transient: bool = False) -> T:
        """Poll ``read()`` until ``done`` holds; StepTimeoutError after ``timeout`` seconds.

        With ``tolerate_transient``, a BMC that fails transiently while polled (it reboots
        too) is polled again until the timeout instead of failing the wait.
        """
        start = time.monotonic()
        limit = min(start + timeout, self.deadline)
        last: T | None = None
        while True:
            try:
                last = read()
                if done(last):
                    return last
            except Exception as exc:
                error = self.translate(exc)
                if not (tolerate_transient and isinstance(error, TransientError)):
                    raise error from None
                self.log.info("bmc.poll_failed", endpoint=self.endpoint, error=str(error))
            waited = time.monotonic() - start
            if time.monotonic() >= limit:
                raise StepTimeoutError(f"{what}: still {last} after {waited:.0f} s",
                                       endpoint=self.endpoint, operation=self.operation)
            self.report(f"{what}: {last}, {waited:.0f} s")
            if self.cancelled.wait(min(self.settings.poll_interval,
                                       max(limit - time.monotonic(), 0.0))):
                raise StepTimeoutError(f"{what}: cancelled after {waited:.0f} s",
                                       endpoint=self.endpoint, operation=self.operation)
