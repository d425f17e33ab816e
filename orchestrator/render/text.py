"""The plan as text, for a terminal: Terraform's shape, grouped by layer.

Each layer's heading carries its counts. Inputs equal to an empty component default
(``fail: ""``, ``env: {}``) and internal ones (``passing``) are left out unless ``verbose``.
With ``color`` (a terminal, and ``NO_COLOR`` unset: see :func:`use_color`) the action symbols
and headings are coloured with ANSI codes. A plan made with ``--target``/``--exclude`` says so
at the top and above the summary, as Terraform does.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import TextIO

from orchestrator.plan import Action, FindingStatus, Plan
from orchestrator.render.common import change_lines, headline, input_lines, summary

MARK = {FindingStatus.OK: "ok  ", FindingStatus.WARN: "WARN", FindingStatus.FAIL: "FAIL",
        FindingStatus.INFO: "info"}
_ANSI = {Action.CREATE: "32", Action.UPDATE: "33", Action.REPLACE: "35", Action.DELETE: "31",
         Action.NOOP: "2"}
_STATUS_ANSI = {FindingStatus.OK: "32", FindingStatus.WARN: "33", FindingStatus.FAIL: "31",
                FindingStatus.INFO: "36"}
_WORD = {Action.CREATE: "to create", Action.UPDATE: "to change", Action.REPLACE: "to replace",
         Action.DELETE: "to destroy", Action.NOOP: "unchanged"}


def use_color(stream: TextIO) -> bool:
    """Colour only on a terminal, never when piped, never with ``NO_COLOR`` set
    (https://no-color.org), always with ``FORCE_COLOR`` set."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color else text


def targeting_notice(plan: Plan) -> list[str]:
    if not plan.targeted:
        return []
    sel = " ".join([f"--target {t}" for t in plan.targets]
                   + [f"--exclude {e}" for e in plan.excludes])
    return [f"Targeting in effect ({sel}): this plan covers part of the profile only; steps "
            "outside it are neither shown nor changed. Plan without it before relying on "
            "the result."]


def layer_counts(c: Counter[Action]) -> str:
    return ", ".join(f"{c[a]} {_WORD[a]}" for a in Action if c[a])


def render_text(plan: Plan, *, show_unchanged: bool = False, verbose: bool = False,
                color: bool = False) -> str:
    out: list[str] = []
    title = f" — {plan.title}" if plan.title else ""
    out.append(_paint(f"orch plan for {plan.profile}{title}", "1", color))
    if plan.mode.value != "normal":
        out.append(f"  mode: {plan.mode.value}")
    if plan.parameters:
        params = ", ".join(f"{k}={v}" for k, v in sorted(plan.parameters.items()))
        out.append(f"  parameters: {params}")
    notice = targeting_notice(plan)
    if notice:
        out += ["", *(_paint(n, "33;1", color) for n in notice)]
    if plan.findings:
        out.append("")
        out.append("Preflight:")
        for f in plan.findings:
            mark = _paint(MARK[f.status], _STATUS_ANSI[f.status], color)
            out.append(f"  [{mark}] {f.check}: {f.detail}")
    layers = list(plan.layers) or sorted({p.step.layer for p in plan})
    by_layer: dict[str, list[str]] = {name: [] for name in layers}
    counts: dict[str, Counter[Action]] = {name: Counter() for name in layers}
    deletes: list[str] = []
    for p in plan:
        counts.setdefault(p.step.layer, Counter())[p.action] += 1
        if p.action is Action.NOOP and not show_unchanged:
            continue
        block = [f"  {_paint(headline(p), _ANSI[p.action], color)}"]
        if p.step.external:
            block.append(f"      by hand: {p.step.external_reason}")
        if p.action is Action.CREATE or (p.action is Action.REPLACE and not p.changes):
            block.extend(f"      {line}" for line in input_lines(p, verbose))
        block.extend(f"      {line}" for line in change_lines(p))
        if p.step.depends_on:
            block.append(f"      after: {', '.join(p.step.depends_on)}")
        target = deletes if p.action is Action.DELETE else \
            by_layer.setdefault(p.step.layer, [])
        target.extend(block)
    for name in by_layer:
        if by_layer[name]:
            out.append("")
            heading = f"Layer {name} ({layer_counts(counts[name])}):"
            out.append(_paint(heading, "1", color))
            out.extend(by_layer[name])
    if deletes:
        out.append("")
        out.append(_paint("To destroy (dependents first):", "31;1", color))
        out.extend(deletes)
    out.append("")
    if notice:
        out += [_paint(n, "33;1", color) for n in notice]
    out.append(_paint(summary(plan), "1", color))
    return "\n".join(out) + "\n"
