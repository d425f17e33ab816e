"""PostgreSQL backend (``--state postgresql://user@host/db``), through psycopg 3.

The same tables and statements as SQLite; lock attempts are serialised with a
transaction-scoped advisory lock on the profile's name.
"""

from __future__ import annotations

from typing import Any

from orchestrator.errors import OrchError, StateError
from orchestrator.state.base import StoreBusyError
from orchestrator.state.sql import SqlStore


class PostgresStore(SqlStore):
    serial = "BIGSERIAL PRIMARY KEY"

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError:
            raise StateError("the PostgreSQL backend needs psycopg",
                             hint="pip install 'orch-stack[postgres]'") from None
        self.url = _without_password(url)
        self._dsn = url
        try:
            self._conn = psycopg.connect(url, connect_timeout=10)
        except psycopg.Error as exc:
            raise StateError(f"cannot connect to {self.url}: {_line(exc)}") from None
        super().__init__()

    def _connection(self) -> Any:
        return self._conn

    def _open_lease_connection(self) -> Any:
        import psycopg
        conn = psycopg.connect(self._dsn, connect_timeout=10)
        # A renewal that cannot get its row within a third of the lease is retried later
        # rather than left hanging (the executor stops acting when it is not proven).
        with conn.cursor() as cur:
            cur.execute(f"SET statement_timeout = {max(int(self.lease_seconds * 333), 100)}")
        conn.commit()
        return conn

    def _translate(self, exc: Exception) -> OrchError | None:
        import psycopg
        if not isinstance(exc, psycopg.Error):
            return None
        text = _line(exc)
        if isinstance(exc, (psycopg.errors.UndefinedColumn, psycopg.errors.UndefinedTable,
                            psycopg.errors.DataException)):
            return StateError(f"state {self.url} is damaged ({text})",
                              hint="restore it from a backup; orch changed nothing")
        if isinstance(exc, (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled)):
            return StoreBusyError(f"state {self.url} is busy ({text})",
                                  hint="let the other session finish; nothing was lost")
        if isinstance(exc, psycopg.errors.DiskFull):
            return StateError(f"no space left for state {self.url} ({text})",
                              hint="free space on the database server, then run the "
                              "command again: what was recorded is kept")
        if isinstance(exc, psycopg.OperationalError):
            return StateError(f"lost the connection to {self.url} ({text})",
                              hint="check the database server, then run the command again")
        return StateError(f"state {self.url}: {text}")

    def _q(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def _lock_row(self, cur: Any, profile: str) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ("orch:" + profile,))

    def close(self) -> None:
        self._close_lease()
        self._conn.close()


def _without_password(url: str) -> str:
    """The URL as shown to users: a password in it is masked."""
    from urllib.parse import urlsplit, urlunsplit
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":********@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
