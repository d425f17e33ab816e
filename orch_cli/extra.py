"""Commands around the plan: drivers, components, inventory export, catalog, lab."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from orch_cli.common import (
    EXIT_ERROR,
    errors_to_exit,
    format_option,
    parse_params,
    profile_options,
    write_json,
    write_output,
)
from orch_cli.completion import complete_component_type
from orchestrator.errors import OrchError


# -- drivers and components ------------------------------------------------------------
@click.command()
@format_option
def drivers(fmt: str) -> None:
    """Drivers, their step kinds, and whether their dependencies are importable."""
    from orchestrator.driver import DriverRegistry, settings_description
    from orchestrator.preflight import install_hint
    reg = DriverRegistry()
    listing: list[dict[str, Any]] = []
    for name in reg.names():
        info = reg.info(name)
        settings = [] if info.error else settings_description(reg.load(name).settings_type)
        listing.append({
            "name": name, "available": info.available, "description": info.description,
            "requires": list(info.requires), "missing": list(info.missing),
            "error": info.error or None,
            "install": install_hint(name, info.missing) if info.missing else None,
            "step_kinds": dict(sorted(info.step_kinds.items())),
            "settings": [{"name": n, "type": t, "default": d or None, "description": desc}
                         for n, t, d, desc in settings]})
    if fmt == "json":
        write_json(listing)
        return
    for d in listing:
        status = "ok" if d["available"] else (
            f"missing: {', '.join(d['missing'])}" if d["missing"] else d["error"])
        click.echo(f"{d['name']:<11} {status:<28} {d['description']}")
        if d["install"]:
            click.echo(f"    install: {d['install']}")
        for kind, desc in d["step_kinds"].items():
            click.echo(f"    {kind:<26} {desc}")
        for st in d["settings"]:
            default = f", default {st['default']}" if st["default"] else ""
            click.echo(f"    setting {st['name']} ({st['type']}{default}): {st['description']}")


@click.command()
@click.argument("type_name", required=False, shell_complete=complete_component_type)
def components(type_name: str | None) -> None:
    """Component types a profile can use, with their parameters."""
    from orchestrator.components import builtin_registry
    from orchestrator.driver import settings_description
    from orchestrator.suggest import hint_with
    registry = builtin_registry()
    types = registry.all()
    if type_name and type_name not in types:
        click.echo(f"Error: no component type {type_name!r}\n  hint: "
                   + hint_with(type_name, types, "`orch components` lists them all"),
                   err=True)
        sys.exit(EXIT_ERROR)
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
    for plugin, error in sorted(registry.load_errors.items()):
        click.echo(f"Warning: plug-in {plugin} failed to load: {error}", err=True)


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
        unaddressed = [n.name for n in loaded.all_nodes() if not n.host.address]
        if unaddressed:
            raise OrchError(f"{len(unaddressed)} node(s) have no address "
                            f"({', '.join(unaddressed[:5])}"
                            f"{', …' if len(unaddressed) > 5 else ''}): an Ansible inventory "
                            "of them would have ansible_host: ''",
                            hint="give -i INVENTORY binding the profile's roles to hosts")
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
    from orch_cli.statecmd import state
    cli.add_command(state)
    cli.add_command(drivers)
    cli.add_command(components)
    cli.add_command(inventory_cmd)
    cli.add_command(catalog)
    from orch_cli.completion import completion
    from orch_cli.outputcmd import output
    from orch_cli.versioncmd import version
    cli.add_command(output)
    cli.add_command(version)
    cli.add_command(completion)
    from orch_cli.labcmd import register as register_lab
    register_lab(cli)
