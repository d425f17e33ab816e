"""Saved plans: applied from any directory, against the state they were made from, exactly
as reviewed, or refused with what differs.

* **Where.** A plan saved with ``orch plan --out FILE`` names its profile, inventory and
  SQLite state relative to the plan file (a plan printed with ``--format json`` names them
  absolutely), so ``cd elsewhere && orch apply ../plan.json`` uses the original state.
* **Which state.** A state gets a random id when it is created (``orch_meta.state_id``); the
  plan records it, and apply refuses any other state, and never creates one for a plan made
  against an existing state.
* **What.** The plan's digest covers everything apply will do (:meth:`Plan.compute_digest`);
  a plan whose content no longer matches it was edited after review, and is refused naming
  the steps and fields that differ from what the profile makes. The profile and inventory
  must still be the files the plan was made from (``inputs_hash``).
* **Recognised by content**, not by name: a JSON object with ``format_version`` is a plan
  (a profile may be written in JSON; it has ``apiVersion`` instead).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from orchestrator.errors import Location, SourceError, StalePlanError, StateError
from orchestrator.plan import Action, Plan
from orchestrator.source import not_utf8
from orchestrator.state.base import StateStore

#: differences named in a refusal, at most
MAX_NAMED = 8


def is_plan_file(path: str | Path) -> bool:
    """True when ``path`` holds a JSON object with a ``format_version`` (read by content)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    text = head.lstrip()
    return text.startswith(b"{") and b'"format_version"' in text


def _is_sqlite(url: str) -> bool:
    return bool(url) and not url.startswith(("postgresql://", "postgres://"))


def _sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite:///")


def _rebase(plan: Plan, convert: Any) -> Plan:
    def path(p: str) -> str:
        return convert(p) if p else p
    state = plan.state_url
    if _is_sqlite(state):
        state = convert(_sqlite_path(state))
    return dataclasses.replace(plan, profile_path=path(plan.profile_path),
                               inventory_path=path(plan.inventory_path), state_url=state)


def with_absolute_paths(plan: Plan) -> Plan:
    """The plan naming its files absolutely (for a plan printed on stdout)."""
    return _rebase(plan, lambda p: str(Path(p).resolve()))


def for_file(plan: Plan, plan_file: str | Path) -> Plan:
    """The plan naming its files relative to ``plan_file``'s directory."""
    base = Path(plan_file).resolve().parent
    return _rebase(plan, lambda p: os.path.relpath(Path(p).resolve(), base))


def save(plan: Plan, plan_file: str | Path) -> None:
    Path(plan_file).write_text(for_file(plan, plan_file).to_json(), encoding="utf-8")


def load(plan_file: str | Path) -> Plan:
    """Read a saved plan; its relative paths are resolved against the plan file's directory.
    Raises SourceError (located) for a file that is not a plan."""
    name = str(plan_file)
    data = Path(plan_file).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise not_utf8(name, data, exc) from None
    plan = Plan.from_json(text, name)
    base = Path(plan_file).resolve().parent
    return _rebase(plan, lambda p: str(base / p))


# -- checks at apply ---------------------------------------------------------------------
def check_state(plan: Plan, store: StateStore) -> None:
    """The store must be the state the plan was made from."""
    if plan.state_id and store.state_id != plan.state_id:
        raise StalePlanError(f"it was made against state {plan.state_id[:12]} "
                             f"({plan.state_url}), not {store.url} "
                             f"(state {store.state_id[:12] or 'none'})",
                             hint="apply it with the state it was planned from (--state), "
                                  "or run `orch plan` again against this one")
    if not plan.state_id and store.state_id and not getattr(store, "new_identity", False):
        raise StalePlanError(f"it was made when no state existed at {plan.state_url}, and "
                             f"{store.url} is an existing state")


def state_must_exist(plan: Plan, url: str) -> None:
    """A plan made against an existing SQLite state never creates a new, empty one."""
    if plan.state_id and _is_sqlite(url) and not Path(_sqlite_path(url)).exists():
        raise StateError(f"the state this plan was made against is not at {url}",
                         hint="apply from where the plan can find its state, or pass "
                              "--state with its path; nothing was done")


def check_inputs(plan: Plan) -> None:
    """The profile and inventory must still be the files the plan was made from."""
    h = hashlib.sha256()
    for path in (plan.profile_path, plan.inventory_path):
        if not path:
            h.update(b"")
            continue
        try:
            h.update(hashlib.sha256(Path(path).read_bytes()).hexdigest().encode())
        except OSError as exc:
            raise StalePlanError(f"cannot read {path}, which the plan was made from: "
                                 f"{exc.strerror}") from None
    h.update(json.dumps(plan.parameters, sort_keys=True).encode())
    if h.hexdigest() != plan.inputs_hash:
        raise StalePlanError(f"{plan.profile_path} or {plan.inventory_path or 'its inventory'}"
                             " changed since the plan was made")


def check_digest(plan: Plan, plan_file: str) -> None:
    """Refuse a plan whose content no longer matches its digest, naming what differs."""
    if not plan.digest:
        raise SourceError("the plan has no digest", location=Location(plan_file, 1, 1),
                          hint="save the plan again with `orch plan --out`")
    if plan.compute_digest() == plan.digest:
        return
    differences = explain(plan)
    named = "; ".join(differences[:MAX_NAMED]) + (
        f"; and {len(differences) - MAX_NAMED} more" if len(differences) > MAX_NAMED else "")
    raise StalePlanError(
        "the plan file was changed after it was made (its digest does not match): "
        + (named or "no step differs from what the profile makes; the change is in the "
                    "plan's actions, order or settings"),
        hint="never edit a saved plan: run `orch plan --out` again and review that")


def explain(plan: Plan) -> list[str]:
    """What in ``plan`` differs from the steps its profile and inventory make."""
    try:
        desired = _desired_steps(plan)
    except Exception as exc:  # the profile no longer loads: say so instead
        return [f"(the profile cannot be re-read to compare: {exc})"]
    out: list[str] = []
    for p in plan.steps:
        if p.action is Action.DELETE:
            continue
        want = desired.get(p.step.id)
        if want is None:
            out.append(f"step {p.step.id} is not one the profile makes")
            continue
        out += [f"step {p.step.id}: {d}" for d in _diff(want.to_dict(), p.step.to_dict())]
    return out


def _diff(want: dict[str, Any], got: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(want) | set(got)):
        a, b = want.get(key), got.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out += _diff(a, b, f"{prefix}{key}.")
        elif key in ("driver", "kind", "endpoint"):
            out.append(f"{prefix}{key} {a!r} became {b!r}")
        else:
            out.append(f"{prefix}{key} differs")  # values may be long; never secrets here
    return out


def _desired_steps(plan: Plan) -> dict[str, Any]:
    from orchestrator.components import builtin_registry
    from orchestrator.expand import expand
    from orchestrator.loader import load as load_profile
    from orchestrator.secrets import is_ref_value
    overrides = {k: (v["$secret"] if is_ref_value(v) else
                     str(v).lower() if isinstance(v, bool) else str(v))
                 for k, v in plan.parameters.items()}
    loaded = load_profile(plan.profile_path, plan.inventory_path or None, overrides)
    return dict(expand(loaded, builtin_registry()).steps)
