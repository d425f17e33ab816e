"""Renaming records (``state mv``, ``moved:``) against both state backends."""

from __future__ import annotations

import pytest

from orchestrator.state import Holder, JournalEntry, RecordStatus, open_store
from orchestrator.state.move import MoveError, moved_view, moves, persist_moved, write_moves
from orchestrator.step import Step


def _step(sid: str, component: str, node: str | None = None, value: int = 1) -> Step:
    return Step(sid, "fake.step", "fake", component, "l1", inputs={"value": value}, node=node)


STEPS = [_step("n1/cni", "cni", "n1"), _step("n2/cni", "cni", "n2", 2), _step("app", "app")]


def _applied(state_url: str):
    store = open_store(state_url)
    run = store.begin_run("p", "normal", Holder.me())
    store.write([e for s in STEPS for e in (
        JournalEntry(run, s, "intent", "create"),
        JournalEntry(run, s, "outcome", "create", "succeeded", {"id": s.id}))], "p")
    store.finish_run(run, "succeeded")
    return store


def test_a_component_move_keeps_fingerprints_outputs_and_the_state_hash(state_url):
    store = _applied(state_url)
    before = store.records("p")
    view, pairs = moved_view(before, [("cni", "network")])
    assert pairs == [("n1/cni", "n1/network"), ("n2/cni", "n2/network")]
    assert store.records("p") == before  # a view writes nothing
    with store.locked("p", Holder.me()):
        run = write_moves(store, "p", before, moves(before, "cni", "network"))
    after = store.records("p")
    assert sorted(after) == ["app", "n1/network", "n2/network"]
    moved = after["n2/network"]
    assert moved.status is RecordStatus.APPLIED and moved.outputs == {"id": "n2/cni"}
    assert moved.fingerprint == before["n2/cni"].fingerprint
    assert moved.step.component == "network" and moved.step.node == "n2"
    # what planning saw through the view is what state now holds: a saved plan stays valid
    assert store.state_hash("p") == store.state_hash("p", view)
    assert store.runs("p")[0].mode == "state-mv" and run
    assert persist_moved(store, "p", [("cni", "network")]) is None  # already carried out
    store.close()


def test_moves_refuse_clashes_unknown_names_and_unfinished_records(state_url):
    store = _applied(state_url)
    recs = store.records("p")
    with pytest.raises(MoveError, match="already recorded"):
        moves(recs, "n1/cni", "app")
    with pytest.raises(MoveError, match="neither a recorded step id") as err:
        moves(recs, "cnii", "x")
    assert err.value.hint.startswith("did you mean 'cni'?")
    with pytest.raises(MoveError, match="is recorded too"):
        moved_view(recs, [("app", "n1/cni")])
    run = store.begin_run("p", "normal", Holder.me())
    store.write([JournalEntry(run, STEPS[2], "intent", "update")], "p")  # app now pending
    with pytest.raises(MoveError, match="not applied"):
        moves(store.records("p"), "app", "web")
    store.close()


def test_chained_moved_entries_compose(state_url):
    store = _applied(state_url)
    view, pairs = moved_view(store.records("p"), [("app", "web"), ("web", "frontend")])
    assert pairs == [("app", "frontend")] and "frontend" in view and "web" not in view
    with store.locked("p", Holder.me()):
        persist_moved(store, "p", [("app", "web"), ("web", "frontend")])
    assert sorted(store.records("p")) == ["frontend", "n1/cni", "n2/cni"]
    store.close()
