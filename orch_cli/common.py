"""What the commands share: option decorators, loading, opening state, printing errors."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from orchestrator.errors import OrchError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_PARTIAL = 0, 1, 2, 3


#: ``ctx.meta`` key under which ``-P/--var-file`` leaves its files for :func:`parse_params`
VAR_FILES = "orch.var_files"


def parse_params(values: tuple[str, ...]) -> dict[str, str]:
    """Parameter overrides: each ``-P FILE`` (YAML mapping, later files win), then each
    ``-p KEY=VALUE`` (wins over every file). The profile's defaults fill the rest."""
    ctx = click.get_current_context(silent=True)
    out: dict[str, str] = {}
    for path in (ctx.meta.get(VAR_FILES, ()) if ctx is not None else ()):
        out.update(read_var_file(path))
    for v in values:
        key, sep, val = v.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{v!r}: expected KEY=VALUE", param_hint="-p")
        out[key.strip()] = val
    return out


def read_var_file(path: str) -> dict[str, str]:
    """A parameter file: a YAML mapping of parameter names to scalar values."""
    from orchestrator.errors import SourceError
    from orchestrator.source import load_yaml
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise SourceError("a parameter file is a mapping of parameter names to values",
                          location=doc.source.locate(()), expected="name: value lines",
                          found=type(doc.data).__name__)
    out = {}
    for key, value in doc.data.items():
        if isinstance(value, dict | list) or value is None:
            raise SourceError(f"parameter {key!r} must be a single value",
                              location=doc.source.locate((key,)),
                              expected="a string, number or boolean",
                              found="nothing" if value is None else type(value).__name__)
        out[str(key)] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def _remember_var_files(ctx: click.Context, _param: click.Parameter,
                        value: tuple[str, ...]) -> tuple[str, ...]:
    ctx.meta[VAR_FILES] = value
    return value


def inventory_option(fn: F) -> F:
    return click.option("-i", "--inventory", type=click.Path(dir_okay=False),
                        envvar="ORCH_INVENTORY", show_envvar=True,
                        help="Inventory binding the profile's roles to hosts (it also "
                             "names the default state, PROFILE.INVENTORY.orch.db).")(fn)


def profile_options(fn: F) -> F:
    fn = click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
                      help="Override a profile parameter (repeatable; wins over -P).")(fn)
    fn = click.option("-P", "--var-file", "var_files", multiple=True, metavar="FILE",
                      type=click.Path(dir_okay=False), expose_value=False, is_eager=True,
                      callback=_remember_var_files,
                      help="YAML file of parameter values (repeatable; later files win).")(fn)
    return inventory_option(fn)


def state_option(fn: F) -> F:
    return click.option("--state", "state_url", metavar="URL", envvar="ORCH_STATE",
                        show_envvar=True,
                        help="State store: a SQLite path (default: beside the profile, "
                             "PROFILE.INVENTORY.orch.db, or PROFILE.orch.db without "
                             "-i) or postgresql://…")(fn)


def selection_options(fn: F) -> F:
    from orch_cli.completion import complete_profile_step
    fn = click.option("--exclude", multiple=True, metavar="PATTERN",
                      shell_complete=complete_profile_step,
                      help="Leave out matching steps and what depends on them (a pattern "
                           "that matches nothing is an error).")(fn)
    fn = click.option("--target", multiple=True, metavar="PATTERN",
                      shell_complete=complete_profile_step,
                      help="Only matching steps (ids, components or nodes; globs) and what "
                           "they need.")(fn)
    return fn


def seconds(_ctx: Any, param: Any, value: float) -> float:
    """Callback of a duration option: finite and not negative (``inf``, ``nan``, ``-1``
    refused)."""
    import math
    if not math.isfinite(value) or value < 0:
        raise click.BadParameter(f"{value}: expected a finite number of seconds, 0 or more",
                                 param=param)
    return value


def inventory_change_option(fn: F) -> F:
    return click.option("--allow-inventory-change", is_flag=True,
                        help="Plan against a state built with another inventory (the same "
                             "machines, described anew).")(fn)


def state_url_for(profile_path: str, given: str | None, inventory: str | None = None) -> str:
    """The state to use: ``--state``, else ``PROFILE.orch.db`` beside the profile, or with an
    inventory ``PROFILE.INVENTORY-STEM.orch.db`` (one state per profile and inventory, so
    staging's records are never planned as changes to production)."""
    if given:
        return given
    from orchestrator.state import default_state_path
    shared = default_state_path(profile_path)
    if not inventory:
        return str(shared)
    own = shared.with_name(f"{Path(profile_path).stem}.{Path(inventory).stem}.orch.db")
    if not own.exists() and shared.exists():
        _refuse_shared_state(profile_path, inventory, shared, own)
    return str(own)


def _refuse_shared_state(profile: str, inventory: str, shared: Path, own: Path) -> None:
    """Before states were per inventory, every inventory used ``PROFILE.orch.db``: say how
    to move it rather than plan from an empty state (which would create everything again)."""
    from orchestrator.errors import StateError
    from orchestrator.loader import structured
    from orchestrator.model import Profile
    from orchestrator.planner import inventory_key
    from orchestrator.source import load_yaml
    from orchestrator.state import open_store
    name = structured(load_yaml(profile), Profile, "profile").metadata.name
    store = open_store(str(shared), create=False)
    try:
        recorded, built_with = len(store.records(name)), store.meta(inventory_key(name))
    finally:
        store.close()
    if recorded and built_with != "":
        raise StateError(
            f"the state of {profile} with inventory {inventory} is {own}, which does not "
            f"exist; {shared} holds {recorded} step(s) of {name!r} recorded "
            + (f"with inventory {built_with!r}" if built_with else
               "by an earlier orch, which kept one state for every inventory"),
            hint=f"if they were made with this inventory: mv {shared} {own} (or pass "
                 f"--state {shared}); if not, pass --state {own} to start a new state")


def open_state_to_read(profile: str, given: str | None, inventory: str | None = None) -> Any:
    """The state for a command that only reads it (``state list|show|runs``): never created;
    a mistyped ``--state`` is an error, a default one not made yet gives None."""
    from orchestrator.errors import StateError
    from orchestrator.state import open_store
    url = state_url_for(profile, given, inventory)
    if not url.startswith(("postgresql://", "postgres://")) and \
            not Path(url.removeprefix("sqlite:///")).exists():
        if given:
            raise StateError(f"no state at {url}",
                             hint="check the --state path (nothing was created)")
        click.echo(f"(no state yet at {url}: nothing was applied)", err=True)
        return None
    return open_store(url, create=False)


class Cli(click.Group):
    """The ``orch`` group: every usage error (unknown option, ``-p size`` without ``=``, an
    unreadable file) exits 1, never click's 2, which ``plan --detailed-exitcode`` means as
    "changes present"; a closed output pipe (``orch state list P | head -1``) ends quietly."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.ClickException as exc:
            exc.show()
            sys.exit(EXIT_ERROR)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(EXIT_ERROR)
        except BrokenPipeError:
            quiet_broken_pipe()
        sys.exit(code if isinstance(code, int) else EXIT_OK)


def quiet_broken_pipe() -> None:
    """The reader of our output went away: no error message, no flush error at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(EXIT_ERROR)


def use_published(state_url: str, profile: str) -> None:
    """Name where this deployment's steps publish credentials for later layers."""
    from orchestrator import published
    published.use(published.directory_for(state_url, profile))


@contextmanager
def errors_to_exit() -> Iterator[None]:
    """Print orch's errors as located messages, never a traceback, and exit 1."""
    try:
        yield
    except OrchError as exc:
        _error(exc.render())
        sys.exit(EXIT_ERROR)
    except BrokenPipeError:
        quiet_broken_pipe()
    except OSError as exc:  # a plan file, an --out path, a state directory
        where = f"{exc.filename}: " if exc.filename else ""
        _error(f"{where}{exc.strerror or exc}\n  hint: check the path exists and "
               "is readable (or writable, for --out)")
        sys.exit(EXIT_ERROR)


def format_option(fn: F) -> F:
    return click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
                        show_default=True, help="text for people, json for scripts.")(fn)


def write_json(value: Any) -> None:
    import json
    click.echo(json.dumps(value, indent=2, sort_keys=True))


def profile_name(profile: str) -> str:
    """A profile's metadata.name, read without expanding it."""
    from orchestrator.loader import structured
    from orchestrator.model import Profile
    from orchestrator.source import load_yaml
    return str(structured(load_yaml(profile), Profile, "profile").metadata.name)


def _error(text: str) -> None:
    """``Error: …`` for people; one ``error`` JSON event under ``--log-format json``."""
    from orchestrator import log
    if log.is_json():
        log.event("error", "error", message=text)
    else:
        click.echo(f"Error: {text}", err=True)


def write_output(text: str, out: str | None, color: bool | None = None) -> None:
    """``color=True`` keeps ANSI codes that click would strip when stdout is not a TTY
    (``FORCE_COLOR``)."""
    if out:
        Path(out).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False, color=color)
