"""Group commit for the journal: concurrent steps' intents and outcomes share transactions.

Entries are handed to :class:`JournalWriter` and committed by a single writer thread, in
the order they were submitted, whatever has queued up in one transaction: with eight steps
finishing at once, eight outcomes cost one fsync instead of eight. ``submit`` returns a
future that is done once the entry is durable; because commits keep submission order, an
intent that is durable implies every entry submitted before it is durable too.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future

from orchestrator.errors import StateError
from orchestrator.state.base import JournalEntry, StateStore


class JournalWriter:
    def __init__(self, store: StateStore, profile: str, batch: int = 512) -> None:
        self._store = store
        self._profile = profile
        self._batch = batch
        self._queue: queue.SimpleQueue[tuple[JournalEntry, Future[None]] | None] = \
            queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="orch-journal", daemon=True)
        self._thread.start()

    def submit(self, entry: JournalEntry) -> Future[None]:
        """Queue ``entry``; the future completes when it is committed (or failed to be)."""
        fut: Future[None] = Future()
        self._queue.put((entry, fut))
        return fut

    def write(self, entry: JournalEntry, timeout: float = 120.0) -> None:
        """Return once ``entry`` is committed; raise StateError if it could not be."""
        fut = self.submit(entry)
        try:
            fut.result(timeout=timeout)
        except TimeoutError:
            raise StateError(f"journal write for {entry.step.id} not committed within "
                             f"{timeout:.0f} s") from None

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            pending = [first]
            stop = False
            while len(pending) < self._batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                pending.append(nxt)
            try:
                self._store.write([e for e, _ in pending], self._profile)
            except Exception as exc:
                for _, fut in pending:
                    fut.set_exception(StateError(f"journal write failed: {exc}"))
            else:
                for _, fut in pending:
                    fut.set_result(None)
            if stop:
                return
