"""Group commit for the journal: concurrent steps' intents and outcomes share transactions.

Entries are handed to :class:`JournalWriter` and committed by a single writer thread, in
the order they were submitted, whatever has queued up in one transaction: with eight steps
finishing at once, eight outcomes cost one fsync instead of eight. ``submit`` returns a
future that is done once the entry is durable; because commits keep submission order, an
intent that is durable implies every entry submitted before it is durable too.

A batch the store refuses as busy (another process holds its write lock) is retried, for
up to ``retry_seconds``. Any other failure, or a busy store past that, *breaks* the writer:
that batch and everything submitted after it fail, nothing more is written (so no entry
commits after one that did not), and :attr:`JournalWriter.failure` says why. The executor
then starts nothing more and the run fails.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future

from orchestrator.errors import LeaseLostError, StateError
from orchestrator.state.base import Holder, JournalEntry, StateStore, StoreBusyError


class JournalWriter:
    def __init__(self, store: StateStore, profile: str, batch: int = 512,
                 holder: Holder | None = None, retry_seconds: float = 120.0) -> None:
        self._store = store
        self._profile = profile
        self._batch = batch
        self._holder = holder
        self._retry_seconds = retry_seconds
        self.failure: StateError | None = None
        #: entries whose write failed (their outcome is not in the state)
        self.unwritten: list[JournalEntry] = []
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

    def close(self, timeout: float = 60.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout=timeout)

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
            if self.failure is None:
                self._commit(pending)
            if self.failure is not None:
                self.unwritten.extend(e for e, _ in pending)
                for _, fut in pending:
                    fut.set_exception(self.failure)
            else:
                for _, fut in pending:
                    fut.set_result(None)
            if stop:
                return

    def _commit(self, pending: list[tuple[JournalEntry, Future[None]]]) -> None:
        give_up = time.monotonic() + self._retry_seconds
        wait = 0.05
        while True:
            try:
                self._store.write([e for e, _ in pending], self._profile, self._holder)
                return
            except StoreBusyError as exc:
                if time.monotonic() + wait >= give_up:
                    self.failure = StateError(f"journal write failed: {exc}", hint=exc.hint)
                    return
                time.sleep(wait)
                wait = min(wait * 2, 1.0)
            except LeaseLostError as exc:
                self.failure = exc
                return
            except Exception as exc:
                text = str(exc) if isinstance(exc, StateError) else \
                    f"{type(exc).__name__}: {exc}"
                self.failure = StateError(f"journal write failed: {text}",
                                          hint=getattr(exc, "hint", ""))
                return
