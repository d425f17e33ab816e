"""Holding a store's lease: acquire (fail fast or wait), renew in the background, release."""

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


@contextmanager
def hold(store: StateStore, profile: str, holder: Holder, timeout: float,
         poll: float) -> Iterator[None]:
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

    def renew() -> None:
        while not stop.wait(store.lease_seconds / 3):
            try:
                store.renew_lock(profile, holder)
            except Exception:
                continue

    beat = threading.Thread(target=renew, name="orch-lease", daemon=True)
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join(timeout=5)
        store.unlock(profile, holder)
