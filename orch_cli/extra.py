"""Commands around the plan: state, drivers, components, inventory export, catalog, lab."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from orch_cli.common import (
    EXIT_ERROR,
    errors_to_exit,
    inventory_option,
    open_state_to_read,
    parse_params,
    profile_options,
    state_option,
    state_url_for,
    write_output,
)


def _profile_name(profile: str) -> str:
    from orchestrator.loader import structured
    from orchestrator.model import Profile
    from orchestrator.source import load_yaml
    return str(structured(load_yaml(profile), Profile, "profile").metadata.name)


# -- state -----------------------------------------------------------------------------
@click.group()
def state() -> None:
    """Inspect and edit what orch recorded."""


@state.command("list")
@click.argument("profile", type=click.Path(dir_okay=False))
@inventory_option
@state_option
def state_list(profile: str, inventory: str | None, state_url: str | None) -> None:
    """One line per recorded step: status, id, kind."""
    with errors_to_exit():
        store = open_state_to_read(profile, state_url, inventory)
        if store is None:
            return
        for sid, rec in store.records(_profile_name(profile)).items():
            extra = f"  ({rec.pending_action})" if rec.pending_action else ""
            click.echo(f"{rec.status.value:<8} {sid}  [{rec.step.kind}]{extra}")
        store.close()


@state.command("show")
@click.argument("profile", type=click.Path(dir_okay=False))
@click.argument("step_id")
@inventory_option
@state_option
def state_show(profile: str, step_id: str, inventory: str | None,
               state_url: str | None) -> None:
    """A recorded step with its outputs and its journal."""
    with errors_to_exit():
        store = open_state_to_read(profile, state_url, inventory)
        name = _profile_name(profile)
        rec = store.records(name).get(step_id) if store is not None else None
        if rec is None:
            click.echo(f"Error: no record of {step_id}", err=True)
            sys.exit(EXIT_ERROR)
        click.echo(json.dumps({"status": rec.status.value, "fingerprint": rec.fingerprint,
                               "run": rec.run_id, "error": rec.error,
                               "outputs": rec.outputs, "step": rec.step.to_dict(),
                               "journal": store.journal(name, step_id)},
                              indent=2, sort_keys=True))
        store.close()


@state.command("runs")
@click.argument("profile", type=click.Path(dir_okay=False))
@inventory_option
@state_option
def state_runs(profile: str, inventory: str | None, state_url: str | None) -> None:
    """Recent runs and how they ended."""
    with errors_to_exit():
        import time as _t
        store = open_state_to_read(profile, state_url, inventory)
        if store is None:
            return
        for r in store.runs(_profile_name(profile)):
            started = _t.strftime("%Y-%m-%d %H:%M:%S", _t.gmtime(r.started_at))
            click.echo(f"{r.run_id}  {r.mode:<8} {r.status:<10} {started}Z  {r.holder}")
        store.close()


@state.command("rm")
@click.argument("profile", type=click.Path(dir_okay=False))
@click.argument("step_ids", nargs=-1, required=True)
@inventory_option
@state_option
def state_rm(profile: str, step_ids: tuple[str, ...], inventory: str | None,
             state_url: str | None) -> None:
    """Forget steps without touching the machines."""
    with errors_to_exit():
        from orchestrator.state import open_store
        store = open_store(state_url_for(profile, state_url, inventory))
        n = store.forget(_profile_name(profile), step_ids)
        click.echo(f"forgot {n} record(s)")
        store.close()


@state.command("mark-done")
@click.argument("profile", type=click.Path(dir_okay=False))
@click.argument("step_ids", nargs=-1, required=True)
@profile_options
@state_option
def state_mark_done(profile: str, step_ids: tuple[str, ...], inventory: str | None,
                    params: tuple[str, ...], state_url: str | None) -> None:
    """Record external steps as done by hand, so the next apply goes on past them."""
    with errors_to_exit():
        from orchestrator.components import builtin_registry
        from orchestrator.expand import expand
        from orchestrator.loader import load
        from orchestrator.state import Holder, JournalEntry, open_store
        loaded = load(profile, inventory, parse_params(params))
        steps = expand(loaded, builtin_registry()).steps
        store = open_store(state_url_for(profile, state_url, inventory))
        name = loaded.profile.metadata.name
        with store.locked(name, Holder.me()):
            run = store.begin_run(name, "manual", Holder.me())
            entries = []
            for sid in step_ids:
                if sid not in steps:
                    raise click.BadParameter(f"{sid}: no such step in the profile")
                entries += [JournalEntry(run, steps[sid], "intent", "create"),
                            JournalEntry(run, steps[sid], "outcome", "create", "succeeded",
                                         {"done_by": "hand"})]
            store.write(entries, name)
            store.finish_run(run, "succeeded")
        click.echo(f"recorded {len(step_ids)} step(s) as done by hand (run {run})")
        store.close()


# -- drivers and components ------------------------------------------------------------
@click.command()
def drivers() -> None:
    """Drivers, their step kinds, and whether their dependencies are importable."""
    from orchestrator.driver import DriverRegistry, settings_description
    reg = DriverRegistry()
    for name in reg.names():
        info = reg.info(name)
        status = "ok" if info.available else (
            f"missing: {', '.join(info.missing)}" if info.missing else info.error)
        click.echo(f"{name:<11} {status:<28} {info.description}")
        for kind, desc in sorted(info.step_kinds.items()):
            click.echo(f"    {kind:<26} {desc}")
        if not info.error:
            for sname, typ, default, desc in settings_description(reg.load(name).settings_type):
                click.echo(f"    setting {sname} ({typ}{', default ' + default if default else ''})"
                           f": {desc}")


@click.command()
@click.argument("type_name", required=False)
def components(type_name: str | None) -> None:
    """Component types a profile can use, with their parameters."""
    import msgspec

    from orchestrator.components import builtin_registry
    from orchestrator.driver import settings_description
    types = builtin_registry().all()
    for name, ctype in types.items():
        if type_name and name != type_name:
            continue
        click.echo(f"{name:<22} [{', '.join(ctype.drivers)}; {ctype.placement}] "
                   f"{ctype.description}")
        if type_name and ctype.params is not None:
            for pname, typ, default, desc in settings_description(ctype.params):
                click.echo(f"    {pname} ({typ}{', default ' + default if default else ''})"
                           f": {desc}")
        elif type_name and ctype.open_params:
            click.echo("    parameters are passed to the driver as they are")
    if type_name and type_name not in types:
        click.echo(f"Error: no component type {type_name!r}", err=True)
        sys.exit(EXIT_ERROR)
    _ = msgspec


# -- inventory export, verify ----------------------------------------------------------
@click.command("inventory")
@click.argument("profile", type=click.Path(dir_okay=False))
@profile_options
@click.option("--format", "fmt", type=click.Choice(["ansible", "json"]), default="ansible",
              show_default=True)
def inventory_cmd(profile: str, inventory: str | None, params: tuple[str, ...],
                  fmt: str) -> None:
    """Export the bound nodes (Ansible inventory YAML, or JSON)."""
    with errors_to_exit():
        import yaml

        from drivers.ansible.inventory import ansible_inventory
        from orchestrator.loader import load
        loaded = load(profile, inventory, parse_params(params))
        data = ansible_inventory([n.host_inputs() for n in loaded.all_nodes()])
        data["all"]["vars"] = {"orch_profile": loaded.profile.metadata.name}
        text = yaml.safe_dump(data, sort_keys=True) if fmt == "ansible" else \
            json.dumps(data, indent=2, sort_keys=True) + "\n"
        write_output(text, None)


# -- catalog ---------------------------------------------------------------------------
@click.command()
@click.option("--profiles", "profiles_dir", default="profiles", show_default=True,
              type=click.Path(file_okay=False))
@click.option("--inventory", "inventories", multiple=True,
              default=("inventories/lab.yaml", "inventories/example-datacenter.yaml"),
              show_default=True)
@click.option("--out", default=None, help="Write here (default: PROFILES/README.md).")
@click.option("--check", is_flag=True, help="Exit 1 if the file on disk is not current.")
def catalog(profiles_dir: str, inventories: tuple[str, ...], out: str | None,
            check: bool) -> None:
    """Generate the profile catalog page (profiles/README.md)."""
    with errors_to_exit():
        from orchestrator.catalog import render_catalog
        text = render_catalog(Path(profiles_dir), [Path(i) for i in inventories])
        target = Path(out or Path(profiles_dir) / "README.md")
        if check:
            current = target.read_text(encoding="utf-8") if target.exists() else ""
            if current != text:
                click.echo(f"{target} is out of date: run `orch catalog`", err=True)
                sys.exit(EXIT_ERROR)
            click.echo(f"{target} is current")
            return
        target.write_text(text, encoding="utf-8")
        click.echo(f"wrote {target}")


def register(cli: Any) -> None:
    cli.add_command(state)
    cli.add_command(drivers)
    cli.add_command(components)
    cli.add_command(inventory_cmd)
    cli.add_command(catalog)
    from orch_cli.labcmd import register as register_lab
    register_lab(cli)
