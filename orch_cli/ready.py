"""Readiness before acting: the plan shows what would stop it half-way, apply refuses it.

See :func:`orchestrator.preflight.readiness`. ``orch plan`` adds the findings to the plan
for review and says on stderr that apply would refuse; ``orch apply`` checks again on the
machine that acts (a saved plan may be applied elsewhere, later) and stops before anything
is touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from orchestrator.errors import OrchError


class NotReadyError(OrchError):
    template = "not ready to apply: {message}"
    hint = "fix the FAIL findings above (or listed here) and run again; nothing was done"


def _registry_errors() -> dict[str, str]:
    from orchestrator.components import registry
    return dict(registry.load_errors)


def reviewed(plan: Any, base_dir: Path | None) -> Any:
    """``plan`` with its readiness findings, for ``orch plan`` and the apply confirmation."""
    from orchestrator.driver import DriverRegistry
    from orchestrator.preflight import with_readiness
    return with_readiness(plan, DriverRegistry(), base_dir=base_dir,
                          plugin_errors=_registry_errors())


def warn_if_blocked(plan: Any) -> None:
    from orchestrator.preflight import blocking
    bad = blocking(plan.findings)
    if bad:
        click.echo(f"Warning: apply would refuse this plan: {len(bad)} blocking finding(s): "
                   + "; ".join(f"{f.check}: {f.detail}" for f in bad), err=True)


def refuse_unready(plan: Any, base_dir: Path | None) -> None:
    """Raise :class:`NotReadyError` when readiness fails here and now."""
    from orchestrator.driver import DriverRegistry
    from orchestrator.preflight import blocking, readiness
    bad = blocking(readiness(plan, DriverRegistry(), base_dir=base_dir))
    if bad:
        lines = "".join(f"\n  FAIL {f.check}: {f.detail}" for f in bad)
        raise NotReadyError(f"{len(bad)} blocking finding(s){lines}")


def first_plan_hint(plan: Any, profile: str, inventory: str | None) -> None:
    """After the first plan of a profile (no state yet): where state will live, what next."""
    url = plan.state_url
    if url.startswith(("postgresql://", "postgres://")) or Path(url).exists():
        return
    inv = f" -i {inventory}" if inventory else ""
    click.echo(f"\nState: {url} (SQLite; the first apply creates it; --state or ORCH_STATE "
               f"choose another, postgresql://… included)\n"
               f"Next:  orch apply {profile}{inv}        (shows this plan again, asks yes)\n"
               f"  or:  orch plan {profile}{inv} --out plan.json && orch apply plan.json   "
               "(apply exactly what was reviewed)", err=True)
