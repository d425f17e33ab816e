"""The plan as Markdown for a pull request.

The summary and destructive steps stay outside the folds; each layer gets one ``<details>``
fold. The whole comment is kept under GitHub's limit (65,536 characters) with margin: past
60,000 characters the remaining steps are cut and the note says how many.
"""

from __future__ import annotations

from orchestrator.plan import Action, FindingStatus, Plan, PlannedStep
from orchestrator.render.common import change_lines, headline, input_lines, summary

LIMIT = 60_000
ICON = {FindingStatus.OK: "✅", FindingStatus.WARN: "⚠️", FindingStatus.FAIL: "❌",
        FindingStatus.INFO: "ℹ️"}


def _step_block(p: PlannedStep) -> str:
    lines = [headline(p)]
    if p.step.external:
        lines.append(f"    by hand: {p.step.external_reason}")
    if p.action in (Action.CREATE, Action.REPLACE):
        lines.extend(f"    {x}" for x in input_lines(p))
    lines.extend(f"    {x}" for x in change_lines(p))
    return "\n".join(lines)


def render_markdown(plan: Plan, limit: int = LIMIT) -> str:
    head: list[str] = [f"### orch plan: `{plan.profile}`" + (f" — {plan.title}"
                                                            if plan.title else ""), ""]
    head.append(f"**{summary(plan)}**")
    head.append("")
    if plan.parameters:
        head.append("Parameters: " + ", ".join(f"`{k}={v}`"
                                               for k, v in sorted(plan.parameters.items())))
        head.append("")
    if plan.findings:
        head.append("| preflight | result |")
        head.append("|---|---|")
        for f in plan.findings:
            head.append(f"| {ICON[f.status]} {f.check} | {f.detail.replace('|', '/')} |")
        head.append("")
    destructive = [p for p in plan if p.action in (Action.DELETE, Action.REPLACE)]
    if destructive:
        head.append(f"#### ⚠️ Destructive steps ({len(destructive)})")
        head.append("")
        head.append("```diff")
        head.extend(f"- {p.step.id}  ({p.action.value}: {p.reason})" for p in destructive)
        head.append("```")
        head.append("")
    externals = [p for p in plan if p.step.external and p.action.changes]
    if externals:
        head.append(f"#### Done by hand ({len(externals)} external steps)")
        head.append("")
        head.extend(f"- `{p.step.id}` — {p.step.external_reason}" for p in externals)
        head.append("")
    text = "\n".join(head)
    folds = _folds(plan)
    omitted = 0
    body: list[str] = []
    size = len(text)
    for title, blocks in folds:
        fold = [f"<details><summary>{title}</summary>", "", "```"]
        used = size + sum(len(x) + 1 for x in fold) + 20
        shown = 0
        for b in blocks:
            if used + len(b) + 1 > limit - 400:
                break
            fold.append(b)
            used += len(b) + 1
            shown += 1
        omitted += len(blocks) - shown
        if shown == 0:
            continue
        if shown < len(blocks):
            fold.append(f"… {len(blocks) - shown} more step(s) in this layer not shown")
        fold += ["```", "", "</details>", ""]
        chunk = "\n".join(fold)
        body.append(chunk)
        size += len(chunk) + 1
    out = text + "\n" + "\n".join(body)
    if omitted:
        out += (f"\n> **Truncated:** {omitted} step(s) are not shown to keep this comment "
                f"under {limit:,} characters. `orch plan --format text` (or the saved JSON "
                "plan) has every step.\n")
    return out


def _folds(plan: Plan) -> list[tuple[str, list[str]]]:
    layers = list(plan.layers) or sorted({p.step.layer for p in plan})
    groups: dict[str, list[PlannedStep]] = {name: [] for name in layers}
    for p in plan:
        if p.action.changes and p.action is not Action.DELETE:
            groups.setdefault(p.step.layer, []).append(p)
    out = []
    for name, steps in groups.items():
        if not steps:
            continue
        counts: dict[str, int] = {}
        for p in steps:
            counts[p.action.value] = counts.get(p.action.value, 0) + 1
        detail = ", ".join(f"{n} {a}" for a, n in counts.items())
        out.append((f"Layer <b>{name}</b> — {detail}", [_step_block(p) for p in steps]))
    deletes = [p for p in plan if p.action is Action.DELETE]
    if deletes:
        out.append((f"To destroy — {len(deletes)} step(s)", [_step_block(p) for p in deletes]))
    return out
