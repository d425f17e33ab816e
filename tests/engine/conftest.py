"""State-store fixtures: the same tests run against SQLite and a real PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_service


def postgres_url() -> str:
    """A URL to a fresh schema in the test database (ORCH_TEST_POSTGRES_DSN)."""
    dsn = os.environ.get("ORCH_TEST_POSTGRES_DSN")
    if not dsn:
        require_service("PostgreSQL: set ORCH_TEST_POSTGRES_DSN (.ci/install.d/20-postgres.sh)")
    import psycopg
    schema = "t_" + uuid.uuid4().hex[:10]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in dsn else "?"
    return f"{dsn}{sep}options=-csearch_path%3D{schema}"


def drop_schema(url: str) -> None:
    import psycopg
    _, _, opts = url.partition("?options=-csearch_path%3D")
    schema = opts.split("&")[0]
    with psycopg.connect(os.environ["ORCH_TEST_POSTGRES_DSN"], autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "state.db")
        return
    url = postgres_url()
    yield url
    drop_schema(url)
