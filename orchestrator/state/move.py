"""Renaming records: ``orch state mv``, after Terraform's ``state mv`` and ``moved`` blocks.

A step's id comes from its node, component and item (``pve-1/ceph.osd[sdb]``). Renaming a
component in a profile changes the ids of its steps; without a move, the next plan would
delete the recorded objects and create them again. A move rewrites the records under their
new ids in one transaction of the store's journal, keeping each record's fingerprint and
outputs (both follow from what the driver did, not from the id), so the next plan finds
them up to date. The journal keeps the trail: ``move`` intent and outcome for the new id,
and a ``delete`` outcome for the old one (it only forgets the record; no driver runs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from orchestrator.errors import OrchError
from orchestrator.state.base import Holder, JournalEntry, Record, RecordStatus, StateStore
from orchestrator.suggest import hint_with


class MoveError(OrchError):
    """A move that names nothing, or would overwrite or lose a record; nothing moved."""


def _renamed(record_id: str, component: str, old: str, new: str) -> str | None:
    """The id of a step of component ``old`` once the component is called ``new``."""
    if component != old:
        return None
    node, sep, rest = record_id.partition("/")
    if sep and rest.startswith(old):
        return f"{node}/{new}{rest[len(old):]}"
    if record_id.startswith(old):
        return new + record_id[len(old):]
    return None


def _candidates(records: Mapping[str, Record], old: str, new: str) -> list[tuple[str, str]]:
    if old in records:
        return [(old, new)]
    return [(sid, nid) for sid, rec in records.items()
            if (nid := _renamed(sid, rec.step.component, old, new)) is not None]


def moves(records: Mapping[str, Record], old: str, new: str) -> list[tuple[str, str]]:
    """(old id, new id) pairs: ``old`` is a recorded step id, or else a component name."""
    if old == new:
        raise MoveError(f"{old}: source and destination are the same")
    pairs = _candidates(records, old, new)
    if not pairs:
        components = {rec.step.component for rec in records.values()}
        raise MoveError(f"{old} is neither a recorded step id nor a recorded component; "
                        "nothing was moved",
                        hint=hint_with(old, [*records, *components],
                                       "`orch state list PROFILE` lists records"))
    taken = [nid for _, nid in pairs if nid in records]
    if taken:
        raise MoveError(f"{', '.join(taken)} already recorded; nothing was moved",
                        hint="`orch state rm` the stale record first if it is gone")
    unfinished = [sid for sid, _ in pairs if records[sid].status is not RecordStatus.APPLIED]
    if unfinished:
        raise MoveError(f"{', '.join(unfinished)} not applied (pending or failed); nothing "
                        "was moved", hint="finish or forget it first (`orch apply`, "
                                          "`orch state rm`)")
    return pairs


def moved_view(records: Mapping[str, Record], entries: Sequence[tuple[str, str]]
               ) -> tuple[dict[str, Record], list[tuple[str, str]]]:
    """The records as a profile's ``moved:`` entries rename them (nothing is written), and
    the (recorded id, new id) pairs that differ. Entries already carried out match nothing
    and are skipped; chained entries (a → b, b → c) compose."""
    view = dict(records)
    origin: dict[str, str] = {}
    for index, (old, new) in enumerate(entries):
        pairs = [(s, n) for s, n in _candidates(view, old, new)
                 if view[s].status is RecordStatus.APPLIED and s != n]
        clash = [n for _, n in pairs if n in view]
        if clash:
            raise MoveError(f"moved: {old} -> {new}: {', '.join(clash)} is recorded too",
                            hint="the object exists under both ids: `orch state rm` the "
                                 "stale one, or drop the moved entry", entry=index)
        for s, n in pairs:
            rec = view.pop(s)
            view[n] = Record(_moved_step(rec, s, n), rec.status, rec.fingerprint,
                             dict(rec.outputs), rec.pending_action, rec.run_id,
                             rec.updated_at, rec.error)
            origin[n] = origin.pop(s, s)
    return view, sorted((o, n) for n, o in origin.items() if o != n)


def persist_moved(store: StateStore, profile: str,
                  entries: Sequence[tuple[str, str]]) -> str | None:
    """Write what ``moved:`` renames (the caller holds the lock); the run id, or None."""
    if not entries:
        return None
    records = store.records(profile)
    _, pairs = moved_view(records, entries)
    return write_moves(store, profile, records, pairs) if pairs else None


def _moved_step(rec: Record, old: str, new: str) -> Any:
    before = rec.step
    return msgspec.structs.replace(
        before, id=new, component=_component_after(old, new, before.component))


def write_moves(store: StateStore, profile: str, records: Mapping[str, Record],
                pairs: Sequence[tuple[str, str]]) -> str:
    """Rewrite the records (the caller holds the profile's lock); return the run id."""
    run = store.begin_run(profile, "state-mv", Holder.me())
    entries: list[JournalEntry] = []
    for old, new in pairs:
        rec = records[old]
        before, after = rec.step, _moved_step(rec, old, new)
        entries += [JournalEntry(run, after, "intent", "move"),
                    JournalEntry(run, after, "outcome", "move", "succeeded",
                                 dict(rec.outputs)),
                    JournalEntry(run, before, "outcome", "delete", "succeeded")]
    try:
        store.write(entries, profile)
    except Exception:
        store.finish_run(run, "failed")
        raise
    store.finish_run(run, "succeeded")
    return run


def _component_after(old_id: str, new_id: str, component: str) -> str:
    """The component name inside ``new_id`` where ``component`` stood in ``old_id``."""
    _, o_sep, o_rest = old_id.partition("/")
    _, n_sep, n_rest = new_id.partition("/")
    o_rest, n_rest = (o_rest, n_rest) if o_sep and n_sep else (old_id, new_id)
    if not o_rest.startswith(component):
        return component
    tail = o_rest[len(component):]
    if tail and n_rest.endswith(tail):
        return n_rest[: len(n_rest) - len(tail)] or component
    return n_rest if not tail else component
