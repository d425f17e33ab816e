"""``--refresh-only`` for ``orch plan`` and ``orch apply``: read what exists into state,
change nothing on the machines (see :mod:`orchestrator.refresh`)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from orch_cli.common import (
    EXIT_CHANGES,
    EXIT_ERROR,
    parse_params,
    state_url_for,
    use_published,
)

MARK = {"gone": "-", "drift": "~", "outputs": "*", "unchanged": " ", "unknown": "?"}


def _report(results: Sequence[Any], *, err: bool) -> int:
    from orchestrator.refresh import Seen
    for r in results:
        if r.seen is not Seen.SAME:
            click.echo(f"  {MARK[r.seen.value]} {r.step_id}: {r.seen.value}"
                       + (f" ({r.detail})" if r.detail else ""), err=err)
    counts = {s: sum(1 for r in results if r.seen is s) for s in Seen}
    changing = counts[Seen.GONE] + counts[Seen.OUTPUTS]
    click.echo(f"Refresh-only: {len(results)} record(s) read: {counts[Seen.GONE]} gone, "
               f"{counts[Seen.OUTPUTS]} with new outputs, {counts[Seen.DRIFT]} drifted, "
               f"{counts[Seen.UNKNOWN]} unknown. Nothing on the machines changes.", err=err)
    if counts[Seen.DRIFT]:
        click.echo("  drift is not written to state: a normal `orch plan` proposes the "
                   "update back", err=err)
    return changing


def refresh_only(profile: str, inventory: str | None, params: tuple[str, ...],
                 state_url: str | None, *, apply: bool, auto_approve: bool = False,
                 detailed_exitcode: bool = False) -> None:
    from orchestrator.errors import OrchError
    from orchestrator.loader import load
    from orchestrator.refresh import record, refresh
    from orchestrator.saved_plan import is_plan_file
    from orchestrator.state import Holder, open_store
    if is_plan_file(profile):
        raise OrchError(f"{profile}: --refresh-only reads a profile's records, not a saved "
                        "plan; nothing was done", hint="give the PROFILE (and -i INVENTORY)")
    loaded = load(profile, inventory, parse_params(params))
    use_published(state_url_for(profile, state_url, inventory), loaded.profile.metadata.name)
    store = open_store(state_url_for(profile, state_url, inventory), create=apply)
    name = loaded.profile.metadata.name
    try:
        if not apply:
            changing = _report(refresh(loaded, store), err=False)
            if changing:
                click.echo("Record this in state with `orch apply --refresh-only` and the "
                           "same arguments.")
            if detailed_exitcode and changing:
                sys.exit(EXIT_CHANGES)
            return
        with store.locked(name, Holder.me()):
            results = refresh(loaded, store)
            changing = _report(results, err=True)
            if not changing:
                click.echo("State already matches: nothing to record.", err=True)
                return
            if not auto_approve:
                if not sys.stdin.isatty():
                    click.echo("Error: not a terminal and --auto-approve not given; nothing "
                               "was recorded.", err=True)
                    sys.exit(EXIT_ERROR)
                answer = click.prompt("Record these in state? Only 'yes' will be accepted",
                                      default="", show_default=False, err=True)
                if answer != "yes":
                    click.echo("Refresh cancelled.", err=True)
                    sys.exit(EXIT_ERROR)
            run = record(store, name, results)
            click.echo(f"Recorded {changing} change(s) in state (run {run}).", err=True)
    finally:
        store.close()
