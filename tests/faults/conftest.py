"""Fault-suite fixtures: a fresh state per trial on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.engine.conftest import drop_schema, postgres_url

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def new_state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Call it for a fresh, empty state URL of the backend under test."""
    made: list[str] = []
    counter = itertools.count()

    def make() -> str:
        if request.param == "sqlite":
            return str(tmp_path / f"state-{next(counter)}.db")
        url = postgres_url()
        made.append(url)
        return url

    yield make
    for url in made:
        drop_schema(url)
