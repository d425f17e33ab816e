"""What an apply or a destroy says around its progress: the question before, the recap after.

The live progress itself is :mod:`orchestrator.progress`; this module is the text around it,
plain functions of the plan and the executor's report, so that the CLI stays glue.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

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
