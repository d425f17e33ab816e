"""``orch output``: what applied steps published (their recorded outputs), for scripts.

Generic over what state records: every applied step's outputs, or one step's, or one value
(``orch output PROFILE STEP KEY`` prints it bare, as ``terraform output -raw``). Outputs
never hold secrets by the driver contract; as a second guard, a value under a key that
names a secret (``password``, ``token`` …) is masked, and a secret reference is shown as
the reference it is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import click

from orch_cli.common import errors_to_exit, profile_name, state_option, state_url_for
from orch_cli.completion import complete_recorded_step
from orchestrator.errors import OrchError
from orchestrator.suggest import hint_with


class OutputError(OrchError):
    """An output asked for that no applied step recorded."""


def masked(value: Any, key: str = "") -> Any:
    from orchestrator.secrets import MASK, SECRET_KEY, is_ref_value, looks_secret
    if is_ref_value(value):
        return f"<secret {value[SECRET_KEY]}>"
    if isinstance(value, Mapping):
        return {k: masked(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v, key) for v in value]
    if looks_secret(key) and isinstance(value, str) and value:
        return MASK
    return value


def published(records: Mapping[str, Any], pattern: str | None) -> dict[str, dict[str, Any]]:
    """Outputs of applied records whose id matches ``pattern`` (a glob; None: all)."""
    import fnmatch

    from orchestrator.state.base import RecordStatus
    return {sid: masked(dict(rec.outputs)) for sid, rec in records.items()
            if rec.status is RecordStatus.APPLIED and rec.outputs
            and (pattern is None or fnmatch.fnmatchcase(sid, pattern))}


@click.command()
@click.argument("profile", type=click.Path(dir_okay=False))
@click.argument("step", required=False, shell_complete=complete_recorded_step)
@click.argument("key", required=False)
@state_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def output(profile: str, step: str | None, key: str | None, state_url: str | None,
           fmt: str) -> None:
    """Outputs applied steps recorded: all, one STEP's (a glob), or one KEY's value bare."""
    with errors_to_exit():
        from orchestrator.state import open_store
        store = open_store(state_url_for(profile, state_url), create=False)
        try:
            records = store.records(profile_name(profile))
        finally:
            store.close()
        found = published(records, step)
        if step is not None and not found:
            raise OutputError(f"no applied step matching {step} recorded outputs",
                              hint=hint_with(step, records, "`orch output PROFILE` lists "
                                                            "every step's outputs"))
        if key is not None:
            _print_one(found, step or "", key, fmt)
            return
        if fmt == "json":
            click.echo(json.dumps(found, indent=2, sort_keys=True))
            return
        for sid, outs in found.items():
            click.echo(sid)
            for k, v in sorted(outs.items()):
                click.echo(f"  {k} = {json.dumps(v, sort_keys=True)}")


def _print_one(found: Mapping[str, Mapping[str, Any]], step: str, key: str, fmt: str) -> None:
    if len(found) != 1:
        raise OutputError(f"{step} matches {len(found)} steps; name one step for a value",
                          hint=", ".join(list(found)[:5]))
    outs = next(iter(found.values()))
    if key not in outs:
        raise OutputError(f"{step} has no output {key!r}",
                          hint=hint_with(key, outs, "outputs: " + ", ".join(sorted(outs))))
    value = outs[key]
    if fmt == "json" or not isinstance(value, str):
        click.echo(json.dumps(value, sort_keys=True))
    else:
        click.echo(value)
