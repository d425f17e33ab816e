"""SQLite backend: the default, one file beside the profile.

WAL journal with ``synchronous=FULL``: every committed transaction is on disk before
``write`` returns. The executor batches concurrent intents and outcomes into one
transaction (group commit), which keeps durable journaling cheap.

``busy_timeout`` (how long a write waits for another process's write lock) is 30 s, or
``ORCH_SQLITE_BUSY_TIMEOUT`` seconds. A lock attempt waits at most 2 s for it and is then
retried up to ``--lock-timeout``.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from orchestrator.errors import OrchError, StateError
from orchestrator.state.base import StoreBusyError
from orchestrator.state.sql import SqlStore

#: how long one lock attempt waits for SQLite's write lock (ms)
LOCK_ATTEMPT_BUSY_MS = 2000


def busy_timeout() -> float:
    raw = os.environ.get("ORCH_SQLITE_BUSY_TIMEOUT", "")
    try:
        value = float(raw) if raw else 30.0
    except ValueError:
        return 30.0
    return value if 0 < value <= 3600 else 30.0


class SqliteStore(SqlStore):
    """``create=False`` (planning) leaves a missing file missing: the state is empty and
    nothing is written; only a run that records something creates the file."""

    def __init__(self, path: str | Path, create: bool = True) -> None:
        self.path = Path(path)
        self.url = str(self.path)
        self.busy = busy_timeout()
        target = str(self.path)
        if not create and not self.path.exists():
            target = ":memory:"
        self._target = target
        try:
            if not create and target != ":memory:":
                self.read_only = True  # planning only reads: no -wal/-shm written
                self._conn = _open_read_only(self.path, self.busy)
            else:
                if target != ":memory:":
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                self._conn = self._open(target)
        except (sqlite3.Error, OSError) as exc:
            translated = self._translate(exc)
            raise translated or StateError(f"cannot open state {self.path}: {exc}",
                                           hint="check the path, or pass --state") from None
        super().__init__()
        if target == ":memory:":  # no state exists yet: it has no identity either
            self._conn.execute("DELETE FROM orch_meta WHERE key='state_id'")
            self.new_identity = False

    def _open(self, target: str) -> sqlite3.Connection:
        conn = sqlite3.connect(target, timeout=self.busy, check_same_thread=False,
                               isolation_level="DEFERRED")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(f"PRAGMA busy_timeout={int(self.busy * 1000)}")
        return conn

    def _connection(self) -> Any:
        return self._conn

    def _open_lease_connection(self) -> Any:
        return self._open(self._target)

    def _translate(self, exc: Exception) -> OrchError | None:
        if not isinstance(exc, sqlite3.Error):
            return None
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        low = text.lower()
        where = f"state {self.path}"
        if "locked" in low or "busy" in low:
            return StoreBusyError(
                f"{where} is locked by another process writing to it (waited "
                f"{self.busy:.0f} s)", hint="let it finish, or pass --lock-timeout SECONDS; "
                "nothing was lost")
        if "readonly" in low or "read-only" in low or (
                "unable to open" in low and self._read_only()):
            return StateError(f"{where} is read-only ({text})",
                              hint="make the file and its directory writable, or pass "
                              "--state; nothing was changed")
        if "full" in low:
            return StateError(f"no space left for {where} ({text})",
                              hint="free some space, then run the command again: what was "
                              "recorded is kept")
        if any(k in low for k in ("no such", "malformed", "not a database", "corrupt")):
            return StateError(f"{where} is damaged ({text})",
                              hint="restore it from a backup; orch changed nothing")
        if "unable to open" in low:
            return StateError(f"cannot open {where} ({text})",
                              hint="check the path and its permissions, or pass --state")
        return StateError(f"{where}: {text}")

    def _read_only(self) -> bool:
        """The file, or its directory (WAL needs -wal and -shm beside it), is not writable
        (os.access also says so for root on a read-only mount)."""
        return (self.path.exists() and not os.access(self.path, os.W_OK)) or \
            not os.access(self.path.parent, os.W_OK)

    def _lock_row(self, cur: Any, profile: str) -> None:
        # Take SQLite's write lock before reading the lease, so two runs cannot both see
        # it free. (The implicit transaction has not started yet: no statement ran.)
        if not self._conn.in_transaction:
            cur.execute(f"PRAGMA busy_timeout={LOCK_ATTEMPT_BUSY_MS}")
            try:
                cur.execute("BEGIN IMMEDIATE")
            finally:
                cur.execute(f"PRAGMA busy_timeout={int(self.busy * 1000)}")

    def close(self) -> None:
        self._close_lease()
        self._conn.close()


def _open_read_only(path: Path, busy: float) -> sqlite3.Connection:
    """``mode=ro``; where the directory is read-only too (no ``-shm`` can be made for the
    WAL), ``immutable=1``: nobody can write there either, so nothing changes under us."""
    from urllib.parse import quote
    uri = f"file:{quote(str(path.resolve()))}"
    conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=busy, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={int(busy * 1000)}")
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        conn.close()
        return sqlite3.connect(f"{uri}?immutable=1", uri=True, check_same_thread=False)
