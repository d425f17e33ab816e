"""``orch state``: inspect and edit what orch recorded (list, show, runs, rm, mv, mark-done).

Edits never touch machines. ``state mv`` renames records (a component or step id renamed in
the profile) so the next plan sees the same objects under their new ids instead of planning
a destroy and a create, as Terraform's ``state mv`` and ``moved`` blocks do.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from orch_cli.common import (
    errors_to_exit,
    format_option,
    inventory_option,
    open_state_to_read,
    parse_params,
    profile_name,
    profile_options,
    state_option,
    state_url_for,
    write_json,
)
from orch_cli.completion import complete_profile_step, complete_recorded_step
from orchestrator.errors import OrchError
from orchestrator.suggest import hint_with


class StateEditError(OrchError):
    """A state edit that names nothing, or the wrong thing; nothing was changed."""


@contextmanager
def _reading(profile: str, state_url: str | None, inventory: str | None) -> Iterator[Any]:
    """The state to read (None when nothing was applied yet), closed however the command ends."""
    store = open_state_to_read(profile, state_url, inventory)
    try:
        yield store
    finally:
        if store is not None:
            store.close()


@contextmanager
def _editing(profile: str, state_url: str | None, inventory: str | None) -> Iterator[Any]:
    """The state to edit, created if need be, closed however the command ends."""
    from orchestrator.state import open_store
    store = open_store(state_url_for(profile, state_url, inventory))
    try:
        yield store
    finally:
        store.close()


# -- state -----------------------------------------------------------------------------
@click.group()
def state() -> None:
    """Inspect and edit what orch recorded."""


@state.command("list")
@click.argument("profile", type=click.Path(dir_okay=False))
@inventory_option
@state_option
@format_option
def state_list(profile: str, inventory: str | None, state_url: str | None,
               fmt: str) -> None:
    """One line per recorded step: status, id, kind (or a JSON list)."""
    with errors_to_exit():
        with _reading(profile, state_url, inventory) as store:
            records = {} if store is None else store.records(profile_name(profile))
        if fmt == "json":
            write_json([{"id": sid, "status": rec.status.value, "kind": rec.step.kind,
                         "driver": rec.step.driver, "component": rec.step.component,
                         "node": rec.step.node, "run": rec.run_id,
                         "pending_action": rec.pending_action or None}
                        for sid, rec in records.items()])
            return
        for sid, rec in records.items():
            extra = f"  ({rec.pending_action})" if rec.pending_action else ""
            click.echo(f"{rec.status.value:<8} {sid}  [{rec.step.kind}]{extra}")


@state.command("show")
@click.argument("profile", type=click.Path(dir_okay=False))
@click.argument("step_id", shell_complete=complete_recorded_step)
@inventory_option
@state_option
def state_show(profile: str, step_id: str, inventory: str | None,
               state_url: str | None) -> None:
    """A recorded step with its outputs and its journal."""
    with errors_to_exit(), _reading(profile, state_url, inventory) as store:
        if store is None:
            raise StateEditError(f"no record of {step_id}")
        name = profile_name(profile)
        known = store.records(name)
        rec = known.get(step_id)
        if rec is None:
            raise StateEditError(f"no record of {step_id}", hint=hint_with(
                step_id, known, "`orch state list PROFILE` lists records"))
        click.echo(json.dumps({"status": rec.status.value, "fingerprint": rec.fingerprint,
                               "run": rec.run_id, "error": rec.error,
                               "outputs": rec.outputs, "step": rec.step.to_dict(),
                               "journal": store.journal(name, step_id)},
                              indent=2, sort_keys=True))


@state.command("runs")
@click.argument("profile", type=click.Path(dir_okay=False))
@inventory_option
@state_option
@format_option
def state_runs(profile: str, inventory: str | None, state_url: str | None,
               fmt: str) -> None:
    """Recent runs and how they ended (or a JSON list)."""
    with errors_to_exit():
        import dataclasses
        import time as _t
        with _reading(profile, state_url, inventory) as store:
            runs = [] if store is None else store.runs(profile_name(profile))
        if fmt == "json":
            write_json([dataclasses.asdict(r) for r in runs])
            return
        for r in runs:
            started = _t.strftime("%Y-%m-%d %H:%M:%S", _t.gmtime(r.started_at))
            click.echo(f"{r.run_id}  {r.mode:<8} {r.status:<10} {started}Z  {r.holder}")


@state.command("rm")
@click.argument("profile", type=click.Path(dir_okay=False))
@click.argument("step_ids", nargs=-1, required=True, shell_complete=complete_recorded_step)
@inventory_option
@state_option
def state_rm(profile: str, step_ids: tuple[str, ...], inventory: str | None,
             state_url: str | None) -> None:
    """Forget steps without touching the machines."""
    with errors_to_exit(), _editing(profile, state_url, inventory) as store:
        name = profile_name(profile)
        known = store.records(name)
        unknown = [sid for sid in step_ids if sid not in known]
        if unknown:
            raise StateEditError(f"no record of {', '.join(unknown)}; nothing was forgotten",
                                 hint=hint_with(unknown[0], known,
                                                "`orch state list PROFILE` lists records"))
        n = store.forget(name, step_ids)
        click.echo(f"forgot {n} record(s)")


@state.command("mark-done")
@click.argument("profile", type=click.Path(dir_okay=False))
@click.argument("step_ids", nargs=-1, required=True, shell_complete=complete_profile_step)
@profile_options
@state_option
def state_mark_done(profile: str, step_ids: tuple[str, ...], inventory: str | None,
                    params: tuple[str, ...], state_url: str | None) -> None:
    """Record external steps as done by hand, so the next apply goes on past them."""
    with errors_to_exit():
        from orchestrator.components import builtin_registry
        from orchestrator.expand import expand
        from orchestrator.loader import load
        from orchestrator.state import Holder, JournalEntry
        loaded = load(profile, inventory, parse_params(params))
        steps = expand(loaded, builtin_registry()).steps
        for sid in step_ids:
            if sid not in steps:
                raise StateEditError(f"{sid}: no such step in the profile",
                                     hint=hint_with(sid, steps))
            if not steps[sid].external:
                raise StateEditError(
                    f"{sid} is not an external step (driver {steps[sid].driver}): orch "
                    "carries it out itself; nothing was recorded",
                    hint="only `type: external` steps are done by hand; for work already "
                         "done another way, apply the profile (drivers are idempotent)")
        name = loaded.profile.metadata.name
        with _editing(profile, state_url, inventory) as store, \
                store.locked(name, Holder.me()):
            run = store.begin_run(name, "manual", Holder.me())
            entries = []
            for sid in step_ids:
                entries += [JournalEntry(run, steps[sid], "intent", "create"),
                            JournalEntry(run, steps[sid], "outcome", "create", "succeeded",
                                         {"done_by": "hand"})]
            store.write(entries, name)
            store.finish_run(run, "succeeded")
        click.echo(f"recorded {len(step_ids)} step(s) as done by hand (run {run})")


@state.command("mv")
@click.argument("profile", type=click.Path(dir_okay=False))
@click.argument("old", shell_complete=complete_recorded_step)
@click.argument("new")
@inventory_option
@state_option
@click.option("--dry-run", is_flag=True, help="Print the renames, change nothing.")
def state_mv(profile: str, old: str, new: str, inventory: str | None, state_url: str | None,
             dry_run: bool) -> None:
    """Rename records: a step id, or every step of a component renamed in the profile.

    \b
    orch state mv PROFILE pve-1/ceph.osd[sdb] pve-1/ceph.osd[sdc]   # one step
    orch state mv PROFILE cni network                               # a component's steps
    """
    with errors_to_exit():
        from orchestrator.state import Holder
        from orchestrator.state.move import moves, write_moves
        name = profile_name(profile)
        with _editing(profile, state_url, inventory) as store, \
                store.locked(name, Holder.me()):
            records = store.records(name)
            renames = moves(records, old, new)
            for before, after in renames:
                click.echo(f"{before} -> {after}")
            if dry_run:
                click.echo(f"would move {len(renames)} record(s); nothing was changed")
                return
            run = write_moves(store, name, records, renames)
        click.echo(f"moved {len(renames)} record(s) (run {run}); the next plan sees "
                   "them under their new ids")
