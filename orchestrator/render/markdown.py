"""The plan as Markdown for a pull-request comment.

The comment starts with a hidden marker (``<!-- orch-plan:PROFILE:INVENTORY -->``) by which a
bot finds and updates its previous comment, then says what was planned against what: the
inventory, the state, orch's version, the ``--target``/``--exclude`` selection. A table gives
every layer with its counts; destructive steps are listed outside the folds; each layer gets one
``<details>`` fold whose steps are in a ``diff`` fence (``+`` create, ``-`` delete, ``~``
update, ``-/+`` replace). A footer says how to apply.

GitHub refuses a comment past 65,536 characters. When the full comment is longer, it shrinks in
stages, and says what it cut: step bodies (inputs) go first, then step lines beyond each layer's
fair share of the space, summarised per component. Every layer keeps its row and its fold with
its counts, and every destructive step keeps its line (past ~1,000 of them, a count per
component instead, and the note says so). ``ORCH_MARKDOWN_LIMIT`` changes the limit (0: never
shrink, for ``ci/orch-pr-comment.py`` to split over several comments).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.plan import Action, FindingStatus, Plan, PlannedStep
from orchestrator.render.common import change_lines, input_lines, layer_names, summary

#: GitHub's limit for an issue or pull-request comment
LIMIT = 65_536
ICON = {FindingStatus.OK: "✅", FindingStatus.WARN: "⚠️", FindingStatus.FAIL: "❌",
        FindingStatus.INFO: "ℹ️"}
DIFF = {Action.CREATE: "+", Action.UPDATE: "~", Action.REPLACE: "-/+", Action.DELETE: "-",
        Action.NOOP: " "}
_COLUMNS = (Action.CREATE, Action.UPDATE, Action.REPLACE, Action.DELETE, Action.NOOP)
_HEAD = {Action.CREATE: "create", Action.UPDATE: "update", Action.REPLACE: "replace",
         Action.DELETE: "destroy", Action.NOOP: "unchanged"}
#: room kept for the truncation note and the footer
_RESERVE = 1_500


def marker(plan: Plan) -> str:
    """The hidden marker a bot looks for to update its own comment."""
    def clean(s: str) -> str:
        return s.replace("--", "-").replace(">", "")
    return f"<!-- orch-plan:{clean(plan.profile)}:{clean(plan.inventory_path or '-')} -->"


def limit_from_env(default: int = LIMIT) -> int:
    raw = os.environ.get("ORCH_MARKDOWN_LIMIT", "")
    return int(raw) if raw.isdigit() else default


# -- the parts that never shrink ------------------------------------------------------------
def _selection(plan: Plan) -> str:
    parts = [f"`--target {t}`" for t in plan.targets]
    parts += [f"`--exclude {e}`" for e in plan.excludes]
    return "⚠️ targeting in effect: " + " ".join(parts) if parts else "whole profile"


def _header(plan: Plan) -> list[str]:
    title = f" — {plan.title}" if plan.title else ""
    out = [marker(plan), f"### orch plan: `{plan.profile}`{title}", ""]
    rows = [("profile", f"`{plan.profile_path or plan.profile}`"),
            ("inventory", f"`{plan.inventory_path}`" if plan.inventory_path else "(none)"),
            ("state", f"`{plan.state_url}`" if plan.state_url else "(none)"),
            ("selection", _selection(plan))]
    if plan.mode.value != "normal":
        rows.insert(0, ("mode", f"**{plan.mode.value}**"))
    if plan.parameters:
        rows.append(("parameters", ", ".join(f"`{k}={v}`"
                                             for k, v in sorted(plan.parameters.items()))))
    made = f"orch {plan.orch_version or '?'}" + (f", {plan.created_at}" if plan.created_at
                                                  else "")
    rows.append(("made by", made))
    out += ["| | |", "|---|---|"] + [f"| {k} | {v.replace('|', '/')} |" for k, v in rows]
    out += ["", f"**{summary(plan)}**", ""]
    return out


def _layers(plan: Plan) -> list[str]:
    names = layer_names(plan)
    counts: dict[str, Counter[Action]] = {n: Counter() for n in names}
    for p in plan:
        counts.setdefault(p.step.layer, Counter())[p.action] += 1
    out = ["| layer | " + " | ".join(_HEAD[a] for a in _COLUMNS) + " |",
           "|---|" + "---:|" * len(_COLUMNS)]
    for name, c in counts.items():
        cells = " | ".join(_cell(a, c[a]) for a in _COLUMNS)
        out.append(f"| {name} | {cells} |")
    return [*out, ""]


def _cell(action: Action, n: int) -> str:
    if not n:
        return "·"
    return f"**{n}**" if action in (Action.DELETE, Action.REPLACE) else str(n)


def _findings(plan: Plan) -> list[str]:
    if not plan.findings:
        return []
    out = ["| preflight | result |", "|---|---|"]
    out += [f"| {ICON[f.status]} {f.check} | {f.detail.replace('|', '/')} |"
            for f in plan.findings]
    return [*out, ""]


def _destructive(plan: Plan, budget: int) -> tuple[list[str], bool]:
    """Every destructive step, one line each; past ``budget`` characters a count per
    component (the second value says so)."""
    steps = [p for p in plan if p.action in (Action.DELETE, Action.REPLACE)]
    if not steps:
        return [], False
    lines = [f"{DIFF[p.action]} {p.step.id}  ({p.action.value}: {p.reason})" for p in steps]
    grouped = sum(len(x) + 1 for x in lines) > budget
    if grouped:
        by: Counter[tuple[str, str, str]] = Counter(
            (p.step.layer, p.step.component, p.action.value) for p in steps)
        lines = [f"- {n} × {comp} ({action}, layer {layer})"
                 for (layer, comp, action), n in sorted(by.items())]
    head = [f"#### ⚠️ Destructive steps ({len(steps)})", "", "```diff", *lines, "```", ""]
    return head, grouped


def _externals(plan: Plan) -> list[str]:
    ext = [p for p in plan if p.step.external and p.action.changes]
    if not ext:
        return []
    return [f"#### Done by hand ({len(ext)} external steps)", "",
            *(f"- `{p.step.id}` — {p.step.external_reason}" for p in ext), ""]


def footer(plan: Plan) -> list[str]:
    cmd = ["orch", "destroy" if plan.mode.value == "destroy" else "apply",
           plan.profile_path or plan.profile]
    if plan.inventory_path:
        cmd += ["-i", plan.inventory_path]
    cmd += [f"--target {t}" for t in plan.targets] + [f"--exclude {e}" for e in plan.excludes]
    return ["---", f"Apply with `{' '.join(cmd)}` (with this plan's `-p` values), or apply "
            "exactly this plan: `orch plan … --out plan.json` then `orch apply plan.json`."]


# -- the folds, which shrink ----------------------------------------------------------------
@dataclass
class _Fold:
    title: str
    steps: list[PlannedStep]
    detailed: bool = True
    shown: int = -1  # -1: all

    def blocks(self) -> list[str]:
        steps = self.steps if self.shown < 0 else self.steps[:self.shown]
        return [_step_block(p, self.detailed) for p in steps]

    def render(self) -> str:
        lines = [f"<details><summary>{self.title}</summary>", "", "```diff", *self.blocks()]
        hidden = self.steps[len(self.blocks()):]
        if hidden:
            lines.append(f"  … {len(hidden)} more step(s) not shown: {_by_component(hidden)}")
        lines += ["```", "", "</details>", ""]
        return "\n".join(lines)


def _by_component(steps: Sequence[PlannedStep]) -> str:
    c = Counter((p.step.component, p.action.value) for p in steps)
    return ", ".join(f"{n} × {comp} ({a})" for (comp, a), n in c.most_common())


def _step_block(p: PlannedStep, detailed: bool) -> str:
    sym = DIFF[p.action]
    kind = "external" if p.step.external else p.step.kind
    lines = [f"{sym} {p.step.id}  [{kind}] {p.action.value}: {p.reason}"]
    if detailed:
        if p.step.external:
            lines.append(f"{sym}     by hand: {p.step.external_reason}")
        if p.action in (Action.CREATE, Action.REPLACE):
            lines.extend(f"{sym}     {x}" for x in input_lines(p))
        lines.extend(f"{sym}     {x}" for x in change_lines(p))
    return "\n".join(lines)


def _folds(plan: Plan) -> list[_Fold]:
    groups: dict[str, list[PlannedStep]] = {n: [] for n in layer_names(plan)}
    for p in plan:
        if p.action.changes and p.action is not Action.DELETE:
            groups[p.step.layer].append(p)
    out = []
    for name, steps in groups.items():
        if steps:
            c = Counter(p.action.value for p in steps)
            detail = ", ".join(f"{n} {a}" for a, n in c.items())
            out.append(_Fold(f"Layer <b>{name}</b> — {detail}", steps))
    deletes = [p for p in plan if p.action is Action.DELETE]
    if deletes:
        out.append(_Fold(f"To destroy — {len(deletes)} step(s)", deletes))
    return out


def _fit(folds: list[_Fold], budget: int) -> None:
    """Shrink the folds to ``budget`` characters: bodies first, then fair shares of lines."""
    def size() -> int:
        return sum(len(f.render()) + 1 for f in folds)
    if size() <= budget:
        return
    for f in folds:
        f.detailed = False
    if size() <= budget:
        # give the bodies back to the smallest layers (often the ones a reviewer reads)
        for f in sorted(folds, key=lambda f: len(_Fold(f.title, f.steps).render())):
            f.detailed = True
            if size() > budget:
                f.detailed = False
                break
        return
    # each fold keeps its frame; the rest is shared out, a fold needing less than its share
    # giving the surplus to the others
    frames = sum(len(_Fold(f.title, f.steps, False, 0).render()) + 1 for f in folds)
    room = max(budget - frames, 0)
    pending = sorted(folds, key=lambda f: sum(len(b) + 1 for b in f.blocks()))
    while pending:
        share = room // len(pending)
        f = pending.pop(0)
        blocks = [_step_block(p, False) for p in f.steps]
        used, shown = 0, 0
        for b in blocks:
            if used + len(b) + 1 > share:
                break
            used += len(b) + 1
            shown += 1
        f.shown = shown if shown < len(blocks) else -1
        room -= used


def render_markdown(plan: Plan, limit: int | None = None) -> str:
    limit = limit_from_env() if limit is None else limit
    head = _header(plan) + _layers(plan) + _findings(plan)
    destructive, grouped = _destructive(plan, max(limit // 2, 2_000) if limit else 10**12)
    head += destructive + _externals(plan)
    folds = _folds(plan)
    full = sum(len(f.render()) + 1 for f in folds)
    if limit:
        _fit(folds, limit - _RESERVE - sum(len(x) + 1 for x in head))
    out = head + [f.render() for f in folds]
    cut_steps = sum(len(f.steps) - len(f.blocks()) for f in folds)
    cut_bodies = any(not f.detailed for f in folds)
    if cut_steps or cut_bodies or grouped:
        what = []
        if cut_bodies:
            bare = [f.title.split("</b>")[0].split("<b>")[-1] for f in folds if not f.detailed]
            what.append(f"step inputs in {', '.join(bare)}")
        if cut_steps:
            what.append(f"{cut_steps} step line(s) (counted per component in each fold)")
        if grouped:
            what.append("the destructive steps' names (counted per component)")
        out.append(f"> **Truncated** to fit {limit:,} characters (the full comment has "
                   f"{full + sum(len(x) + 1 for x in head):,}): {'; '.join(what)} not shown. "
                   "Every layer and every count is above; `orch show plan.json` (or "
                   "`--format text`) has every step.")
        out.append("")
    out += footer(plan)
    return "\n".join(out) + "\n"
