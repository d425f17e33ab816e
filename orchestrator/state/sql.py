"""The journal and records over SQL, shared by the SQLite and PostgreSQL backends.

Tables (``orch_`` prefix): ``records`` (one row per profile and step: status, fingerprint,
the step as JSON, outputs as JSON, the pending action, the last error), ``journal``
(append-only intents and outcomes), ``runs`` and ``locks`` (one lease per profile).
Statements are written with ``?`` placeholders; a backend translates them.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from orchestrator.errors import LeaseLostError, OrchError, StateError
from orchestrator.secrets import redact
from orchestrator.state.base import (
    Holder,
    JournalEntry,
    Record,
    RecordStatus,
    RunInfo,
    StateStore,
    StoreBusyError,
)
from orchestrator.state.lease import lease_seconds

#: the schema this orch writes; a state with a higher number was written by a newer orch
SCHEMA_VERSION = "1"

#: every column orch reads, by table: a state missing one is damaged
COLUMNS = {
    "orch_records": "profile, step_id, status, fingerprint, step, outputs, pending_action, "
                    "run_id, updated_at, error",
    "orch_journal": "seq, profile, run_id, step_id, phase, action, result, fingerprint, "
                    "error, at",
    "orch_runs": "run_id, profile, mode, started_at, finished_at, status, holder",
    "orch_locks": "profile, host, pid, started_at, expires_at, run_id",
}

TABLES = [
    """CREATE TABLE IF NOT EXISTS orch_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS orch_records (
        profile TEXT NOT NULL, step_id TEXT NOT NULL, status TEXT NOT NULL,
        fingerprint TEXT NOT NULL, step TEXT NOT NULL, outputs TEXT NOT NULL,
        pending_action TEXT NOT NULL, run_id TEXT NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
        error TEXT NOT NULL, PRIMARY KEY (profile, step_id))""",
    """CREATE TABLE IF NOT EXISTS orch_journal (
        seq {serial}, profile TEXT NOT NULL, run_id TEXT NOT NULL, step_id TEXT NOT NULL,
        phase TEXT NOT NULL, action TEXT NOT NULL, result TEXT NOT NULL,
        fingerprint TEXT NOT NULL, error TEXT NOT NULL, at DOUBLE PRECISION NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS orch_journal_step ON orch_journal (profile, step_id)""",
    """CREATE TABLE IF NOT EXISTS orch_runs (
        run_id TEXT PRIMARY KEY, profile TEXT NOT NULL, mode TEXT NOT NULL,
        started_at DOUBLE PRECISION NOT NULL, finished_at DOUBLE PRECISION,
        status TEXT NOT NULL, holder TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS orch_locks (
        profile TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL,
        started_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL,
        run_id TEXT NOT NULL)""",
]

UPSERT_APPLIED = """
INSERT INTO orch_records (profile, step_id, status, fingerprint, step, outputs,
                          pending_action, run_id, updated_at, error)
VALUES (?, ?, 'applied', ?, ?, ?, '', ?, ?, '')
ON CONFLICT (profile, step_id) DO UPDATE SET status='applied',
  fingerprint=excluded.fingerprint, step=excluded.step, outputs=excluded.outputs,
  pending_action='', run_id=excluded.run_id, updated_at=excluded.updated_at, error=''"""

UPSERT_PENDING = """
INSERT INTO orch_records (profile, step_id, status, fingerprint, step, outputs,
                          pending_action, run_id, updated_at, error)
VALUES (?, ?, 'pending', '', ?, '{}', ?, ?, ?, '')
ON CONFLICT (profile, step_id) DO UPDATE SET status='pending',
  pending_action=excluded.pending_action, run_id=excluded.run_id,
  updated_at=excluded.updated_at"""

MARK_FAILED = """
UPDATE orch_records SET status='failed', error=?, run_id=?, updated_at=?
WHERE profile=? AND step_id=?"""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


class SqlStore(StateStore):
    """Everything but the connection. Subclasses open it and translate placeholders."""

    serial = "INTEGER PRIMARY KEY AUTOINCREMENT"

    #: opened only to read (``plan`` of a state in a read-only directory): nothing is created
    read_only = False
    #: this open gave the state its id (a new state, or one made before states had ids)
    new_identity = False

    def __init__(self) -> None:
        self._mutex = threading.RLock()
        self._lease_mutex = threading.Lock()
        self._lease_conn: Any = None
        self.lease_seconds = lease_seconds(self.lease_seconds)
        if self.read_only:  # nothing is created; a newer or damaged state is still refused
            with self._tx() as cur:
                if self._has_meta(cur):
                    cur.execute(self._q("SELECT value FROM orch_meta WHERE key='schema'"))
                    row = cur.fetchone()
                    if row is not None:
                        self._check_schema(str(row[0]))
                    self._check_columns(cur)
            return
        with self._tx() as cur:
            row = None
            if self._has_meta(cur):
                cur.execute(self._q("SELECT value FROM orch_meta WHERE key='schema'"))
                row = cur.fetchone()
            if row is not None:
                self._check_schema(str(row[0]))
            for stmt in TABLES:
                cur.execute(stmt.format(serial=self.serial))
            if row is None:
                cur.execute(self._q("INSERT INTO orch_meta (key, value) VALUES ('schema', ?)"),
                            (SCHEMA_VERSION,))
            cur.execute(self._q("SELECT value FROM orch_meta WHERE key='state_id'"))
            if cur.fetchone() is None:  # the identity a saved plan names (issue 8, item 3)
                cur.execute(self._q("INSERT INTO orch_meta (key, value) VALUES "
                                    "('state_id', ?)"), (uuid.uuid4().hex,))
                self.new_identity = True
            self._check_columns(cur)

    # -- identity and other facts about the state -------------------------------------------
    def meta(self, key: str) -> str | None:
        try:
            with self._tx() as cur:
                cur.execute(self._q("SELECT value FROM orch_meta WHERE key=?"), (key,))
                row = cur.fetchone()
        except Exception:  # a read-only state made before orch_meta existed
            if self.read_only:
                return None
            raise
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as cur:
            cur.execute(self._q("INSERT INTO orch_meta (key, value) VALUES (?, ?) ON CONFLICT "
                                "(key) DO UPDATE SET value=excluded.value"), (key, value))

    def _check_columns(self, cur: Any) -> None:
        for table, cols in COLUMNS.items():
            try:
                cur.execute(f"SELECT {cols} FROM {table} WHERE 1=0")
            except Exception as exc:
                raise StateError(f"state {self.url} is damaged: table {table} "
                                 f"({_one_line(exc)})",
                                 hint="restore it from a backup; orch changed nothing"
                                 ) from None

    def _has_meta(self, cur: Any) -> bool:
        """Whether orch_meta exists (a new state has no tables yet)."""
        try:
            cur.execute(self._q("SELECT 1 FROM orch_meta WHERE 1=0"))
        except Exception:
            self._connection().rollback()
            return False
        return True

    def _check_schema(self, value: str) -> None:
        if not value.isdigit():
            raise StateError(f"state {self.url} is damaged: schema version {value!r}",
                             hint="restore it from a backup; orch changed nothing")
        if int(value) > int(SCHEMA_VERSION):
            raise StateError(f"state {self.url} was written by a newer orch (schema {value}; "
                             f"this orch knows {SCHEMA_VERSION})",
                             hint="upgrade orch to use this state; nothing was changed")

    # -- backend hooks ---------------------------------------------------------------------
    @abstractmethod
    def _connection(self) -> Any: ...

    @abstractmethod
    def _open_lease_connection(self) -> Any:
        """A second connection, for renewing the lease beside the journal writer."""

    def _translate(self, exc: Exception) -> OrchError | None:
        """The backend's error as a one-line StateError (None: not a database error)."""
        return None

    def _q(self, sql: str) -> str:
        return sql

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        with self._mutex:
            conn = self._connection()
            with self._on(conn) as cur:
                yield cur

    @contextmanager
    def _lease_tx(self) -> Iterator[Any]:
        with self._lease_mutex:
            if self._lease_conn is None:
                try:
                    self._lease_conn = self._open_lease_connection()
                except Exception as exc:
                    raise self._translate(exc) or exc from None
            with self._on(self._lease_conn) as cur:
                yield cur

    @contextmanager
    def _on(self, conn: Any) -> Iterator[Any]:
        try:
            cur = conn.cursor()
            try:
                yield cur
                conn.commit()
            except BaseException:
                with suppress(Exception):
                    conn.rollback()
                raise
            finally:
                with suppress(Exception):
                    cur.close()
        except OrchError:
            raise
        except Exception as exc:
            err = self._translate(exc)
            if err is None:
                raise
            raise err from None

    def _close_lease(self) -> None:
        with self._lease_mutex:
            if self._lease_conn is not None:
                with suppress(Exception):
                    self._lease_conn.close()
                self._lease_conn = None

    # -- records and journal ---------------------------------------------------------------
    def records(self, profile: str) -> dict[str, Record]:
        with self._tx() as cur:
            cur.execute(self._q(
                "SELECT step_id, status, fingerprint, step, outputs, pending_action, run_id, "
                "updated_at, error FROM orch_records WHERE profile=? ORDER BY step_id"),
                (profile,))
            rows = cur.fetchall()
        statuses = {s.value: s for s in RecordStatus}
        out = {}
        for sid, status, fp, step, outputs, pending, run_id, updated, error in rows:
            if status not in statuses:
                raise StateError(
                    f"state {self.url} is damaged: the record of {sid} has status {status!r}",
                    hint=f"`orch state rm PROFILE {sid}` forgets it (the next plan then "
                    "creates it again); nothing was changed")
            out[sid] = Record(step, statuses[status], fp, outputs, pending, run_id, updated,
                              error, step_id=sid)
        return out

    def write(self, entries: Sequence[JournalEntry], profile: str,
              holder: Holder | None = None) -> None:
        if not entries:
            return
        journal_rows = []
        with self._tx() as cur:
            for e in entries:
                error = redact(e.error) if e.error else ""
                fp = e.step.fingerprint()
                journal_rows.append((profile, e.run_id, e.step.id, e.phase, e.action, e.result,
                                     fp, error, e.at))
                if e.phase == "intent":
                    cur.execute(self._q(UPSERT_PENDING),
                                (profile, e.step.id, e.step.json(), e.action,
                                 e.run_id, e.at))
                elif e.result == "succeeded" and e.action == "delete":
                    cur.execute(self._q(
                        "DELETE FROM orch_records WHERE profile=? AND step_id=?"),
                        (profile, e.step.id))
                elif e.result == "succeeded":
                    cur.execute(self._q(UPSERT_APPLIED),
                                (profile, e.step.id, fp, e.step.json(),
                                 _dumps(dict(e.outputs)), e.run_id, e.at))
                else:
                    cur.execute(self._q(MARK_FAILED),
                                (error, e.run_id, e.at, profile, e.step.id))
            cur.executemany(self._q(
                "INSERT INTO orch_journal (profile, run_id, step_id, phase, action, result, "
                "fingerprint, error, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"), journal_rows)
            if holder is not None:  # fencing: nothing commits once the lease is not ours
                cur.execute(self._q("SELECT 1 FROM orch_locks WHERE profile=? AND host=? "
                                    "AND pid=?"), (profile, holder.host, holder.pid))
                if cur.fetchone() is None:
                    raise LeaseLostError("another run holds it; this write was not committed")

    def forget(self, profile: str, step_ids: Sequence[str]) -> int:
        with self._tx() as cur:
            n = 0
            for sid in step_ids:
                cur.execute(self._q("DELETE FROM orch_records WHERE profile=? AND step_id=?"),
                            (profile, sid))
                n += max(cur.rowcount, 0)
            return n

    def journal(self, profile: str, step_id: str | None = None,
                limit: int = 200) -> list[dict[str, Any]]:
        sql = ("SELECT seq, run_id, step_id, phase, action, result, fingerprint, error, at "
               "FROM orch_journal WHERE profile=?")
        args: tuple[Any, ...] = (profile,)
        if step_id is not None:
            sql += " AND step_id=?"
            args += (step_id,)
        sql += " ORDER BY seq DESC LIMIT ?"
        with self._tx() as cur:
            cur.execute(self._q(sql), (*args, limit))
            rows = cur.fetchall()
        keys = ("seq", "run_id", "step_id", "phase", "action", "result", "fingerprint",
                "error", "at")
        return [dict(zip(keys, r, strict=True)) for r in reversed(rows)]

    # -- runs ------------------------------------------------------------------------------
    def begin_run(self, profile: str, mode: str, holder: Holder) -> str:
        run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        with self._tx() as cur:
            # Called with the lease held: no other run of the profile can be running, so a
            # run still marked so was killed (or lost its lease) and never said it ended.
            cur.execute(self._q(
                "UPDATE orch_runs SET status='aborted', finished_at=? "
                "WHERE profile=? AND status='running'"), (time.time(), profile))
            cur.execute(self._q(
                "INSERT INTO orch_runs (run_id, profile, mode, started_at, finished_at, "
                "status, holder) VALUES (?, ?, ?, ?, NULL, 'running', ?)"),
                (run_id, profile, mode, time.time(), holder.describe()))
        return run_id

    def finish_run(self, run_id: str, status: str) -> None:
        with self._tx() as cur:
            cur.execute(self._q(
                "UPDATE orch_runs SET finished_at=?, status=? WHERE run_id=?"),
                (time.time(), status, run_id))

    def runs(self, profile: str, limit: int = 20) -> list[RunInfo]:
        with self._tx() as cur:
            cur.execute(self._q(
                "SELECT run_id, profile, mode, started_at, finished_at, status, holder "
                "FROM orch_runs WHERE profile=? ORDER BY started_at DESC LIMIT ?"),
                (profile, limit))
            return [RunInfo(*row) for row in cur.fetchall()]

    # -- the lease -------------------------------------------------------------------------
    def try_lock(self, profile: str, holder: Holder) -> Holder | None:
        try:
            return self._try_lock(profile, holder)
        except StoreBusyError:  # another process writes the state: as good as held
            return Holder("another process writing to the state", 0, time.time())

    def _try_lock(self, profile: str, holder: Holder) -> Holder | None:
        now = time.time()
        with self._tx() as cur:
            self._lock_row(cur, profile)
            cur.execute(self._q(
                "SELECT host, pid, started_at, expires_at, run_id FROM orch_locks "
                "WHERE profile=?"), (profile,))
            row = cur.fetchone()
            if row is not None:
                current = Holder(row[0], int(row[1]), float(row[2]), row[4])
                same = (current.host, current.pid) == (holder.host, holder.pid)
                # A live process on this host keeps its lease even past expiry (it may be
                # stopped, or slowed down); elsewhere, expiry is all we can know.
                if not same and (current.running_here()
                                 or (float(row[3]) > now and current.alive_here())):
                    return current
                cur.execute(self._q("DELETE FROM orch_locks WHERE profile=?"), (profile,))
            cur.execute(self._q(
                "INSERT INTO orch_locks (profile, host, pid, started_at, expires_at, run_id) "
                "VALUES (?, ?, ?, ?, ?, ?)"),
                (profile, holder.host, holder.pid, holder.started_at,
                 now + self.lease_seconds, holder.run_id))
            # The lease is ours: no other run of the profile is live, so one still marked
            # running was killed (even one that had nothing left to do).
            cur.execute(self._q(
                "UPDATE orch_runs SET status='aborted', finished_at=? "
                "WHERE profile=? AND status='running'"), (now, profile))
        return None

    def _lock_row(self, cur: Any, profile: str) -> None:
        """Serialise lock attempts (SQLite: BEGIN IMMEDIATE; PostgreSQL: advisory lock)."""

    def lock_holder(self, profile: str) -> Holder | None:
        with self._tx() as cur:
            cur.execute(self._q("SELECT host, pid, started_at, run_id FROM orch_locks "
                                "WHERE profile=?"), (profile,))
            row = cur.fetchone()
        return Holder(row[0], int(row[1]), float(row[2]), row[3]) if row else None

    def renew_lock(self, profile: str, holder: Holder) -> bool:
        """On the lease's own connection: never queued behind the journal writer."""
        with self._lease_tx() as cur:
            cur.execute(self._q(
                "UPDATE orch_locks SET expires_at=? WHERE profile=? AND host=? AND pid=?"),
                (time.time() + self.lease_seconds, profile, holder.host, holder.pid))
            return bool(cur.rowcount)

    def unlock(self, profile: str, holder: Holder) -> None:
        with self._tx() as cur:
            cur.execute(self._q(
                "DELETE FROM orch_locks WHERE profile=? AND host=? AND pid=?"),
                (profile, holder.host, holder.pid))
