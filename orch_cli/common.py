"""What the commands share: option decorators, loading, opening state, printing errors."""

from __future__ import annotations

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


def profile_options(fn: F) -> F:
    fn = click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
                      help="Override a profile parameter (repeatable; wins over -P).")(fn)
    fn = click.option("-P", "--var-file", "var_files", multiple=True, metavar="FILE",
                      type=click.Path(dir_okay=False), expose_value=False, is_eager=True,
                      callback=_remember_var_files,
                      help="YAML file of parameter values (repeatable; later files win).")(fn)
    fn = click.option("-i", "--inventory", type=click.Path(dir_okay=False),
                      envvar="ORCH_INVENTORY", show_envvar=True,
                      help="Inventory binding the profile's roles to hosts.")(fn)
    return fn


def state_option(fn: F) -> F:
    return click.option("--state", "state_url", metavar="URL", envvar="ORCH_STATE",
                        show_envvar=True,
                        help="State store: a SQLite path (default: beside the profile, "
                             "PROFILE.orch.db) or postgresql://…")(fn)


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


def state_url_for(profile_path: str, given: str | None) -> str:
    if given:
        return given
    from orchestrator.state import default_state_path
    return str(default_state_path(profile_path))


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
