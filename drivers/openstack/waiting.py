"""Polling a resource until it reaches a status or is gone, bounded by the step deadline."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from orchestrator.errors import PermanentError, StepTimeoutError


def poll(read: Callable[[], Any], *, done: Callable[[Any], bool], failed: Callable[[Any], str],
         what: str, endpoint: str, deadline: float, interval: float,
         report: Callable[[str], None], cancelled: threading.Event) -> Any:
    """Call ``read`` until ``done(value)``; ``failed(value)`` returning a text ends it with a
    PermanentError; the deadline ends it with StepTimeoutError naming the last value."""
    started = time.monotonic()
    while True:
        value = read()
        if done(value):
            return value
        problem = failed(value)
        if problem:
            raise PermanentError(f"{what}: {problem}", endpoint=endpoint, operation=what)
        remaining = deadline - time.monotonic()
        if remaining <= 0 or cancelled.is_set():
            raise StepTimeoutError(f"{what}: not done by the step deadline",
                                   endpoint=endpoint, operation=what,
                                   hint="raise the step's timeout")
        report(f"{what}, {time.monotonic() - started:.0f} s")
        cancelled.wait(min(interval, remaining))
