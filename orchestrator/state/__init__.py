"""The state store: what orch has done, as a journal, behind a small abstract class.

``open_store(url)`` picks the backend from the URL: a path or ``sqlite:///path`` for SQLite
(the default, a file beside the profile), ``postgresql://...`` for PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.state.base import (
    Holder,
    JournalEntry,
    Record,
    RecordStatus,
    RunInfo,
    StateStore,
)

__all__ = ["Holder", "JournalEntry", "Record", "RecordStatus", "RunInfo", "StateStore",
           "default_state_path", "open_store"]


def default_state_path(profile_path: str | Path) -> Path:
    """``profiles/93-proxmox-ceph.yaml`` → ``profiles/93-proxmox-ceph.orch.db``."""
    p = Path(profile_path)
    return p.with_name(p.stem + ".orch.db")


def open_store(url: str, *, create: bool = True) -> StateStore:
    """Open the store at ``url``. ``create=False`` never creates a SQLite file (planning
    reads state; it does not write any)."""
    if url.startswith(("postgresql://", "postgres://")):
        from orchestrator.state.postgres import PostgresStore
        return PostgresStore(url)
    from orchestrator.state.sqlite import SqliteStore
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
    return SqliteStore(path, create=create)
