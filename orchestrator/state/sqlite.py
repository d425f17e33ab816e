"""SQLite backend: the default, one file beside the profile.

WAL journal with ``synchronous=FULL``: every committed transaction is on disk before
``write`` returns. The executor batches concurrent intents and outcomes into one
transaction (group commit), which keeps durable journaling cheap.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from orchestrator.errors import StateError
from orchestrator.state.sql import SqlStore


class SqliteStore(SqlStore):
    """``create=False`` (planning) leaves a missing file missing: the state is empty and
    nothing is written; only a run that records something creates the file."""

    def __init__(self, path: str | Path, create: bool = True) -> None:
        self.path = Path(path)
        self.url = str(self.path)
        target = str(self.path)
        if not create and not self.path.exists():
            target = ":memory:"
        try:
            if not create and target != ":memory:":
                self.read_only = True  # planning only reads: no -wal/-shm written
                self._conn = _open_read_only(self.path)
            else:
                if target != ":memory:":
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                self._conn = sqlite3.connect(target, timeout=30, check_same_thread=False,
                                             isolation_level="DEFERRED")
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA busy_timeout=30000")
        except (sqlite3.Error, OSError) as exc:
            raise StateError(f"cannot open state {self.path}: {exc}",
                             hint="check the path, or pass --state") from None
        super().__init__()
        if target == ":memory:":  # no state exists yet: it has no identity either
            self._conn.execute("DELETE FROM orch_meta WHERE key='state_id'")
            self.new_identity = False

    def _connection(self) -> Any:
        return self._conn

    def _lock_row(self, cur: Any, profile: str) -> None:
        # Take SQLite's write lock before reading the lease, so two runs cannot both see
        # it free. (The implicit transaction has not started yet: no statement ran.)
        if not self._conn.in_transaction:
            cur.execute("BEGIN IMMEDIATE")

    def close(self) -> None:
        self._conn.close()


def _open_read_only(path: Path) -> sqlite3.Connection:
    """``mode=ro``; where the directory is read-only too (no ``-shm`` can be made for the
    WAL), ``immutable=1``: nobody can write there either, so nothing changes under us."""
    from urllib.parse import quote
    uri = f"file:{quote(str(path.resolve()))}"
    conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=30, check_same_thread=False)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        conn.close()
        return sqlite3.connect(f"{uri}?immutable=1", uri=True, check_same_thread=False)
