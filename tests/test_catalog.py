"""The catalog page (profiles/README.md) is generated from the profiles and must be current.

`orch catalog --check` plans every profile against both bundled inventories, so this test
also fails when a profile stops binding, expanding or passing its static preflight against
the lab or the example datacenter.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from orch_cli.main import cli

ROOT = Path(__file__).resolve().parent.parent


def test_catalog_page_is_current(monkeypatch: pytest.MonkeyPatch) -> None:
    """`orch catalog --check` exits 0: README.md matches what the profiles generate."""
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(cli, ["catalog", "--check"])
    assert result.exit_code == 0, (
        f"profiles/README.md is stale or a profile no longer plans: run `orch catalog`\n"
        f"{result.output}")


def test_catalog_lists_every_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every profiles/*.yaml has exactly one row in the catalog."""
    monkeypatch.chdir(ROOT)
    page = (ROOT / "profiles" / "README.md").read_text(encoding="utf-8")
    for path in sorted((ROOT / "profiles").glob("*.yaml")):
        assert page.count(f"[`{path.name}`]({path.name})") == 1, path.name
