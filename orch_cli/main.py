"""``orch``: validate, plan, apply, destroy, and inspect state.

Exit codes: 0 success or no changes; 1 error; 2 changes present (``--detailed-exitcode``);
3 apply finished partially (some steps failed, were skipped or need a human).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from orch_cli.common import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_PARTIAL,
    errors_to_exit,
    parse_params,
    profile_options,
    selection_options,
    state_option,
    state_url_for,
    use_published,
    write_output,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--log-format", type=click.Choice(["console", "json"]), default="console",
              show_default=True, help="How log events are written to stderr.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="warning", show_default=True)
@click.version_option(package_name="orch")
def cli(log_format: str, log_level: str) -> None:
    """orch: layered deployment profiles → reviewed plans → journaled, parallel apply."""
    from orchestrator import log
    log.configure(level=log_level, fmt=log_format)


def _load(profile: str, inventory: str | None, params: tuple[str, ...]) -> Any:
    from orchestrator.loader import load
    return load(profile, inventory, parse_params(params))


def _make_plan(profile: str, inventory: str | None, params: tuple[str, ...],
               state_url: str | None, target: tuple[str, ...] = (),
               exclude: tuple[str, ...] = (), destroy: bool = False,
               refresh: bool = True) -> Any:
    from orchestrator.plan import Mode
    from orchestrator.planner import PlanOptions, make_plan
    from orchestrator.state import open_store
    loaded = _load(profile, inventory, params)
    use_published(state_url_for(profile, state_url), loaded.profile.metadata.name)
    store = open_store(state_url_for(profile, state_url), create=False)
    try:
        opts = PlanOptions(Mode.DESTROY if destroy else Mode.NORMAL, target, exclude, refresh)
        return make_plan(loaded, store, opts)
    finally:
        store.close()


@cli.command()
@click.argument("profile", type=click.Path(dir_okay=False))
@profile_options
def validate(profile: str, inventory: str | None, params: tuple[str, ...]) -> None:
    """Check a profile (and inventory) without touching state or machines."""
    with errors_to_exit():
        from orchestrator.components import builtin_registry
        from orchestrator.expand import expand
        from orchestrator.planner import check_acyclic
        from orchestrator.preflight import evaluate
        loaded = _load(profile, inventory, params)
        desired = expand(loaded, builtin_registry())
        check_acyclic(desired)
        evaluate(loaded)
        nodes = sum(len(n) for n in loaded.nodes.values())
        click.echo(f"{profile}: valid — {nodes} node(s), {len(desired.steps)} step(s)")


@cli.command()
@click.argument("profile", type=click.Path(dir_okay=False))
@profile_options
@state_option
@selection_options
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json", "dot"]),
              default="text", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False),
              help="Save the plan (JSON) for `orch apply PLAN`.")
@click.option("--destroy", is_flag=True, help="Plan the removal of what orch recorded.")
@click.option("--refresh/--no-refresh", default=True, show_default=True,
              help="Ask drivers for observed state (drift) and environment facts.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when the plan has changes.")
@click.option("--show-unchanged", is_flag=True, help="List up-to-date steps too (text).")
def plan(profile: str, inventory: str | None, params: tuple[str, ...], state_url: str | None,
         target: tuple[str, ...], exclude: tuple[str, ...], fmt: str, out: str | None,
         destroy: bool, refresh: bool, detailed_exitcode: bool, show_unchanged: bool) -> None:
    """Show what apply would do; optionally save it with --out."""
    import gc
    # Planning builds tens of thousands of short-lived objects and no cycles worth
    # collecting in a process that ends right after; the cyclic GC only costs time here.
    gc.disable()
    with errors_to_exit():
        the_plan = _make_plan(profile, inventory, params, state_url, target, exclude,
                              destroy, refresh)
        if out:
            Path(out).write_text(the_plan.to_json(), encoding="utf-8")
        if fmt == "text":
            from orchestrator.render.text import render_text
            text = render_text(the_plan, show_unchanged=show_unchanged)
        else:
            from orchestrator.render import renderer
            text = renderer(fmt)(the_plan)
        write_output(text, None)
        if out:
            click.echo(f"Saved plan to {out}; apply it with: orch apply {out}", err=True)
        if detailed_exitcode and the_plan.has_changes:
            sys.exit(EXIT_CHANGES)


def _confirm(the_plan: Any, auto_approve: bool) -> None:
    from orchestrator.render.text import render_text
    click.echo(render_text(the_plan), err=True, nl=False)
    if auto_approve or not the_plan.has_changes:
        return
    if not sys.stdin.isatty():
        click.echo("Error: not a terminal and --auto-approve not given; nothing was done.",
                   err=True)
        sys.exit(EXIT_ERROR)
    answer = click.prompt("Apply these actions? Only 'yes' will be accepted", default="",
                          show_default=False, err=True)
    if answer != "yes":
        click.echo("Apply cancelled.", err=True)
        sys.exit(EXIT_ERROR)


def _execute(the_plan: Any, store: Any, parallelism: int, lock_timeout: float,
             fresh: bool, base_dir: Path | None) -> None:
    from orchestrator.driver import DriverRegistry
    from orchestrator.executor import ExecOptions, Executor
    from orchestrator.progress import progress_for
    if not the_plan.has_changes:
        click.echo("No changes. Nothing to do.", err=True)
        return
    total = sum(1 for p in the_plan if p.action.changes)
    with progress_for(total) as progress:
        opts = ExecOptions(parallelism=parallelism, lock_timeout=lock_timeout,
                           on_event=progress, base_dir=base_dir,
                           check_state_hash=not fresh)
        report = Executor(the_plan, store, DriverRegistry(), opts).run()
    _print_report(report)
    if not report.ok:
        sys.exit(EXIT_PARTIAL)


def _plan_and_execute(profile: str, inventory: str | None, params: tuple[str, ...],
                      state_url: str | None, target: tuple[str, ...],
                      exclude: tuple[str, ...], destroy: bool, auto_approve: bool,
                      parallelism: int, lock_timeout: float) -> None:
    """Plan under the lock, so what is confirmed is what runs, and a waiting second run
    plans against the state the first one left."""
    from orchestrator.plan import Mode
    from orchestrator.planner import PlanOptions, make_plan
    from orchestrator.state import Holder, open_store
    loaded = _load(profile, inventory, params)
    use_published(state_url_for(profile, state_url), loaded.profile.metadata.name)
    store = open_store(state_url_for(profile, state_url))
    try:
        with store.locked(loaded.profile.metadata.name, Holder.me(), timeout=lock_timeout):
            opts = PlanOptions(Mode.DESTROY if destroy else Mode.NORMAL, target, exclude)
            the_plan = make_plan(loaded, store, opts)
            _confirm(the_plan, auto_approve)
            _execute(the_plan, store, parallelism, lock_timeout, True, Path(profile).parent)
    finally:
        store.close()


def _print_report(report: Any) -> None:
    from orchestrator.executor import StepStatus
    ok = len(report.of(StepStatus.SUCCEEDED))
    failed = report.of(StepStatus.FAILED)
    stopped = report.of(StepStatus.STOPPED)
    skipped = report.of(StepStatus.SKIPPED)
    click.echo(f"\nApply {'complete' if report.ok else 'partial'} (run {report.run_id}, "
               f"{report.wall_seconds:.1f} s): {ok} succeeded, {len(failed)} failed, "
               f"{len(stopped)} need a human, {len(skipped)} skipped.", err=True)
    for o in failed:
        click.echo(f"  FAILED {o.step_id} (after {o.attempts} attempt(s)): {o.error}", err=True)
    for o in stopped:
        click.echo(f"  BY HAND {o.step_id}: {o.error}\n    then: orch state mark-done "
                   f"PROFILE -i INVENTORY {o.step_id}", err=True)
    if skipped:
        causes: dict[str, int] = {}
        for o in skipped:
            causes[o.root_cause] = causes.get(o.root_cause, 0) + 1
        for cause, n in sorted(causes.items()):
            click.echo(f"  skipped {n} step(s) that depend on {cause}", err=True)
    if not report.ok:
        click.echo("Re-run `orch apply` to resume: finished steps are not redone.", err=True)


def _is_plan_file(path: str) -> bool:
    return path.endswith(".json")


@cli.command()
@click.argument("source", type=click.Path(dir_okay=False))
@profile_options
@state_option
@selection_options
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option("--parallelism", default=10, show_default=True, type=click.IntRange(1, 512),
              help="Steps carried out at once (drivers also limit each endpoint).")
@click.option("--lock-timeout", default=0.0, show_default=True, type=float,
              help="Seconds to wait for another run's lock (0: fail at once).")
def apply(source: str, inventory: str | None, params: tuple[str, ...], state_url: str | None,
          target: tuple[str, ...], exclude: tuple[str, ...], auto_approve: bool,
          parallelism: int, lock_timeout: float) -> None:
    """Apply a saved plan (PLAN.json, exactly as reviewed) or plan a profile and apply it."""
    with errors_to_exit():
        if _is_plan_file(source):
            from orchestrator.plan import Plan
            from orchestrator.state import open_store
            the_plan = Plan.from_json(Path(source).read_text(encoding="utf-8"), source)
            store = open_store(state_url or the_plan.state_url)
            use_published(state_url or the_plan.state_url, the_plan.profile)
            base = Path(the_plan.profile_path).parent if the_plan.profile_path else None
            try:
                _execute(the_plan, store, parallelism, lock_timeout, False, base)
            finally:
                store.close()
            return
        _plan_and_execute(source, inventory, params, state_url, target, exclude, False,
                          auto_approve, parallelism, lock_timeout)


@cli.command()
@click.argument("profile", type=click.Path(dir_okay=False))
@profile_options
@state_option
@selection_options
@click.option("--auto-approve", is_flag=True)
@click.option("--parallelism", default=10, show_default=True, type=click.IntRange(1, 512))
@click.option("--lock-timeout", default=0.0, show_default=True, type=float)
def destroy(profile: str, inventory: str | None, params: tuple[str, ...],
            state_url: str | None, target: tuple[str, ...], exclude: tuple[str, ...],
            auto_approve: bool, parallelism: int, lock_timeout: float) -> None:
    """Remove what orch recorded for a profile, dependents first."""
    with errors_to_exit():
        _plan_and_execute(profile, inventory, params, state_url, target, exclude, True,
                          auto_approve, parallelism, lock_timeout)


@cli.command()
@click.argument("plan_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json", "dot"]),
              default="text", show_default=True)
def show(plan_file: str, fmt: str) -> None:
    """Render a saved plan."""
    with errors_to_exit():
        from orchestrator.plan import Plan
        from orchestrator.render import renderer
        the_plan = Plan.from_json(Path(plan_file).read_text(encoding="utf-8"), plan_file)
        write_output(renderer(fmt)(the_plan), None)


@cli.command()
@click.argument("profile", type=click.Path(dir_okay=False))
@profile_options
@state_option
@click.option("--out", type=click.Path(dir_okay=False))
def graph(profile: str, inventory: str | None, params: tuple[str, ...],
          state_url: str | None, out: str | None) -> None:
    """The plan's dependency graph in DOT (pipe into `dot -Tsvg`)."""
    with errors_to_exit():
        from orchestrator.render.dot import render_dot
        write_output(render_dot(_make_plan(profile, inventory, params, state_url,
                                           refresh=False)), out)


from orch_cli import extra  # noqa: E402  (registers the remaining command groups)

extra.register(cli)


def main() -> None:
    cli(prog_name="orch")


if __name__ == "__main__":
    main()
