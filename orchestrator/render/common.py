"""Pieces the text and Markdown renderings share: symbols, the summary line, input lines."""

from __future__ import annotations

from typing import Any

import msgspec

from orchestrator.plan import Action, Plan, PlannedStep
from orchestrator.secrets import SECRET_KEY

_encode = msgspec.json.Encoder(order="sorted", enc_hook=str).encode

SYMBOL = {Action.CREATE: "+", Action.UPDATE: "~", Action.REPLACE: "-/+",
          Action.DELETE: "-", Action.NOOP: " "}


def summary(plan: Plan) -> str:
    c = plan.counts()
    external = sum(1 for p in plan if p.step.external and p.action.changes)
    if not plan.has_changes:
        return f"No changes. {c[Action.NOOP]} step(s) up to date."
    text = (f"Plan: {c[Action.CREATE]} to create, {c[Action.UPDATE]} to change, "
            f"{c[Action.REPLACE]} to replace, {c[Action.DELETE]} to destroy")
    extra = []
    if c[Action.NOOP]:
        extra.append(f"{c[Action.NOOP]} unchanged")
    if external:
        extra.append(f"{external} external, done by hand")
    return text + (f" ({', '.join(extra)})." if extra else ".")


def value_text(value: Any) -> str:
    if isinstance(value, dict) and set(value) == {SECRET_KEY}:
        return f"(secret {value[SECRET_KEY]})"
    return _encode(value).decode()


def input_lines(p: PlannedStep) -> list[str]:
    """``key: value`` lines for a step's inputs; the bound host shown as one line."""
    lines = []
    inputs = p.step.inputs
    host = inputs.get("host")
    if isinstance(host, dict):
        where = host.get("name", "")
        if host.get("address"):
            where += f" ({host['address']})"
        lines.append(f"host: {where}")
    hosts = inputs.get("hosts")
    if isinstance(hosts, list) and hosts and isinstance(hosts[0], dict):
        lines.append("hosts: " + ", ".join(str(h.get("name")) for h in hosts))
    for key in sorted(inputs):
        if key in ("host", "hosts"):
            continue
        lines.append(f"{key}: {value_text(inputs[key])}")
    return lines


def change_lines(p: PlannedStep) -> list[str]:
    return [f"{c.key}: {value_text(c.before)} → {value_text(c.after)}" for c in p.changes]


def headline(p: PlannedStep) -> str:
    step = p.step
    kind = "external" if step.external else step.kind
    return f"{SYMBOL[p.action]} {step.id}  [{kind}] {p.action.value}: {p.reason}"
