"""Holding a store's lease: acquire (fail fast or wait), renew in the background, release.

A lease that cannot be renewed is *lost*: another run found it expired and took it, or the
store did not answer for a whole lease period. The holder learns of it through
:attr:`Lease.lost` and must start nothing more (the executor checks before every step).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from orchestrator.errors import LockHeldError

if TYPE_CHECKING:
    from orchestrator.state.base import Holder, StateStore


class Lease:
    """A held lease; :attr:`lost` is set (with :attr:`why`) once it can no longer be trusted."""

    def __init__(self) -> None:
        self.lost = threading.Event()
        self.why = ""

    def lose(self, why: str) -> None:
        self.why = why
        self.lost.set()


@contextmanager
def hold(store: StateStore, profile: str, holder: Holder, timeout: float,
         poll: float) -> Iterator[Lease]:
    deadline = time.monotonic() + max(timeout, 0.0)
    while True:
        other = store.try_lock(profile, holder)
        if other is None:
            break
        if time.monotonic() >= deadline:
            since = datetime.fromtimestamp(other.started_at, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
            raise LockHeldError(holder=other.describe(), since=since)
        time.sleep(min(poll, max(deadline - time.monotonic(), 0.01)))
    stop = threading.Event()
    lease = Lease()

    def renew() -> None:
        renewed = time.monotonic()
        while not stop.wait(store.lease_seconds / 3):
            try:
                still_mine = store.renew_lock(profile, holder)
            except Exception as exc:  # a store that does not answer: retried until expiry
                if time.monotonic() - renewed >= store.lease_seconds:
                    lease.lose(f"not renewed for {store.lease_seconds:.0f} s "
                               f"(last error: {type(exc).__name__}: {exc})")
                    return
                continue
            if not still_mine:
                lease.lose("another run took it over after it expired")
                return
            renewed = time.monotonic()

    beat = threading.Thread(target=renew, name="orch-lease", daemon=True)
    beat.start()
    try:
        yield lease
    finally:
        stop.set()
        beat.join(timeout=5)
        store.unlock(profile, holder)
