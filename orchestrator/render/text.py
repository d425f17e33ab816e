"""The plan as text, for a terminal: Terraform's shape, grouped by layer."""

from __future__ import annotations

from orchestrator.plan import Action, FindingStatus, Plan
from orchestrator.render.common import change_lines, headline, input_lines, summary

MARK = {FindingStatus.OK: "ok  ", FindingStatus.WARN: "WARN", FindingStatus.FAIL: "FAIL",
        FindingStatus.INFO: "info"}


def render_text(plan: Plan, *, show_unchanged: bool = False) -> str:
    out: list[str] = []
    title = f" — {plan.title}" if plan.title else ""
    out.append(f"orch plan for {plan.profile}{title}")
    if plan.mode.value != "normal":
        out.append(f"  mode: {plan.mode.value}")
    if plan.parameters:
        params = ", ".join(f"{k}={v}" for k, v in sorted(plan.parameters.items()))
        out.append(f"  parameters: {params}")
    if plan.findings:
        out.append("")
        out.append("Preflight:")
        for f in plan.findings:
            out.append(f"  [{MARK[f.status]}] {f.check}: {f.detail}")
    layers = list(plan.layers) or sorted({p.step.layer for p in plan})
    by_layer: dict[str, list[str]] = {name: [] for name in layers}
    deletes: list[str] = []
    for p in plan:
        if p.action is Action.NOOP and not show_unchanged:
            continue
        block = [f"  {headline(p)}"]
        if p.step.external:
            block.append(f"      by hand: {p.step.external_reason}")
        if p.action is Action.CREATE or (p.action is Action.REPLACE and not p.changes):
            block.extend(f"      {line}" for line in input_lines(p))
        block.extend(f"      {line}" for line in change_lines(p))
        if p.step.depends_on:
            block.append(f"      after: {', '.join(p.step.depends_on)}")
        target = deletes if p.action is Action.DELETE else \
            by_layer.setdefault(p.step.layer, [])
        target.extend(block)
    for name in by_layer:
        if by_layer[name]:
            out.append("")
            out.append(f"Layer {name}:")
            out.extend(by_layer[name])
    if deletes:
        out.append("")
        out.append("To destroy (dependents first):")
        out.extend(deletes)
    out.append("")
    out.append(summary(plan))
    return "\n".join(out) + "\n"
