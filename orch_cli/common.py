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


def parse_params(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for v in values:
        key, sep, val = v.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{v!r}: expected KEY=VALUE", param_hint="-p")
        out[key.strip()] = val
    return out


def profile_options(fn: F) -> F:
    fn = click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
                      help="Override a profile parameter (repeatable).")(fn)
    fn = click.option("-i", "--inventory", type=click.Path(dir_okay=False),
                      help="Inventory binding the profile's roles to hosts.")(fn)
    return fn


def state_option(fn: F) -> F:
    return click.option("--state", "state_url", metavar="URL",
                        help="State store: a SQLite path (default: beside the profile, "
                             "PROFILE.orch.db) or postgresql://…")(fn)


def selection_options(fn: F) -> F:
    fn = click.option("--exclude", multiple=True, metavar="PATTERN",
                      help="Leave out matching steps and what depends on them.")(fn)
    fn = click.option("--target", multiple=True, metavar="PATTERN",
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
        click.echo(f"Error: {exc.render()}", err=True)
        sys.exit(EXIT_ERROR)
    except OSError as exc:  # a plan file, an --out path, a state directory
        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(f"Error: {where}{exc.strerror or exc}\n  hint: check the path exists and "
                   "is readable (or writable, for --out)", err=True)
        sys.exit(EXIT_ERROR)


def write_output(text: str, out: str | None) -> None:
    if out:
        Path(out).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)
