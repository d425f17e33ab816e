"""``orch``: validate, plan, apply, destroy, and inspect state.

Exit codes: 0 success or no changes; 1 error; 2 changes present (``--detailed-exitcode``);
3 apply finished partially (some steps failed, were skipped or need a human, or the run
was interrupted by SIGINT or SIGTERM).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from orch_cli import moved, ready
from orch_cli.common import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_PARTIAL,
    VAR_FILES,
    Cli,
    errors_to_exit,
    inventory_change_option,
    parse_params,
    profile_options,
    seconds,
    selection_options,
    state_option,
    state_url_for,
    use_published,
    write_output,
)
from orchestrator import __version__


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--log-format", type=click.Choice(["console", "json"]), default="console",
              show_default=True, envvar="ORCH_LOG_FORMAT", show_envvar=True,
              help="How log events are written to stderr.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="warning", show_default=True, envvar="ORCH_LOG_LEVEL", show_envvar=True)
@click.version_option(__version__, "-V", "--version", prog_name="orch",
                      message="%(prog)s %(version)s (`orch version` lists driver dependencies)")
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
               refresh: bool = True, allow_inventory_change: bool = False) -> Any:
    from orchestrator.plan import Mode
    from orchestrator.planner import PlanOptions, make_plan
    from orchestrator.state import open_store
    loaded = _load(profile, inventory, params)
    use_published(state_url_for(profile, state_url, inventory), loaded.profile.metadata.name)
    store = open_store(state_url_for(profile, state_url, inventory), create=False)
    try:
        opts = PlanOptions(Mode.DESTROY if destroy else Mode.NORMAL, target, exclude, refresh,
                           strict_excludes=True,
                           allow_inventory_change=allow_inventory_change)
        return ready.reviewed(make_plan(loaded, store, opts), Path(profile).parent)
    finally:
        store.close()


@cli.command()
@click.argument("profile", type=click.Path(dir_okay=False))
@profile_options
def validate(profile: str, inventory: str | None, params: tuple[str, ...]) -> None:
    """Check a profile (and inventory) without touching state or machines."""
    with errors_to_exit():
        from orchestrator.components import builtin_registry
        from orchestrator.driver import DriverRegistry
        from orchestrator.expand import expand
        from orchestrator.planner import check_acyclic, drivers_used, instantiate_drivers
        from orchestrator.preflight import evaluate
        loaded = _load(profile, inventory, params)
        desired = expand(loaded, builtin_registry())
        check_acyclic(desired)
        evaluate(loaded)
        used = drivers_used(desired.steps.values())  # known, with valid settings
        for driver in instantiate_drivers(loaded, used, DriverRegistry()).values():
            driver.close()
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
@click.option("-v", "--verbose", is_flag=True,
              help="Show default and internal inputs too (text).")
@click.option("--refresh-only", is_flag=True,
              help="Only read what exists and show how state would follow it.")
@inventory_change_option
def plan(profile: str, inventory: str | None, params: tuple[str, ...], state_url: str | None,
         target: tuple[str, ...], exclude: tuple[str, ...], fmt: str, out: str | None,
         destroy: bool, refresh: bool, detailed_exitcode: bool, show_unchanged: bool,
         verbose: bool, refresh_only: bool, allow_inventory_change: bool) -> None:
    """Show what apply would do; optionally save it with --out."""
    import gc
    # Planning builds tens of thousands of short-lived objects and no cycles worth
    # collecting in a process that ends right after; the cyclic GC only costs time here.
    gc.disable()
    with errors_to_exit():
        if refresh_only:
            from orch_cli.refreshcmd import refresh_only as run_refresh
            return run_refresh(profile, inventory, params, state_url, apply=False,
                               detailed_exitcode=detailed_exitcode)
        from orchestrator import saved_plan
        the_plan = _make_plan(profile, inventory, params, state_url, target, exclude,
                              destroy, refresh, allow_inventory_change)
        if out:
            saved_plan.save(the_plan, out)
        if fmt == "json":  # a plan printed may be saved anywhere: it names files absolutely
            the_plan = saved_plan.with_absolute_paths(the_plan)
        color: bool | None = None
        if fmt == "text":
            from orchestrator.render.text import render_text, use_color
            color = use_color(sys.stdout)
            text = render_text(the_plan, show_unchanged=show_unchanged, verbose=verbose,
                               color=color)
        else:
            from orchestrator.render import renderer
            text = renderer(fmt)(the_plan)
        write_output(text, None, color)
        ready.warn_if_blocked(the_plan)
        if fmt == "text" and the_plan.has_changes:
            ready.first_plan_hint(the_plan, profile, inventory)
        if out:
            _say(f"Saved plan to {out}; apply it with: orch apply {out}", "plan.saved")
        if detailed_exitcode and the_plan.has_changes:
            sys.exit(EXIT_CHANGES)


def _confirm(the_plan: Any, auto_approve: bool) -> None:
    from orchestrator import log
    from orchestrator.display import confirmation
    from orchestrator.render.common import summary
    from orchestrator.render.text import render_text, use_color
    if log.is_json():
        log.event("plan", profile=the_plan.profile, mode=the_plan.mode.value,
                  summary={a.value: n for a, n in the_plan.counts().items()},
                  message=summary(the_plan))
    else:
        color = use_color(sys.stderr)
        click.echo(render_text(the_plan, color=color), err=True, nl=False, color=color)
    if auto_approve or not the_plan.has_changes:
        return
    question, cancelled = confirmation(the_plan)
    if not sys.stdin.isatty():
        _say("Error: not a terminal and --auto-approve not given; nothing was done.", "error")
        sys.exit(EXIT_ERROR)
    answer = click.prompt(question, default="", show_default=False, err=True)
    if answer != "yes":
        _say(cancelled, "apply.cancelled")
        sys.exit(EXIT_ERROR)


def _execute(the_plan: Any, store: Any, parallelism: int, lock_timeout: float,
             fresh: bool, base_dir: Path | None, params: tuple[str, ...] = ()) -> None:
    from orchestrator import log
    from orchestrator.driver import DriverRegistry
    from orchestrator.executor import ExecOptions, Executor
    from orchestrator.planner import record_inventory
    from orchestrator.progress import progress_for
    from orchestrator.state import Holder
    if not the_plan.has_changes:
        _say("No changes. Nothing to do.", "apply.nothing")
        return
    from orch_cli.signals import interrupts
    from orchestrator.errors import OrchError
    total = sum(1 for p in the_plan if p.action.changes)
    failure = None
    with store.locked(the_plan.profile, Holder.me(), timeout=lock_timeout), \
            progress_for(total, json=log.is_json()) as progress:
        record_inventory(store, the_plan)  # which inventory this state is now built with
        opts = ExecOptions(parallelism=parallelism, lock_timeout=lock_timeout,
                           on_event=progress, base_dir=base_dir,
                           check_state_hash=not fresh)
        executor = Executor(the_plan, store, DriverRegistry(), opts)
        with interrupts(executor):
            try:
                report = executor.run()
            except OrchError as exc:  # the run failed; the summary still says what was done
                if getattr(exc, "report", None) is None:
                    raise
                report = exc.report  # type: ignore[attr-defined]
                failure = exc
    _print_report(report, the_plan, params)
    if failure is not None:
        raise failure
    if not report.ok:
        sys.exit(EXIT_PARTIAL)


def _say(text: str, event: str) -> None:
    """A message for people on stderr, or one JSON event under ``--log-format json``."""
    from orchestrator import log
    if log.is_json():
        log.event(event, message=text)
    else:
        click.echo(text, err=True)


def _plan_and_execute(profile: str, inventory: str | None, params: tuple[str, ...],
                      state_url: str | None, target: tuple[str, ...],
                      exclude: tuple[str, ...], destroy: bool, auto_approve: bool,
                      parallelism: int, lock_timeout: float,
                      allow_inventory_change: bool = False) -> None:
    """Plan under the lock, so what is confirmed is what runs, and a waiting second run
    plans against the state the first one left."""
    from orchestrator.plan import Mode
    from orchestrator.planner import PlanOptions, make_plan
    from orchestrator.state import Holder, open_store
    loaded = _load(profile, inventory, params)
    use_published(state_url_for(profile, state_url, inventory), loaded.profile.metadata.name)
    store = open_store(state_url_for(profile, state_url, inventory))
    try:
        with store.locked(loaded.profile.metadata.name, Holder.me(), timeout=lock_timeout):
            opts = PlanOptions(Mode.DESTROY if destroy else Mode.NORMAL, target, exclude,
                               strict_excludes=True,
                               allow_inventory_change=allow_inventory_change)
            the_plan = ready.reviewed(make_plan(loaded, store, opts), Path(profile).parent)
            ready.refuse_unready(the_plan, Path(profile).parent)
            _confirm(the_plan, auto_approve)
            moved.persist(store, the_plan.profile, profile)
            _execute(the_plan, store, parallelism, lock_timeout, True, Path(profile).parent,
                     params)
    finally:
        store.close()


def _print_report(report: Any, the_plan: Any, params: tuple[str, ...] = ()) -> None:
    from orchestrator import log
    from orchestrator.display import recap_event, recap_lines
    if log.is_json():
        log.event("apply.finished", "info" if report.ok else "error", **recap_event(report))
        return
    click.echo("\n".join(recap_lines(report, the_plan, parse_params(params))), err=True)


def _apply_saved(plan_file: str, state_url: str | None, parallelism: int,
                 lock_timeout: float) -> None:
    """A saved plan, exactly as reviewed, against the state it was made from (or refused),
    ready here and now, with the profile's reviewed ``moved:`` entries recorded first."""
    from orchestrator import saved_plan
    from orchestrator.state import open_store
    the_plan = saved_plan.load(plan_file)
    saved_plan.check_digest(the_plan, plan_file)
    saved_plan.check_inputs(the_plan)
    base = Path(the_plan.profile_path).parent if the_plan.profile_path else None
    url = state_url or the_plan.state_url
    use_published(url, the_plan.profile)
    ready.refuse_unready(the_plan, base)
    saved_plan.state_must_exist(the_plan, url)
    store = open_store(url)
    try:
        saved_plan.check_state(the_plan, store)
        if any(f.check == "moved" for f in the_plan.findings):  # reviewed moves
            moved.persist(store, the_plan.profile, the_plan.profile_path)
        _execute(the_plan, store, parallelism, lock_timeout, False, base)
    finally:
        store.close()


def _refuse_flags_with_saved_plan(inventory: str | None, params: tuple[str, ...],
                                  target: tuple[str, ...], exclude: tuple[str, ...],
                                  allow_inventory_change: bool) -> None:
    """A saved plan is applied as reviewed: options that would change it are refused (an
    ``ORCH_INVENTORY`` default is not: the plan names its own inventory)."""
    from click.core import ParameterSource
    ctx = click.get_current_context()
    typed_inventory = inventory and \
        ctx.get_parameter_source("inventory") is not ParameterSource.ENVIRONMENT
    given = [flag for flag, value in (("-i", typed_inventory),
                                      ("-P", ctx.meta.get(VAR_FILES)), ("-p", params),
                                      ("--target", target), ("--exclude", exclude),
                                      ("--allow-inventory-change", allow_inventory_change))
             if value]
    if given:
        raise click.UsageError(f"{', '.join(given)} cannot change a saved plan; make "
                               "a new plan with them (`orch plan ... --out`)")


@cli.command()
@click.argument("source", type=click.Path(dir_okay=False))
@profile_options
@state_option
@selection_options
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option("--parallelism", default=10, show_default=True, type=click.IntRange(1, 512),
              envvar="ORCH_PARALLELISM", show_envvar=True,
              help="Steps carried out at once (drivers also limit each endpoint).")
@click.option("--lock-timeout", default=0.0, show_default=True, type=float,
              envvar="ORCH_LOCK_TIMEOUT", show_envvar=True, callback=seconds,
              help="Seconds to wait for another run's lock (0: fail at once).")
@click.option("--refresh-only", is_flag=True,
              help="Record in state what exists (gone objects, new outputs); change nothing.")
@inventory_change_option
def apply(source: str, inventory: str | None, params: tuple[str, ...], state_url: str | None,
          target: tuple[str, ...], exclude: tuple[str, ...], auto_approve: bool,
          parallelism: int, lock_timeout: float, refresh_only: bool,
          allow_inventory_change: bool) -> None:
    """Apply a saved plan (PLAN.json, exactly as reviewed) or plan a profile and apply it."""
    with errors_to_exit():
        if refresh_only:
            from orch_cli.refreshcmd import refresh_only as run_refresh
            return run_refresh(source, inventory, params, state_url, apply=True,
                               auto_approve=auto_approve)
        from orchestrator.saved_plan import is_plan_file
        if is_plan_file(source):
            _refuse_flags_with_saved_plan(inventory, params, target, exclude,
                                          allow_inventory_change)
            _apply_saved(source, state_url, parallelism, lock_timeout)
            return
        _plan_and_execute(source, inventory, params, state_url, target, exclude, False,
                          auto_approve, parallelism, lock_timeout, allow_inventory_change)


@cli.command()
@click.argument("profile", type=click.Path(dir_okay=False))
@profile_options
@state_option
@selection_options
@click.option("--auto-approve", is_flag=True)
@click.option("--parallelism", default=10, show_default=True, type=click.IntRange(1, 512),
              envvar="ORCH_PARALLELISM", show_envvar=True)
@click.option("--lock-timeout", default=0.0, show_default=True, type=float,
              envvar="ORCH_LOCK_TIMEOUT", show_envvar=True, callback=seconds)
@inventory_change_option
def destroy(profile: str, inventory: str | None, params: tuple[str, ...],
            state_url: str | None, target: tuple[str, ...], exclude: tuple[str, ...],
            auto_approve: bool, parallelism: int, lock_timeout: float,
            allow_inventory_change: bool) -> None:
    """Remove what orch recorded for a profile, dependents first."""
    with errors_to_exit():
        _plan_and_execute(profile, inventory, params, state_url, target, exclude, True,
                          auto_approve, parallelism, lock_timeout, allow_inventory_change)


@cli.command()
@click.argument("plan_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json", "dot"]),
              default="text", show_default=True)
@click.option("-v", "--verbose", is_flag=True,
              help="Show default and internal inputs too (text).")
def show(plan_file: str, fmt: str, verbose: bool) -> None:
    """Render a saved plan."""
    with errors_to_exit():
        from orchestrator.render import renderer
        from orchestrator.saved_plan import load
        the_plan = load(plan_file)
        if fmt == "text":
            from orchestrator.render.text import render_text, use_color
            color = use_color(sys.stdout)
            write_output(render_text(the_plan, verbose=verbose, color=color), None, color)
            return
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
