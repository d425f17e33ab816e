"""The saved plan's JSON layout (``format_version`` 2), and reading version 1.

The layout is documented in ``docs/plan-format.md`` and described by the JSON Schema
``docs/plan.schema.json``; a test checks every golden plan against the schema. Two things
distinguish version 2 from version 1:

* each step carries ``actions``, a list as Terraform's ``actions[]`` (``["create"]``,
  ``["delete", "create"]`` for a replacement, ``["no-op"]``), instead of one ``action``;
* a host's record (address, BMC, SSH, hardware — secrets only as references) is written
  once, in the top-level ``hosts`` table, and a step's inputs refer to it as
  ``{"$host": "KEY"}``. A plan of 80 steps on 3 hosts no longer repeats the 3 records 80
  times.

This module turns a plan's fields into that layout and back; it knows nothing of the
:class:`~orchestrator.plan.Plan` class beyond the dictionaries it is given.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any

FORMAT_VERSION = 2
#: versions :func:`upgrade` can read
READABLE = (1, 2)
HOST_REF = "$host"
_HOST_KEYS = frozenset(("name", "node", "role", "address", "hardware"))

#: a step's action as Terraform's list of actions; a replacement deletes, then creates
ACTIONS = {"create": ["create"], "update": ["update"], "replace": ["delete", "create"],
           "delete": ["delete"], "no-op": ["no-op"]}
_FROM_ACTIONS = {tuple(v): k for k, v in ACTIONS.items()}
_FROM_ACTIONS[("create", "delete")] = "replace"


@functools.cache
def orch_version() -> str:
    """orch's installed version (``0+unknown`` when run from a tree that is not installed)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("orch")
    except PackageNotFoundError:
        return "0+unknown"


def now_iso() -> str:
    """The plan's creation time, UTC, ISO 8601 to the second. ``SOURCE_DATE_EPOCH`` (the
    reproducible-builds convention) fixes it, for byte-identical plans in tests."""
    fixed = os.environ.get("SOURCE_DATE_EPOCH", "")
    when = int(fixed) if fixed.isdigit() else int(time.time())
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def is_host_record(value: Any) -> bool:
    """A host record as ``Node.host_inputs`` makes it (``inputs["host"]``)."""
    return isinstance(value, dict) and value.keys() >= _HOST_KEYS and HOST_REF not in value


class HostTable:
    """Host records seen while writing a plan, each under a stable key (the node's name;
    a different record under a name already taken gets ``NAME~2``, ``NAME~3``...)."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self._by_identity: dict[int, str] = {}

    def key_for(self, record: dict[str, Any]) -> str:
        known = self._by_identity.get(id(record))
        if known is not None:
            return known
        base = str(record.get("node") or record.get("name"))
        key, n = base, 1
        while key in self.records and self.records[key] != record:
            n += 1
            key = f"{base}~{n}"
        self.records[key] = record
        self._by_identity[id(record)] = key
        return key

    def factor(self, value: Any) -> Any:
        """``value`` with every host record replaced by a ``{"$host": KEY}`` reference."""
        if is_host_record(value):
            return {HOST_REF: self.key_for(value)}
        if isinstance(value, dict):
            return {k: self.factor(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.factor(v) for v in value]
        return value


def expand_hosts(value: Any, hosts: dict[str, Any], where: str = "") -> Any:
    """The inverse of :meth:`HostTable.factor`: references replaced by the records."""
    if isinstance(value, dict):
        if HOST_REF in value and len(value) == 1:
            key = value[HOST_REF]
            if key not in hosts:
                raise ValueError(f"{where}: host {key!r} is not in the plan's hosts table")
            return hosts[key]
        return {k: expand_hosts(v, hosts, where) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_hosts(v, hosts, where) for v in value]
    return value


def step_out(step: dict[str, Any], action: str, reason: str,
             changes: list[dict[str, Any]], hosts: HostTable) -> dict[str, Any]:
    """One step of a version-2 plan."""
    d: dict[str, Any] = {"actions": list(ACTIONS[action]), "reason": reason}
    for key, value in step.items():
        d[key] = hosts.factor(value) if key == "inputs" else value
    if changes:
        d["changes"] = hosts.factor(changes)
    return d


def action_of(step: dict[str, Any]) -> str:
    """The scalar action of a step of either version."""
    if "actions" in step:
        actions = tuple(step["actions"])
        if actions not in _FROM_ACTIONS:
            raise ValueError(f"step {step.get('id')!r}: unknown actions {list(actions)}")
        return _FROM_ACTIONS[actions]
    return str(step["action"])


def upgrade(d: dict[str, Any]) -> dict[str, Any]:
    """A plan of any readable version as version 2's fields with hosts inlined again:
    each step gets its scalar ``action`` back and its inputs their host records."""
    hosts = d.get("hosts") or {}
    steps = []
    for s in d["steps"]:
        s = dict(s)
        s["action"] = action_of(s)
        s.pop("actions", None)
        if hosts:
            where = f"step {s.get('id')!r}"
            s["inputs"] = expand_hosts(s.get("inputs", {}), hosts, where)
            if "changes" in s:
                s["changes"] = expand_hosts(s["changes"], hosts, where)
        steps.append(s)
    out = dict(d)
    out["steps"] = steps
    selection = d.get("selection") or {}
    out["targets"] = tuple(selection.get("targets", ()))
    out["excludes"] = tuple(selection.get("excludes", ()))
    return out
