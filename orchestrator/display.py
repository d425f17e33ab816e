"""What an apply or a destroy says around its progress: the question before, the recap after.

The live progress itself is :mod:`orchestrator.progress`; this module is the text around it,
plain functions of the plan and the executor's report, so that the CLI stays glue.
"""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Mapping
from typing import Any

from orchestrator.plan import Action, Plan


def confirmation(plan: Plan) -> tuple[str, str]:
    """The question to ask before acting, and what to say when the answer is not ``yes``.
    A destroy asks a question of its own, naming what goes, as Terraform does."""
    if plan.mode.value == "destroy":
        n = sum(1 for p in plan if p.action is Action.DELETE)
        return (f"Really destroy {n} step(s) recorded for {plan.profile!r}"
                f"{' (targeted)' if plan.targeted else ''}? There is no undo. "
                "Only 'yes' will be accepted", "Destroy cancelled.")
    return ("Apply these actions? Only 'yes' will be accepted", "Apply cancelled.")


def mark_done_command(plan: Plan, step_id: str, params: Mapping[str, str] | None = None) -> str:
    """The command that records an external step as done, ready to copy and paste: the
    plan's profile, inventory, ``-p`` overrides given and state (when not the default)."""
    from orchestrator.state import default_state_path
    profile = plan.profile_path or "PROFILE"
    cmd = ["orch", "state", "mark-done", profile]
    if plan.inventory_path:
        cmd += ["-i", plan.inventory_path]
    for k, v in sorted((params or {}).items()):
        cmd += ["-p", f"{k}={v}"]
    default = str(default_state_path(profile)) if plan.profile_path else ""
    if plan.state_url and plan.state_url != default:
        cmd += ["--state", plan.state_url]
    cmd.append(step_id)
    return shlex.join(cmd)


# -- after the run ---------------------------------------------------------------------------
#: up to this many steps, the recap lists each; past it, succeeded steps per component
RECAP_EACH = 60
_MARK = {"succeeded": "ok", "failed": "FAILED", "skipped": "skipped", "stopped": "BY HAND"}


def recap_lines(report: Any, plan: Plan, params: Mapping[str, str] | None = None) -> list[str]:
    """What stays on screen after an apply, as Ansible's PLAY RECAP: each step (or, past
    :data:`RECAP_EACH`, each component) with its result and duration; then the failures,
    the steps left for a human with the command that records them done, and the skipped
    steps by name under their root cause."""
    from orchestrator.progress import component_of, natural_key, seconds
    outcomes = sorted(report.outcomes.values(), key=lambda o: natural_key(o.step_id))
    by_status: dict[str, list[Any]] = {}
    for o in outcomes:
        by_status.setdefault(o.status.value, []).append(o)
    ok, failed = by_status.get("succeeded", []), by_status.get("failed", [])
    stopped, skipped = by_status.get("stopped", []), by_status.get("skipped", [])
    out = ["", "RECAP " + "*" * 66]
    if len(outcomes) <= RECAP_EACH:
        width = max((len(o.step_id) for o in outcomes), default=10)
        for o in outcomes:
            took = seconds(o.duration) if o.status.value != "skipped" else "-"
            tries = f"  {o.attempts} attempts" if o.attempts > 1 else ""
            out.append(f"{o.step_id:<{width}}  {_MARK[o.status.value]:<8} "
                       f"{o.action.value:<8} {took:>7}{tries}")
    else:
        groups: dict[str, list[Any]] = {}
        for o in outcomes:
            groups.setdefault(component_of(o.step_id), []).append(o)
        width = max(len(c) for c in groups)
        for comp, items in groups.items():
            c = {s: sum(1 for o in items if o.status.value == s) for s in _MARK}
            longest = max((o.duration for o in items), default=0.0)
            parts = [f"{c[s]} {_MARK[s].lower()}" for s in _MARK if c[s]]
            out.append(f"{comp:<{width}}  ×{len(items):<4} {', '.join(parts):<40} "
                       f"longest {seconds(longest)}")
    out.append("")
    out.append(f"Apply {'complete' if report.ok else 'partial'} (run {report.run_id}, "
               f"{report.wall_seconds:.1f} s): {len(ok)} succeeded, {len(failed)} failed, "
               f"{len(stopped)} need a human, {len(skipped)} skipped.")
    for o in failed:
        out.append(f"  FAILED {o.step_id} (after {o.attempts} attempt(s), "
                   f"{seconds(o.duration)}): {o.error}")
    for o in stopped:
        out.append(f"  BY HAND {o.step_id}: {o.error}")
        out.append(f"    then: {mark_done_command(plan, o.step_id, params)}")
    causes: dict[str, list[str]] = {}
    for o in skipped:
        causes.setdefault(o.root_cause, []).append(o.step_id)
    for cause, ids in sorted(causes.items()):
        names = ", ".join(ids[:8]) + (f", … {len(ids) - 8} more" if len(ids) > 8 else "")
        out.append(f"  skipped {len(ids)} step(s) that depend on {cause}: {names}")
    if not report.ok:
        out.append("Re-run `orch apply` to resume: finished steps are not redone.")
    return out


def recap_event(report: Any) -> dict[str, Any]:
    """The recap as one ``apply.finished`` JSON event's fields."""
    c = Counter(o.status.value for o in report.outcomes.values())
    return {"run": report.run_id, "ok": report.ok, "seconds": round(report.wall_seconds, 3),
            **{k: c.get(k, 0) for k in ("succeeded", "failed", "stopped", "skipped")},
            "failed_steps": sorted(o.step_id for o in report.outcomes.values()
                                   if o.status.value == "failed")}
