"""Shell completion: ``orch completion bash|zsh|fish`` prints the script; the callbacks
here complete component types, recorded step ids and the steps of a profile.

Install once, e.g. ``orch completion bash > ~/.local/share/bash-completion/completions/orch``
(zsh: a file ``_orch`` on ``$fpath``; fish: ``~/.config/fish/completions/orch.fish``). The
script calls ``orch`` back with ``_ORCH_COMPLETE`` set (click's mechanism), so completion
follows the installed version. Callbacks never fail: a broken profile completes nothing.
"""

from __future__ import annotations

from typing import Any

import click
from click.shell_completion import CompletionItem, get_completion_class

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_ORCH_COMPLETE"


def _profile_arg(ctx: click.Context) -> str | None:
    """The PROFILE argument: parsed, or (when an option waiting for its value stopped
    click's resilient parse) the first leftover word that names a YAML file."""
    given = ctx.params.get("profile") or ctx.params.get("source")
    if given:
        return str(given)
    return next((a for a in ctx.args if a.endswith((".yaml", ".yml"))), None)


def complete_component_type(ctx: click.Context, param: click.Parameter,
                            incomplete: str) -> list[CompletionItem]:
    try:
        from orchestrator.components import builtin_registry
        types = builtin_registry().all()
    except Exception:  # completion must never print a traceback into the shell
        return []
    return [CompletionItem(name, help=t.description) for name, t in types.items()
            if name.startswith(incomplete)]


def complete_recorded_step(ctx: click.Context, param: click.Parameter,
                           incomplete: str) -> list[CompletionItem]:
    """Step ids recorded in the profile's state (``orch state rm/show/mv``)."""
    try:
        from orch_cli.common import profile_name, state_url_for
        from orchestrator.state import open_store
        profile = _profile_arg(ctx)
        if not profile:
            return []
        store = open_store(state_url_for(profile, ctx.params.get("state_url")), create=False)
        try:
            ids = list(store.records(profile_name(profile)))
        finally:
            store.close()
    except Exception:
        return []
    return [CompletionItem(i) for i in ids if i.startswith(incomplete)]


def complete_profile_step(ctx: click.Context, param: click.Parameter,
                          incomplete: str) -> list[CompletionItem]:
    """Step ids, component and node names of the profile (``--target``, ``--exclude``,
    ``state mark-done``)."""
    try:
        from orch_cli.common import parse_params
        from orchestrator.components import builtin_registry
        from orchestrator.expand import expand
        from orchestrator.loader import load
        profile = _profile_arg(ctx)
        if not profile or profile.endswith(".json"):
            return []
        loaded = load(profile, ctx.params.get("inventory"),
                      parse_params(tuple(ctx.params.get("params") or ())))
        steps = expand(loaded, builtin_registry()).steps
    except Exception:
        return []
    names = dict.fromkeys([*steps, *(s.component for s in steps.values()),
                           *(s.node for s in steps.values() if s.node)])
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


def completion_script(cli: click.Command, shell: str, prog_name: str = "orch") -> str:
    cls: Any = get_completion_class(shell)
    if cls is None:  # click.Choice already refused it; kept for callers from Python
        raise click.BadParameter(f"{shell}: one of {', '.join(SHELLS)}")
    return str(cls(cli, {}, prog_name, COMPLETE_VAR).source())


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the shell completion script for bash, zsh or fish.

    \b
    bash: orch completion bash > ~/.local/share/bash-completion/completions/orch
    zsh:  orch completion zsh > "${fpath[1]}/_orch"
    fish: orch completion fish > ~/.config/fish/completions/orch.fish
    """
    root = ctx.find_root().command
    click.echo(completion_script(root, shell), nl=False)
