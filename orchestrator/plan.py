"""The plan: plain data, the same value rendered as text, Markdown, JSON and DOT.

A plan lists every step with an :class:`Action` and a reason, in an order the executor may
follow. It records what it was computed from (hashes of the profile, the inventory and the
state), so that ``orch apply plan.json`` can refuse a plan the world has moved past.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec

from orchestrator import plan_format
from orchestrator.errors import Location, SourceError
from orchestrator.graph import Graph
from orchestrator.plan_format import FORMAT_VERSION
from orchestrator.step import Step, canonical_json


class Action(str, enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    NOOP = "no-op"

    @property
    def changes(self) -> bool:
        return self is not Action.NOOP


class Mode(str, enum.Enum):
    NORMAL = "normal"
    DESTROY = "destroy"


class FindingStatus(str, enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Finding:
    """A preflight result shown in the plan: a check, what it found, and whether it passed."""

    check: str
    status: FindingStatus
    detail: str
    source: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"check": self.check, "status": self.status.value, "detail": self.detail,
                "source": self.source}


@dataclass(frozen=True, slots=True)
class Change:
    """One input that differs between the recorded and the desired step."""

    key: str
    before: Any
    after: Any


class PlannedStep(msgspec.Struct, frozen=True):
    step: Step
    action: Action
    reason: str
    changes: tuple[Change, ...] = ()

    def to_dict(self, hosts: plan_format.HostTable | None = None) -> dict[str, Any]:
        """The step as saved (format 2): ``actions[]``, host records as references into
        ``hosts`` (a fresh table when none is given)."""
        changes = [{"key": c.key, "before": c.before, "after": c.after} for c in self.changes]
        return plan_format.step_out(self.step.to_dict(), self.action.value, self.reason,
                                    changes, hosts or plan_format.HostTable())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PlannedStep:
        return cls(Step.from_dict(d), Action(plan_format.action_of(d)), d["reason"],
                   tuple(Change(c["key"], c["before"], c["after"])
                         for c in d.get("changes", ())))


@dataclass(frozen=True)
class Plan:
    profile: str
    mode: Mode
    steps: tuple[PlannedStep, ...]
    profile_path: str = ""
    inventory_path: str = ""
    inputs_hash: str = ""
    state_hash: str = ""
    state_url: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()
    layers: tuple[str, ...] = ()
    title: str = ""
    #: validated settings of the drivers the plan uses (never secrets: only references)
    driver_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the --target and --exclude patterns the plan was made with
    targets: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    #: orch's version and the UTC time (ISO 8601) the plan was made at
    orch_version: str = ""
    created_at: str = ""

    # -- queries -------------------------------------------------------------------------
    def __iter__(self) -> Iterator[PlannedStep]:
        return iter(self.steps)

    def by_id(self) -> dict[str, PlannedStep]:
        return {p.step.id: p for p in self.steps}

    def counts(self) -> dict[Action, int]:
        out = dict.fromkeys(Action, 0)
        for p in self.steps:
            out[p.action] += 1
        return out

    @property
    def has_changes(self) -> bool:
        return any(p.action.changes for p in self.steps)

    def graph(self) -> Graph[str]:
        """The dependency graph of this plan's steps (deletes run in reverse)."""
        g: Graph[str] = Graph()
        ids = set()
        for p in self.steps:
            g.add_node(p.step.id)
            ids.add(p.step.id)
        for p in self.steps:
            for dep in p.step.depends_on:
                if dep not in ids:
                    continue
                if p.action is Action.DELETE and self.by_id_cached[dep].action is Action.DELETE:
                    g.add_edge(p.step.id, dep)
                else:
                    g.add_edge(dep, p.step.id)
        return g

    @property
    def by_id_cached(self) -> dict[str, PlannedStep]:
        cache = self.__dict__.get("_by_id")
        if cache is None:
            cache = self.by_id()
            object.__setattr__(self, "_by_id", cache)
        return cache

    # -- serialisation -------------------------------------------------------------------
    @property
    def targeted(self) -> bool:
        return bool(self.targets or self.excludes)

    def to_dict(self) -> dict[str, Any]:
        """The saved layout, ``docs/plan-format.md`` (checked by ``docs/plan.schema.json``)."""
        hosts = plan_format.HostTable()
        steps = [p.to_dict(hosts) for p in self.steps]
        return {
            "format_version": FORMAT_VERSION,
            "orch_version": self.orch_version,
            "created_at": self.created_at,
            "profile": self.profile,
            "title": self.title,
            "mode": self.mode.value,
            "profile_path": self.profile_path,
            "inventory_path": self.inventory_path,
            "inputs_hash": self.inputs_hash,
            "state_hash": self.state_hash,
            "state_url": self.state_url,
            "selection": {"targets": list(self.targets), "excludes": list(self.excludes)},
            "parameters": self.parameters,
            "driver_settings": self.driver_settings,
            "layers": list(self.layers),
            "findings": [f.to_dict() for f in self.findings],
            "summary": {a.value: n for a, n in self.counts().items()},
            "hosts": hosts.records,
            "steps": steps,
        }

    def to_json(self) -> str:
        """Indented JSON; keys keep their order (stable by construction), so the same plan
        always gives the same bytes."""
        raw = msgspec.json.encode(self.to_dict(), enc_hook=str)
        return msgspec.json.format(raw, indent=1).decode() + "\n"

    def digest(self) -> str:
        return hashlib.sha256(canonical_json(self.to_dict()).encode()).hexdigest()

    @classmethod
    def from_json(cls, text: str, name: str = "plan.json") -> Plan:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SourceError(f"not a plan: invalid JSON ({exc.msg})",
                              location=Location(name, exc.lineno, exc.colno),
                              hint="save a plan with `orch plan ... --out plan.json`") from None
        version = d.get("format_version") if isinstance(d, dict) else None
        if version not in plan_format.READABLE:
            raise SourceError("unsupported plan format", location=Location(name, 1, 1),
                              expected="format_version "
                                       + " or ".join(map(str, plan_format.READABLE)),
                              found=repr(version),
                              hint="save the plan again with this version of orch")
        try:
            d = plan_format.upgrade(d)
            return cls(
                profile=d["profile"], title=d.get("title", ""), mode=Mode(d["mode"]),
                steps=tuple(PlannedStep.from_dict(s) for s in d["steps"]),
                profile_path=d.get("profile_path", ""),
                inventory_path=d.get("inventory_path", ""),
                inputs_hash=d.get("inputs_hash", ""), state_hash=d.get("state_hash", ""),
                state_url=d.get("state_url", ""), parameters=d.get("parameters", {}),
                layers=tuple(d.get("layers", ())),
                driver_settings=d.get("driver_settings", {}),
                targets=d["targets"], excludes=d["excludes"],
                orch_version=d.get("orch_version", ""), created_at=d.get("created_at", ""),
                findings=tuple(Finding(f["check"], FindingStatus(f["status"]), f["detail"],
                                       f.get("source", "")) for f in d.get("findings", ())),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise SourceError(f"malformed plan: {exc}", location=Location(name)) from None
