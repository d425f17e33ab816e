"""SIGINT and SIGTERM during an apply, as Terraform handles them.

The first signal stops starting steps; the ones in progress finish (after the executor's
stop grace they see ``request.cancelled``), every outcome is journaled, the summary is
printed and orch exits 3. A second signal cancels the steps in progress at once and stops
waiting for them shortly after, still recording what it can. The handler only tells the
executor (no output from inside a signal handler); the walk announces it.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any


@contextmanager
def interrupts(executor: Any) -> Iterator[None]:
    def handler(signum: int, _frame: Any) -> None:
        executor.interrupt(signal.Signals(signum).name)

    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        with suppress(ValueError):  # not the main thread: leave signals alone
            old[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)
