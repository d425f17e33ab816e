"""The journal, the plan check and the planner under faults (in-process; the real
processes are in tests/faults)."""

from __future__ import annotations

import msgspec
import pytest

from orchestrator.driver import DriverRegistry
from orchestrator.errors import PlanError, StateError
from orchestrator.executor import ExecOptions, Executor, StepStatus
from orchestrator.loader import load
from orchestrator.plan import Action, Mode, Plan
from orchestrator.planner import PlanOptions, make_plan
from orchestrator.state import Holder, JournalEntry, open_store
from orchestrator.state.base import StoreBusyError
from tests.engine.helpers import fake, write_profile


@pytest.fixture
def store(tmp_path):
    s = open_store(str(tmp_path / "state.db"))
    yield s
    s.close()


def plan_of(path, store, **kw):
    return make_plan(load(path), store, PlanOptions(**kw))


def test_a_failed_journal_write_fails_the_run_and_nothing_after_it_commits(tmp_path, store,
                                                                          monkeypatch):
    """The batch holding b's outcome fails (the store stays busy); b is not reported done,
    c (after b) never starts, no later entry commits, the run fails."""
    path = write_profile(tmp_path, [fake("a"), fake("b", after=["a"]),
                                    fake("c", after=["b"])], roles={})
    plan = plan_of(path, store)
    real = store.write
    seen: list[list[str]] = []

    def flaky(entries, profile, holder=None):
        seen.append([f"{e.step.id}:{e.phase}" for e in entries])
        if any(e.step.id == "b" and e.phase == "outcome" for e in entries):
            raise StoreBusyError("state is locked by another process writing to it")
        return real(entries, profile, holder)

    monkeypatch.setattr(store, "write", flaky)
    with pytest.raises(StateError) as err:
        Executor(plan, store, DriverRegistry(), ExecOptions(journal_retry=0.3)).run()
    assert "journal write failed" in str(err.value)
    report = err.value.report
    assert not report.ok
    assert report.outcomes["b"].status is StepStatus.INTERRUPTED
    assert report.outcomes["c"].status is StepStatus.SKIPPED
    recs = store.records("t")
    assert recs["a"].status.value == "applied"
    assert recs["b"].status.value == "pending"  # shown as interrupted by the next plan
    assert "c" not in recs
    assert store.journal("t", "c") == []  # nothing after the failed entry committed
    assert any("b:outcome" in batch for batch in seen)
    assert store.runs("t")[0].status == "failed"


def test_a_busy_store_is_retried_until_the_write_commits(tmp_path, store, monkeypatch):
    path = write_profile(tmp_path, [fake("a"), fake("b", after=["a"])], roles={})
    plan = plan_of(path, store)
    real = store.write
    fails = [2]

    def busy_twice(entries, profile, holder=None):
        if fails[0]:
            fails[0] -= 1
            raise StoreBusyError("locked")
        return real(entries, profile, holder)

    monkeypatch.setattr(store, "write", busy_twice)
    report = Executor(plan, store, DriverRegistry(), ExecOptions()).run()
    assert report.ok
    assert all(r.status.value == "applied" for r in store.records("t").values())


def hand_edit(plan: Plan, edit) -> Plan:
    doc = msgspec.json.decode(plan.to_json())
    edit(doc)
    return Plan.from_json(msgspec.json.encode(doc).decode(), "edited.json")


def test_a_hand_edited_plan_with_a_cycle_or_a_duplicate_id_is_refused(tmp_path, store):
    path = write_profile(tmp_path, [fake("a"), fake("b", after=["a"])], roles={})
    plan = plan_of(path, store)

    def cycle(doc):
        for s in doc["steps"]:
            if s["id"] == "a":
                s["depends_on"] = ["b"]

    def dup(doc):
        doc["steps"].append(dict(doc["steps"][0]))

    with pytest.raises(PlanError, match=r"cycle: (a -> b -> a|b -> a -> b)"):
        Executor(hand_edit(plan, cycle), store, DriverRegistry()).run()
    with pytest.raises(PlanError, match="lists step 'a' more than once"):
        Executor(hand_edit(plan, dup), store, DriverRegistry()).run()
    assert store.runs("t") == []


def test_an_interrupted_delete_is_created_again_never_updated(tmp_path, store):
    path = write_profile(tmp_path, [fake("a", value=1)], roles={})
    assert Executor(plan_of(path, store), store, DriverRegistry()).run().ok
    rec = store.records("t")["a"]
    store.write([JournalEntry("r-destroy", rec.step, "intent", "delete")], "t")
    destroy = plan_of(path, store, mode=Mode.DESTROY)
    assert "interrupted in run r-destroy: delete was started" in destroy.steps[0].reason
    normal = plan_of(path, store)
    (p,) = [p for p in normal if p.step.id == "a"]
    assert p.action is Action.CREATE and "interrupted in run r-destroy" in p.reason


def test_a_plan_during_a_live_run_says_it_is_in_progress(tmp_path, store):
    import subprocess
    import sys
    import time
    path = write_profile(tmp_path, [fake("a")], roles={})
    rec_step = plan_of(path, store).steps[0].step
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        import socket
        assert store.try_lock("t", Holder(socket.gethostname(), live.pid, time.time())) is None
        store.write([JournalEntry("r-live", rec_step, "intent", "create")], "t")
        p = plan_of(path, store).steps[0]
        assert p.reason.startswith("in progress in run r-live") and "holds the lease" in \
            p.reason
    finally:
        live.kill()
        live.wait()
    assert "interrupted in run r-live" in plan_of(path, store).steps[0].reason


def test_a_killed_run_is_marked_aborted_by_the_next(tmp_path, store):
    me = Holder.me()
    old = store.begin_run("t", "normal", me)
    store.begin_run("t", "normal", me)
    runs = {r.run_id: r for r in store.runs("t")}
    assert runs[old].status == "aborted" and runs[old].finished_at
