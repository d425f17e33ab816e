"""The state store contract, run against both backends."""

import os
import socket
import threading
import time

import pytest

from orchestrator.errors import LockHeldError
from orchestrator.state import Holder, JournalEntry, RecordStatus, open_store
from orchestrator.step import Step

STEP = Step("pve-1/ceph.osd[sdb]", "fake.step", "fake", "ceph.osd", "storage",
            inputs={"device": "/dev/sdb"})


def test_intent_then_outcome_moves_a_record_from_pending_to_applied(state_url):
    store = open_store(state_url)
    run = store.begin_run("p", "normal", Holder.me())
    store.write([JournalEntry(run, STEP, "intent", "create")], "p")
    rec = store.records("p")[STEP.id]
    assert rec.status is RecordStatus.PENDING and rec.pending_action == "create"
    assert rec.fingerprint == ""  # nothing applied yet
    store.write([JournalEntry(run, STEP, "outcome", "create", "succeeded", {"osd": 3})], "p")
    rec = store.records("p")[STEP.id]
    assert rec.status is RecordStatus.APPLIED and rec.outputs == {"osd": 3}
    assert rec.fingerprint == STEP.fingerprint() and rec.step == STEP
    phases = [(j["phase"], j["result"]) for j in store.journal("p")]
    assert phases == [("intent", ""), ("outcome", "succeeded")]
    store.finish_run(run, "succeeded")
    assert store.runs("p")[0].status == "succeeded"
    store.close()


def test_a_failed_update_keeps_the_previous_fingerprint_and_outputs(state_url):
    store = open_store(state_url)
    run = store.begin_run("p", "normal", Holder.me())
    store.write([JournalEntry(run, STEP, "intent", "create"),
                 JournalEntry(run, STEP, "outcome", "create", "succeeded", {"osd": 3})], "p")
    store.write([JournalEntry(run, STEP, "intent", "update"),
                 JournalEntry(run, STEP, "outcome", "update", "failed", error="boom")], "p")
    rec = store.records("p")[STEP.id]
    assert rec.status is RecordStatus.FAILED and rec.error == "boom"
    assert rec.outputs == {"osd": 3} and rec.fingerprint == STEP.fingerprint()
    store.close()


def test_a_successful_delete_removes_the_record_and_the_hash_follows(state_url):
    store = open_store(state_url)
    empty = store.state_hash("p")
    run = store.begin_run("p", "normal", Holder.me())
    store.write([JournalEntry(run, STEP, "intent", "create"),
                 JournalEntry(run, STEP, "outcome", "create", "succeeded")], "p")
    assert store.state_hash("p") != empty
    store.write([JournalEntry(run, STEP, "intent", "delete"),
                 JournalEntry(run, STEP, "outcome", "delete", "succeeded")], "p")
    assert store.records("p") == {} and store.state_hash("p") == empty
    store.close()


def test_profiles_are_kept_apart(state_url):
    store = open_store(state_url)
    run = store.begin_run("a", "normal", Holder.me())
    store.write([JournalEntry(run, STEP, "intent", "create")], "a")
    assert store.records("b") == {} and list(store.records("a")) == [STEP.id]
    store.close()


def test_the_lease_is_exclusive_and_renewable(state_url):
    a = open_store(state_url)
    b = open_store(state_url)
    me = Holder.me("r1")
    other = Holder(socket.gethostname(), os.getppid(), time.time(), "r2")  # a live process
    assert a.try_lock("p", me) is None
    held = b.try_lock("p", other)
    assert held is not None and held.pid == os.getpid()
    assert a.renew_lock("p", me)
    a.unlock("p", me)
    assert b.try_lock("p", other) is None
    b.unlock("p", other)
    a.close()
    b.close()


def test_concurrent_lock_attempts_admit_exactly_one(state_url):
    import subprocess
    sleepers = [subprocess.Popen(["sleep", "60"]) for _ in range(6)]  # six live holders
    try:
        stores = [open_store(state_url) for _ in range(6)]
        holders = [Holder(socket.gethostname(), p.pid, time.time(), f"r{i}")
                   for i, p in enumerate(sleepers)]
        results: dict[int, object] = {}
        barrier = threading.Barrier(6)

        def attempt(i: int) -> None:
            barrier.wait()
            results[i] = stores[i].try_lock("p", holders[i])

        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [i for i, r in results.items() if r is None]
        assert len(winners) == 1
        losers_saw = {results[i].pid for i in results if i not in winners}
        assert losers_saw == {holders[winners[0]].pid}
        for s in stores:
            s.close()
    finally:
        for p in sleepers:
            p.kill()
            p.wait()


def test_locked_context_waits_then_fails_naming_the_holder(state_url):
    a, b = open_store(state_url), open_store(state_url)
    other = Holder(socket.gethostname(), os.getppid(), time.time(), "r-other")
    assert a.try_lock("p", other) is None
    t0 = time.monotonic()
    with pytest.raises(LockHeldError) as err, b.locked("p", Holder.me(), timeout=0.5, poll=0.1):
        pass
    assert 0.5 <= time.monotonic() - t0 < 3
    assert f"pid {os.getppid()}" in str(err.value) and "r-other" in str(err.value)
    a.close()
    b.close()
