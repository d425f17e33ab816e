"""PostgreSQL backend (``--state postgresql://user@host/db``), through psycopg 3.

The same tables and statements as SQLite; lock attempts are serialised with a
transaction-scoped advisory lock on the profile's name.
"""

from __future__ import annotations

from typing import Any

from orchestrator.errors import StateError
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
        try:
            self._conn = psycopg.connect(url, connect_timeout=10)
        except psycopg.Error as exc:
            raise StateError(f"cannot connect to {self.url}: {str(exc).strip()}") from None
        super().__init__()

    def _connection(self) -> Any:
        return self._conn

    def _q(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def _lock_row(self, cur: Any, profile: str) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ("orch:" + profile,))

    def close(self) -> None:
        self._conn.close()


def _without_password(url: str) -> str:
    """The URL as shown to users: a password in it is masked."""
    from urllib.parse import urlsplit, urlunsplit
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":********@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
