"""Pieces the text and Markdown renderings share: symbols, the summary line, input lines."""

from __future__ import annotations

import functools
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


#: inputs a component's expander sets for the driver, never written by a user
INTERNAL = frozenset({"passing"})


@functools.cache
def default_inputs() -> dict[str, frozenset[bytes]]:
    """For each ``with:`` field name, the *empty* defaults component types give it
    (JSON-encoded: ``""``, ``false``, ``{}``, ``[]``, ``null``, ``0``): an input equal to one
    of them says nothing a reader needs. A default that means something (``state: "on"``,
    ``namespace: "default"``) stays shown: the step reads wrong without it."""
    from orchestrator.components import builtin_registry
    out: dict[str, set[bytes]] = {}
    for ctype in builtin_registry().loaded().values():
        if ctype.params is None:
            continue
        for f in msgspec.structs.fields(ctype.params):
            if f.default is not msgspec.NODEFAULT:
                value = f.default
            elif f.default_factory is not msgspec.NODEFAULT:
                value = f.default_factory()
            else:
                continue
            if not value:
                out.setdefault(f.encode_name, set()).add(_encode(value))
    return {k: frozenset(v) for k, v in out.items()}


def is_quiet(key: str, value: Any) -> bool:
    """An internal input, or one equal to a component default (hidden unless --verbose)."""
    if key in INTERNAL:
        return True
    defaults = default_inputs().get(key, frozenset())
    return _encode(value) in defaults


def input_lines(p: PlannedStep, verbose: bool = True) -> list[str]:
    """``key: value`` lines for a step's inputs; the bound host shown as one line; defaults
    and internal inputs left out unless ``verbose``."""
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
        if key in ("host", "hosts") or (not verbose and is_quiet(key, inputs[key])):
            continue
        lines.append(f"{key}: {value_text(inputs[key])}")
    return lines


def change_lines(p: PlannedStep) -> list[str]:
    return [f"{c.key}: {value_text(c.before)} → {value_text(c.after)}" for c in p.changes]


def headline(p: PlannedStep) -> str:
    step = p.step
    kind = "external" if step.external else step.kind
    return f"{SYMBOL[p.action]} {step.id}  [{kind}] {p.action.value}: {p.reason}"


def layer_names(plan: Plan) -> list[str]:
    """The plan's layers in profile order, then any layer only a step names."""
    names = list(plan.layers)
    for p in plan:
        if p.step.layer not in names:
            names.append(p.step.layer)
    return names
