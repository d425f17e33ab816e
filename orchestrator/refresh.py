"""Refresh-only: read what exists for every applied record and bring state in line with it,
changing nothing on the machines (Terraform's ``-refresh-only`` mode).

:func:`refresh` asks each driver that can read (:meth:`Driver.read`) about the records it
applied: an object that is gone, one that drifted (input keys whose observed value
differs), one whose outputs changed (a new address, a rotated certificate's fingerprint), or
nothing new. :func:`record` writes it into state in one journaled run: a record whose
object is gone is forgotten (the next plan creates it), changed outputs are stored. Drift
stays in the report: state records what orch asked for, and the next plan updates it back.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.components import builtin_registry
from orchestrator.driver import DriverRegistry
from orchestrator.errors import OrchError
from orchestrator.expand import expand
from orchestrator.loader import Loaded
from orchestrator.planner import applied_steps, instantiate_drivers
from orchestrator.state.base import Holder, JournalEntry, Record, StateStore
from orchestrator.step import EXTERNAL


class Seen(str, enum.Enum):
    GONE = "gone"
    DRIFT = "drift"
    OUTPUTS = "outputs"
    SAME = "unchanged"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Refreshed:
    step_id: str
    seen: Seen
    detail: str = ""
    #: the outputs to record (for OUTPUTS)
    outputs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def changes_state(self) -> bool:
        return self.seen in (Seen.GONE, Seen.OUTPUTS)


def refresh(loaded: Loaded, store: StateStore,
            drivers: DriverRegistry | None = None) -> list[Refreshed]:
    """What every applied record's driver finds now; reads only."""
    desired = expand(loaded, builtin_registry())
    records = store.records(loaded.profile.metadata.name)
    by_driver = applied_steps(records, desired.steps)
    names = sorted(n for n in by_driver if n != EXTERNAL)
    live = instantiate_drivers(loaded, names, drivers or DriverRegistry())
    out: list[Refreshed] = []
    try:
        for name in names:
            driver = live[name]
            for step, rec in by_driver[name]:
                if not driver.can_read():
                    out.append(Refreshed(step.id, Seen.UNKNOWN, f"driver {name} cannot read"))
                    continue
                out.append(_one(driver, step, rec))
    finally:
        for d in live.values():
            d.close()
    return sorted(out, key=lambda r: r.step_id)


def _one(driver: Any, step: Any, rec: Record) -> Refreshed:
    try:
        obs = driver.read(step, rec.outputs)
    except OrchError as exc:
        return Refreshed(step.id, Seen.UNKNOWN, f"cannot read: {exc}")
    if not obs.exists:
        return Refreshed(step.id, Seen.GONE, "the driver no longer finds it")
    if obs.drift:
        return Refreshed(step.id, Seen.DRIFT,
                         "; ".join(f"{k}: {v}" for k, v in sorted(obs.drift.items())))
    merged = {**rec.outputs, **obs.outputs}
    if merged != dict(rec.outputs):
        keys = sorted(k for k in merged if rec.outputs.get(k) != merged[k])
        return Refreshed(step.id, Seen.OUTPUTS, "outputs changed: " + ", ".join(keys),
                         merged)
    return Refreshed(step.id, Seen.SAME)


def record(store: StateStore, profile: str, results: Sequence[Refreshed]) -> str | None:
    """Write what changes state (the caller holds the lock); the run id, or None."""
    todo = [r for r in results if r.changes_state]
    if not todo:
        return None
    records = store.records(profile)
    run = store.begin_run(profile, "refresh-only", Holder.me())
    entries = []
    for r in todo:
        rec = records.get(r.step_id)
        if rec is None:
            continue
        if r.seen is Seen.GONE:  # forgets the record; no driver runs
            entries.append(JournalEntry(run, rec.step, "outcome", "delete", "succeeded"))
        else:
            entries += [JournalEntry(run, rec.step, "intent", "refresh"),
                        JournalEntry(run, rec.step, "outcome", "refresh", "succeeded",
                                     dict(r.outputs))]
    store.write(entries, profile)
    store.finish_run(run, "succeeded")
    return run


__all__ = ["Holder", "Refreshed", "Seen", "record", "refresh"]
