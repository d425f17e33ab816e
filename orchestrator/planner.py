"""The planner: profile + inventory + recorded state → a :class:`~orchestrator.plan.Plan`.

Planning is a short list of transformations, read top to bottom in :func:`make_plan`.
It has no side effects: drivers may *read* observed state and report facts, nothing more.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator import preflight, published
from orchestrator.components import Registry, builtin_registry
from orchestrator.driver import Driver, DriverRegistry
from orchestrator.errors import (
    CycleError,
    DriverLoadError,
    Location,
    OrchError,
    PlanError,
    SourceError,
    SourceErrors,
)
from orchestrator.expand import Desired, expand, literal_secret_error
from orchestrator.graph import Graph
from orchestrator.loader import Loaded
from orchestrator.plan import Action, Change, Finding, FindingStatus, Mode, Plan, PlannedStep
from orchestrator.plan_format import now_iso, orch_version
from orchestrator.secrets import guard, is_ref_value
from orchestrator.source import SourceMap
from orchestrator.state.base import Holder, Record, RecordStatus, StateStore
from orchestrator.step import EXTERNAL, Step


@dataclass(frozen=True)
class PlanOptions:
    mode: Mode = Mode.NORMAL
    targets: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    #: ask drivers that can read for observed state (drift) and environment facts
    refresh: bool = True
    #: an exclusion that matches nothing is an error (a typo: the CLI's --exclude), not a
    #: no-op (a caller's standing exclusion, e.g. the lab's destroy)
    strict_excludes: bool = False
    #: plan against a state built with another inventory (``--allow-inventory-change``)
    allow_inventory_change: bool = False


@dataclass
class _Work:
    """What the transformations pass along."""

    loaded: Loaded
    options: PlanOptions
    desired: Desired | None = None
    records: dict[str, Record] = field(default_factory=dict)
    observed: dict[str, tuple[bool, Mapping[str, str]]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    planned: list[PlannedStep] = field(default_factory=list)


def make_plan(loaded: Loaded, store: StateStore, options: PlanOptions | None = None, *,
              components: Registry | None = None,
              drivers: DriverRegistry | None = None) -> Plan:
    """Compute the plan. Raises SourceError(s) for profile problems, PlanError otherwise."""
    w = _Work(loaded, options or PlanOptions())
    drivers = drivers or DriverRegistry()
    w.desired = expand(loaded, components or builtin_registry())   # components → steps
    check_acyclic(w.desired)                                        # cycles, named
    check_hand_offs(loaded, w.desired)                              # published: after publisher
    w.findings += preflight.evaluate(loaded)                        # static checks
    live = instantiate_drivers(loaded, drivers_used(w.desired.steps.values()), drivers)
    w.records = store.records(loaded.profile.metadata.name)         # what orch recorded
    w.records = follow_moved(w.records, loaded, w.findings)         # moved: renames
    w.findings += check_inventory(loaded, store, w.records, w.options)  # same machines?
    if w.options.refresh:
        w.observed = observe(live, w.records, w.desired.steps, w.findings)  # facts, drift
    holder = live_holder(store, loaded.profile.metadata.name, w.records)
    if holder is not None:
        w.findings.append(Finding("state lease", FindingStatus.WARN,
                                  f"a run holds the lease ({holder.describe()}): its steps "
                                  "in progress are not interrupted; apply waits or fails",
                                  "state"))
    w.planned = diff(w.desired, w.records, w.observed, w.options.mode, holder)
    w.planned = select(w.planned, w.options.targets, w.options.excludes,
                       strict_excludes=w.options.strict_excludes)
    w.planned = order(w.planned, w.desired)
    for d in live.values():
        d.close()
    return _plan_value(w, store)


# -- transformations -------------------------------------------------------------------
def check_acyclic(desired: Desired) -> None:
    """Order the desired steps; a cycle is reported with the components that form it."""
    try:
        desired.order = desired.graph.topological_order()
    except CycleError as err:
        comps: list[str] = []
        for sid in err.cycle:
            c = desired.steps[sid].component
            if c not in comps:
                comps.append(c)
        err.location = desired.locations.get(comps[0])
        err.hint = ("the `after:` entries of these components form a loop: "
                    + " -> ".join(comps) + "; remove one of them")
        raise


def check_hand_offs(loaded: Loaded, desired: Desired) -> None:
    """Every step reading what another publishes (``published:NAME``) comes after it."""
    drivers = drivers_used(desired.steps.values())
    problems = published.unordered_readers(
        desired.steps, lambda sid: desired.graph.ancestors([sid]),
        {name: driver_settings(loaded, name) for name in drivers})
    if problems:
        raise PlanError("hand-off out of order: " + "; ".join(problems),
                        hint="see profiles/AUTHORING.md, \"Handing a cluster to the next layer\"")


def follow_moved(records: dict[str, Record], loaded: Loaded,
                 findings: list[Finding]) -> dict[str, Record]:
    """Records under the ids the profile's ``moved:`` entries give them (nothing written:
    apply persists the moves), with a finding naming each."""
    if not loaded.profile.moved:
        return records
    from orchestrator.errors import SourceError
    from orchestrator.state.move import MoveError, moved_view
    try:
        view, pairs = moved_view(records, [(m.from_, m.to) for m in loaded.profile.moved])
    except MoveError as exc:
        entry = exc.fields.get("entry")
        if entry is None:
            raise
        raise SourceError(exc.fields["message"], hint=exc.hint,
                          location=loaded.profile_source.locate(("moved", entry))) from None
    for old, new in pairs:
        findings.append(Finding("moved", FindingStatus.INFO,
                                f"{old} is now {new} (recorded on apply; no destroy, no "
                                "create)", "moved"))
    return view


def inventory_name(loaded: Loaded) -> str:
    return loaded.inventory.metadata.name if loaded.inventory is not None else ""


def inventory_key(profile: str) -> str:
    """The ``orch_meta`` key under which a state keeps the inventory its profile was
    applied with (set at apply, by :func:`record_inventory`)."""
    return f"inventory:{profile}"


def record_inventory(store: StateStore, plan: Plan) -> None:
    store.set_meta(inventory_key(plan.profile), plan.inventory)


def check_inventory(loaded: Loaded, store: StateStore, records: Mapping[str, Record],
                    options: PlanOptions) -> list[Finding]:
    """A state built with inventory ``staging`` must not be planned as in-place updates of
    ``prod``: refused unless allowed, and then said loudly in the plan."""
    profile = loaded.profile.metadata.name
    built_with = store.meta(inventory_key(profile))
    now = inventory_name(loaded)
    if not records or built_with is None or built_with == now:
        return []
    what = (f"the state {store.url} was built for {profile!r} with inventory "
            f"{built_with or '(none)'!r}; this plan uses {now or '(none)'!r}")
    if not options.allow_inventory_change:
        raise PlanError(f"{what}: its {len(records)} recorded step(s) would be planned as "
                        "changes to the other inventory's machines",
                        hint="use the state of that inventory (default: PROFILE.INVENTORY"
                             ".orch.db, or --state), or pass --allow-inventory-change if "
                             "the same machines are now described by this inventory")
    return [Finding("inventory changed", FindingStatus.WARN,
                    f"{what} (--allow-inventory-change)")]


def drivers_used(steps: Iterable[Step]) -> list[str]:
    return sorted({s.driver for s in steps if s.driver != EXTERNAL})


def driver_settings(loaded: Loaded, name: str) -> dict[str, Any]:
    merged = dict(loaded.profile.drivers.get(name, {}))
    if loaded.inventory is not None:
        merged.update(loaded.inventory.drivers.get(name, {}))
    return merged


def instantiate_drivers(loaded: Loaded, names: Sequence[str],
                        registry: DriverRegistry) -> dict[str, Driver]:
    """Validate each used driver's settings against what the driver declares, and create
    it (no connection is made). A bad setting is reported where it was written."""
    import msgspec

    from orchestrator.source import non_finite, split_msgspec_error
    out: dict[str, Driver] = {}
    for name in names:
        try:
            cls = registry.load(name)
        except DriverLoadError as exc:
            where = _driver_written(loaded, name)
            if where is None:
                raise
            raise SourceError(f"unknown driver {name!r}" if "no such" in str(exc)
                              else str(exc), location=where, found=name,
                              hint=exc.hint or "`orch drivers` lists the drivers") from None
        raw, literals = guard(driver_settings(loaded, name))
        if literals:
            raise SourceErrors([literal_secret_error(_settings_source(loaded, name, lit[0])
                                                     .locate(("drivers", name, *lit)))
                                for lit in literals])
        try:
            settings = msgspec.convert(raw, cls.settings_type, strict=False)
        except msgspec.ValidationError as exc:
            message, sub = split_msgspec_error(str(exc))
            key = sub[0] if sub else None
            if "unknown field" in message:
                key = message.split("`")[1]
            smap = _settings_source(loaded, name, key)
            from orchestrator.driver import settings_description
            known = ", ".join(n for n, *_ in settings_description(cls.settings_type))
            raise SourceError(f"driver {name!r} setting: {message}",
                              location=smap.locate(("drivers", name, *([key] if key else []))),
                              expected=f"settings of {name}: {known}",
                              hint=f"`orch drivers` describes {name}'s settings") from None
        bad = non_finite(msgspec.to_builtins(settings))
        if bad is not None:
            raise SourceError(f"driver {name!r} setting {'.'.join(map(str, bad))} is not a "
                              "finite number",
                              location=_settings_source(loaded, name, bad[0])
                              .locate(("drivers", name, *bad)),
                              expected="a finite number of seconds (or a finite value)")
        out[name] = cls(settings)
    return out


def _driver_written(loaded: Loaded, name: str) -> Location | None:
    """Where a component names ``driver: NAME`` (None: a component type's own choice)."""
    for li, lay in enumerate(loaded.profile.layers):
        for ci, comp in enumerate(lay.components):
            if comp.driver == name:
                return loaded.profile_source.locate(("layers", li, "components", ci,
                                                     "driver"))
    return None


def _settings_source(loaded: Loaded, driver: str, key: object) -> SourceMap:
    """Where a driver setting was written: the inventory's value wins over the profile's."""
    inv = loaded.inventory
    if inv is not None and loaded.inventory_source is not None \
            and key in inv.drivers.get(driver, {}):
        return loaded.inventory_source
    return loaded.profile_source


#: seconds every driver together may take to answer planning's reads (facts, observed
#: state); a driver still busy then (an unreachable remote libvirt, a wedged BMC) is
#: reported and the plan goes on without what it would have said
OBSERVE_SECONDS = 90.0


def observe(live: Mapping[str, Driver], records: Mapping[str, Record],
            desired: Mapping[str, Step], findings: list[Finding],
            seconds: float | None = None) -> dict[str, tuple[bool, Mapping[str, str]]]:
    """Each driver's facts (e.g. "KVM usable?") and observed state for the records it
    can read, the drivers asked in parallel, all within ``seconds``. Findings come in
    driver-name order whatever finishes first, so the plan stays deterministic."""
    limit = OBSERVE_SECONDS if seconds is None else seconds
    steps_of: dict[str, list[Step]] = {}
    for s in desired.values():
        steps_of.setdefault(s.driver, []).append(s)
    to_read = applied_steps(records, desired)
    results: dict[str, tuple[list[Finding], dict[str, tuple[bool, Mapping[str, str]]]]] = {}

    def ask(name: str, driver: Driver) -> None:
        found = driver_facts(name, driver, steps_of.get(name, []))
        seen = read_observed(driver, to_read.get(name, []), found) if driver.can_read() \
            else {}
        results[name] = (found, seen)

    workers = [threading.Thread(target=ask, args=item, daemon=True, name=f"observe-{item[0]}")
               for item in live.items()]
    for t in workers:
        t.start()
    deadline = time.monotonic() + limit
    for t in workers:
        t.join(max(0.0, deadline - time.monotonic()))
    observed: dict[str, tuple[bool, Mapping[str, str]]] = {}
    for name in sorted(live):
        if name not in results:
            findings.append(Finding(f"{name} facts", FindingStatus.WARN,
                                    f"no answer within {limit:.0f} s: facts and observed state "
                                    "unknown (is its endpoint reachable?)", name))
            continue
        found, seen = results[name]
        findings.extend(found)
        observed.update(seen)
    return observed


def applied_steps(records: Mapping[str, Record],
                  desired: Mapping[str, Step]) -> dict[str, list[tuple[Step, Record]]]:
    """The applied records by driver, each with the step to read it through: the desired
    step when its fingerprint matches (the same inputs, no decoding), else the record's."""
    out: dict[str, list[tuple[Step, Record]]] = {}
    for sid, rec in records.items():
        if rec.status is not RecordStatus.APPLIED:
            continue
        want = desired.get(sid)
        step = want if want is not None and want.fingerprint() == rec.fingerprint \
            else rec.step
        out.setdefault(step.driver, []).append((step, rec))
    return out


def driver_facts(name: str, driver: Driver, steps: Sequence[Step]) -> list[Finding]:
    try:
        return list(driver.facts(steps))
    except OrchError as exc:
        return [Finding(f"{name} facts", FindingStatus.WARN, str(exc), name)]


def read_observed(driver: Driver, pairs: Sequence[tuple[Step, Record]],
                  findings: list[Finding]) -> dict[str, tuple[bool, Mapping[str, str]]]:
    """What ``driver`` finds for each applied record: (exists, drift)."""
    observed: dict[str, tuple[bool, Mapping[str, str]]] = {}
    for step, rec in pairs:
        try:
            obs = driver.read(step, rec.outputs)
        except OrchError as exc:
            findings.append(Finding(f"read {step.id}", FindingStatus.WARN,
                                    f"observed state unknown: {exc}", step.driver))
            continue
        observed[step.id] = (obs.exists, dict(obs.drift))
    return observed


def live_holder(store: StateStore, profile: str,
                records: Mapping[str, Record]) -> Holder | None:
    """Another live run holding the profile's lease, when some record is pending (only
    then does it change what the plan says)."""
    if not any(r.status is RecordStatus.PENDING for r in records.values()):
        return None
    holder = store.lock_holder(profile)
    me = Holder.me()
    if holder is None or (holder.host, holder.pid) == (me.host, me.pid):
        return None
    return holder if holder.alive_here() else None


def _pending_reason(rec: Record, holder: Holder | None) -> str:
    if holder is not None:
        return (f"in progress in run {rec.run_id} ({holder.describe()} holds the lease): "
                f"{rec.pending_action} started, outcome not recorded yet")
    return (f"interrupted in run {rec.run_id}: {rec.pending_action} was started, its outcome "
            "was never recorded")


def diff(desired: Desired, records: Mapping[str, Record],
         observed: Mapping[str, tuple[bool, Mapping[str, str]]], mode: Mode,
         holder: Holder | None = None) -> list[PlannedStep]:
    """Each desired step's action against its record; records no longer desired are deleted.
    ``holder``: a live run holding the lease (pending records are its steps in progress)."""
    out: list[PlannedStep] = []
    if mode is Mode.DESTROY:
        return [PlannedStep(r.step, Action.DELETE,
                            _pending_reason(r, holder) if r.status is RecordStatus.PENDING
                            else "destroy: recorded by orch")
                for r in records.values()]
    for sid, step in desired.steps.items():
        out.append(_diff_one(step, records.get(sid), observed.get(sid), holder))
    for sid, rec in records.items():
        if sid not in desired.steps:
            out.append(PlannedStep(rec.step, Action.DELETE, "no longer in the profile"))
    return out


def _diff_one(step: Step, rec: Record | None,
              obs: tuple[bool, Mapping[str, str]] | None,
              holder: Holder | None = None) -> PlannedStep:
    if rec is None:
        return PlannedStep(step, Action.CREATE, "not in state")
    never_applied = not rec.fingerprint
    if rec.status is RecordStatus.PENDING:
        # An interrupted delete (or create) may have left anything from nothing to all of
        # it: create again (drivers' create is idempotent), never update in place.
        if never_applied or rec.pending_action in ("create", "delete"):
            action = Action.CREATE
        elif rec.pending_action == "replace":
            action = Action.REPLACE
        else:
            action = _update_or_replace(step, rec)[0]
        return PlannedStep(step, action, _pending_reason(rec, holder))
    if rec.status is RecordStatus.FAILED:
        action = Action.CREATE if never_applied else _update_or_replace(step, rec)[0]
        return PlannedStep(step, action, f"failed in run {rec.run_id}: {_short(rec.error)}")
    if obs is not None and not obs[0]:
        return PlannedStep(step, Action.CREATE, "drift: recorded, but the driver no longer "
                           "finds it")
    if rec.fingerprint == step.fingerprint():
        if obs is not None and obs[1]:
            drift = "; ".join(f"{k}: {v}" for k, v in sorted(obs[1].items()))
            return PlannedStep(step, Action.UPDATE, f"drift: {drift}")
        return PlannedStep(step, Action.NOOP, "up to date")
    action, changes = _update_or_replace(step, rec)
    keys = ", ".join(c.key for c in changes) or "kind or driver"
    verb = "forces replacement" if action is Action.REPLACE else "changed"
    return PlannedStep(step, action, f"{keys} {verb}", tuple(changes))


def _update_or_replace(step: Step, rec: Record) -> tuple[Action, list[Change]]:
    changes = _changes(rec.step.inputs, step.inputs)
    if rec.step.kind != step.kind or rec.step.driver != step.driver:
        return Action.REPLACE, changes
    forced = {k.split(".")[0] for k in step.replace_on}
    if any(c.key.split(".")[0] in forced for c in changes):
        return Action.REPLACE, changes
    return Action.UPDATE, changes


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value and not is_ref_value(value):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def _changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    a, b = _flatten(dict(before)), _flatten(dict(after))
    return [Change(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k)]


def _short(text: str, limit: int = 160) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "no error recorded"
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _graph(planned: Sequence[PlannedStep]) -> Graph[str]:
    g: Graph[str] = Graph()
    ids = {p.step.id for p in planned}
    for p in planned:
        g.add_node(p.step.id)
    for p in planned:
        for d in p.step.depends_on:
            if d in ids:
                g.add_edge(d, p.step.id)
    return g


def _match(sid: str, step: Step, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(sid, pat) or fnmatch.fnmatchcase(step.component, pat)
               or (step.node is not None and fnmatch.fnmatchcase(step.node, pat))
               for pat in patterns)


def _matches_nothing(option: str, patterns: Sequence[str],
                     planned: Sequence[PlannedStep]) -> PlanError:
    from orchestrator.suggest import close_matches
    names = {p.step.id for p in planned} | {p.step.component for p in planned} \
        | {p.step.node for p in planned if p.step.node}
    near = [m for pat in patterns for m in close_matches(pat, names, n=1)]
    hint = "`orch plan` lists step ids; globs like 'pve-1/*' work"
    if near:
        hint = "did you mean " + " or ".join(repr(m) for m in dict.fromkeys(near)) + "? " \
            + hint
    return PlanError(f"{option} {' '.join(patterns)} matches no step", hint=hint)


def select(planned: list[PlannedStep], targets: Sequence[str],
           excludes: Sequence[str], *, strict_excludes: bool = False) -> list[PlannedStep]:
    """``--target`` keeps matches and what they need; ``--exclude`` drops matches and what
    needs them. Patterns match step ids, component names or node names (globs allowed)."""
    if not targets and not excludes:
        return planned
    g = _graph(planned)
    keep = {p.step.id for p in planned}
    if targets:
        hit = {p.step.id for p in planned if _match(p.step.id, p.step, targets)}
        if not hit:
            raise _matches_nothing("--target", targets, planned)
        keep = hit | g.ancestors(hit)
    if excludes:
        hit = {p.step.id for p in planned if _match(p.step.id, p.step, excludes)}
        if not hit and strict_excludes:  # as --target: selecting nothing is a typo
            raise _matches_nothing("--exclude", excludes, planned)
        keep -= hit | g.descendants(hit)
    return [p for p in planned if p.step.id in keep]


def order(planned: list[PlannedStep], desired: Desired) -> list[PlannedStep]:
    """Runbook order: dependencies first, ties by layer and component order; deletes last,
    in reverse dependency order."""
    creates = [p for p in planned if p.action is not Action.DELETE]
    deletes = [p for p in planned if p.action is Action.DELETE]
    by_id = {p.step.id: p for p in creates}
    if desired.order:  # the desired order, restricted to what was selected
        ordered = [by_id[sid] for sid in desired.order if sid in by_id]
    else:
        ordered = [by_id[sid] for sid in _graph(creates).topological_order()]
    dg = _graph(deletes).reversed()
    dby = {p.step.id: p for p in deletes}
    ordered += [dby[sid] for sid in dg.topological_order()]
    return ordered


# -- the value -------------------------------------------------------------------------
def inputs_hash(loaded: Loaded) -> str:
    h = hashlib.sha256()
    h.update(loaded.profile_text_hash.encode())
    h.update(loaded.inventory_text_hash.encode())
    h.update(json.dumps(loaded.parameters, sort_keys=True).encode())
    return h.hexdigest()


def _plan_value(w: _Work, store: StateStore) -> Plan:
    loaded = w.loaded
    meta = loaded.profile.metadata
    return Plan(
        profile=meta.name, title=meta.title, mode=w.options.mode, steps=tuple(w.planned),
        profile_path=loaded.profile_path, inventory_path=loaded.inventory_path,
        inputs_hash=inputs_hash(loaded), state_hash=store.state_hash(meta.name, w.records),
        state_url=store.url, parameters=dict(loaded.parameters),
        state_id=store.state_id, inventory=inventory_name(loaded),
        findings=tuple(w.findings),
        layers=tuple(w.desired.layers if w.desired else ()),
        driver_settings={name: guard(driver_settings(loaded, name))[0]
                         for name in drivers_used(p.step for p in w.planned)},
        targets=tuple(w.options.targets), excludes=tuple(w.options.excludes),
        orch_version=orch_version(), created_at=now_iso(),
    )
