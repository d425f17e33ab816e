"""Holding a store's lease: acquire (fail fast or wait), renew in the background, release.

The lease is renewed on a connection of its own (never behind the journal writer), so a
store that is slow to take journal writes does not make a live run look dead. A holder
*proves* its lease for a while after each successful renewal (80 % of the lease period,
counted from when the renewal was sent: before anyone else can find it expired). Before
each driver call the executor asks :meth:`Lease.ensure`; a lease that is not proven is
renewed on the spot, and a run that cannot renew it stops acting.

A lease that cannot be renewed is *lost*: another run found it expired and took it, or the
store did not answer for a whole lease period. The holder learns of it through
:attr:`Lease.lost` and must start nothing more.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from orchestrator.errors import LeaseLostError, LockHeldError

if TYPE_CHECKING:
    from orchestrator.state.base import Holder, StateStore

#: the share of the lease period a successful renewal proves the lease for
PROOF = 0.8


def lease_seconds(default: float = 30.0) -> float:
    """The lease period: ``ORCH_LEASE_SECONDS`` (tests shorten it), else ``default``."""
    raw = os.environ.get("ORCH_LEASE_SECONDS", "")
    try:
        value = float(raw) if raw else default
    except ValueError:
        return default
    return value if 0.2 <= value <= 3600 else default


class Lease:
    """A held lease; :attr:`lost` is set (with :attr:`why`) once it can no longer be trusted."""

    def __init__(self, seconds: float = 30.0,
                 renew: Callable[[], bool] | None = None) -> None:
        self.lost = threading.Event()
        self.why = ""
        self.seconds = seconds
        self.proven_until = time.monotonic() + seconds * PROOF
        self._renew = renew
        self._lock = threading.Lock()

    def lose(self, why: str) -> None:
        if not self.lost.is_set():
            self.why = why
        self.lost.set()

    def renewed(self, sent_at: float) -> None:
        self.proven_until = max(self.proven_until, sent_at + self.seconds * PROOF)

    def ensure(self) -> None:
        """Return if the lease is proven now; renew it if not; raise LeaseLostError when it
        is lost or cannot be proven (the caller must not act)."""
        if self.lost.is_set():
            raise LeaseLostError(self.why)
        if time.monotonic() < self.proven_until:
            return
        with self._lock:
            if time.monotonic() < self.proven_until or self.lost.is_set():
                if self.lost.is_set():
                    raise LeaseLostError(self.why)
                return
            sent = time.monotonic()
            try:
                mine = self._renew() if self._renew is not None else False
            except Exception as exc:
                mine = False
                why = f"cannot renew it: {exc}"
            else:
                why = "another run took it over after it expired"
            if not mine:
                self.lose(why)
                raise LeaseLostError(self.why)
            self.renewed(sent)


@contextmanager
def hold(store: StateStore, profile: str, holder: Holder, timeout: float,
         poll: float) -> Iterator[Lease]:
    deadline = time.monotonic() + max(timeout, 0.0)
    while True:
        sent = time.monotonic()
        other = store.try_lock(profile, holder)
        if other is None:
            break
        if time.monotonic() >= deadline:
            since = datetime.fromtimestamp(other.started_at, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
            raise LockHeldError(holder=other.describe(), since=since)
        time.sleep(min(poll, max(deadline - time.monotonic(), 0.01)))
    stop = threading.Event()
    lease = Lease(store.lease_seconds, lambda: store.renew_lock(profile, holder))
    lease.proven_until = sent + store.lease_seconds * PROOF

    def renew() -> None:
        while not stop.wait(store.lease_seconds / 3):
            sent = time.monotonic()
            try:
                still_mine = store.renew_lock(profile, holder)
            except Exception as exc:  # a store that does not answer: retried until expiry
                if time.monotonic() >= lease.proven_until:
                    lease.lose(f"not renewed for {store.lease_seconds:.0f} s "
                               f"(last error: {type(exc).__name__}: {exc})")
                    return
                continue
            if not still_mine:
                lease.lose("another run took it over after it expired")
                return
            lease.renewed(sent)

    beat = threading.Thread(target=renew, name="orch-lease", daemon=True)
    beat.start()
    try:
        yield lease
    finally:
        stop.set()
        beat.join(timeout=5)
        if not lease.lost.is_set():
            with suppress(Exception):  # a store gone bad: the lease expires by itself
                store.unlock(profile, holder)
