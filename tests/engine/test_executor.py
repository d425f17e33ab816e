"""The executor: limits, retries, failure isolation, external steps, saved plans."""

import json
import os
import subprocess
import sys
import time

import pytest

from orchestrator.driver import ApplyRequest, ApplyResult, Driver, DriverRegistry
from orchestrator.errors import LockHeldError, PermanentError, StalePlanError, TransientError
from orchestrator.executor import ExecOptions, Executor, StepStatus
from orchestrator.loader import load
from orchestrator.plan import Action, Plan
from orchestrator.planner import PlanOptions, make_plan
from orchestrator.retry import RetryPolicy
from orchestrator.state import Holder, open_store
from tests.engine.helpers import fake, write_profile


@pytest.fixture
def store(tmp_path):
    s = open_store(str(tmp_path / "state.db"))
    yield s
    s.close()


def run(plan, store, **opts):
    opts.setdefault("sleep", lambda s: None)
    return Executor(plan, store, DriverRegistry(), ExecOptions(**opts)).run()


def plan_of(path, store, **kw):
    return make_plan(load(path), store, PlanOptions(**kw))


def test_parallelism_and_per_endpoint_limits_are_both_honoured(tmp_path, store):
    track = tmp_path / "fake.json"
    comps = [fake(f"s{i}", duration=0.15, track=True, endpoint=f"bmc-{i % 2}")
             for i in range(12)]
    path = write_profile(tmp_path, comps, drivers={"fake": {"store": str(track),
                                                            "endpoint_limit": 2}})
    report = run(plan_of(path, store), store, parallelism=3)
    data = json.loads(track.read_text())
    assert report.ok
    assert max(data["peak"].values()) == 2          # no endpoint ever saw 3 at once
    assert data["peak_total"] == 3                   # never more than 3 overall, and 3 ran


def test_transient_errors_are_retried_permanent_are_not(tmp_path, store):
    sleeps = []
    path = write_profile(tmp_path, [fake("flaky", fail="transient:2"),
                                    fake("broken", fail="permanent"),
                                    fake("hopeless", fail="transient:99")],
                         drivers={"fake": {"store": str(tmp_path / "f.json")}})
    report = run(plan_of(path, store), store, sleep=sleeps.append,
                 retry=RetryPolicy(attempts=4, total_seconds=60, initial_wait=0.5))
    o = report.outcomes
    assert o["flaky"].status is StepStatus.SUCCEEDED and o["flaky"].attempts == 3
    assert o["broken"].status is StepStatus.FAILED and o["broken"].attempts == 1
    assert o["hopeless"].status is StepStatus.FAILED and o["hopeless"].attempts == 4
    assert "simulated transient failure (attempt 4)" in o["hopeless"].error
    assert len(sleeps) == 2 + 3 and all(0 <= s <= 30 for s in sleeps)
    # Exponential: hopeless's third wait is at least 0.5 * 2**2 = 2 s, which a constant
    # schedule (at most 0.5 + 1 s of jitter) never reaches. The two steps retry at the same
    # time, so the order of their waits in `sleeps` says nothing.
    assert max(sleeps) >= 2.0
    assert sum(1 for s in sleeps if s < 2.0) >= 4  # first and second waits stay below


def test_a_failure_skips_dependents_and_independent_branches_go_on(tmp_path, store):
    path = write_profile(tmp_path, [fake("bad", fail="permanent"),
                                    fake("child", after=["bad"]),
                                    fake("grandchild", after=["child"]),
                                    fake("other"), fake("other.next", after=["other"])])
    report = run(plan_of(path, store), store)
    o = report.outcomes
    assert o["other.next"].status is StepStatus.SUCCEEDED
    assert o["child"].status is StepStatus.SKIPPED and o["child"].root_cause == "bad"
    assert o["grandchild"].root_cause == "bad"  # the root cause, not the cascade
    assert [c.step_id for c in report.root_causes()] == ["bad"]
    recs = store.records("t")
    assert recs["bad"].status.value == "failed" and "permanent" in recs["bad"].error
    assert "child" not in recs


def test_external_steps_stop_the_walk_before_them(tmp_path, store):
    path = write_profile(tmp_path, [
        fake("prep"),
        {"name": "vcenter.register", "type": "external", "after": ["prep"],
         "reason": "vCenter has no API we drive: register the host in vCenter by hand"},
        fake("after-vcenter", after=["vcenter.register"]), fake("independent")])
    report = run(plan_of(path, store), store)
    o = report.outcomes
    assert o["prep"].status is StepStatus.SUCCEEDED
    assert o["vcenter.register"].status is StepStatus.STOPPED
    assert "register the host in vCenter by hand" in o["vcenter.register"].error
    assert o["after-vcenter"].status is StepStatus.SKIPPED
    assert o["independent"].status is StepStatus.SUCCEEDED
    assert "vcenter.register" not in store.records("t")  # never journaled as done


def test_saved_plan_is_applied_exactly_and_a_stale_one_is_refused(tmp_path, store):
    path = write_profile(tmp_path, [fake("a"), fake("b", after=["a"])])
    saved = plan_of(path, store).to_json()
    # the profile changes after review: the saved plan still applies what was reviewed
    write_profile(tmp_path, [fake("a"), fake("b", after=["a"]), fake("c")])
    plan = Plan.from_json(saved)
    report = run(plan, store)
    assert sorted(report.outcomes) == ["a", "b"]
    with pytest.raises(StalePlanError):
        run(Plan.from_json(saved), store)


def test_lock_held_by_another_live_run_fails_fast_naming_the_holder(tmp_path, store):
    import os
    import socket
    path = write_profile(tmp_path, [fake("a")])
    plan = plan_of(path, store)
    other = Holder(socket.gethostname(), os.getppid(), time.time(), "run-x")  # alive
    assert store.try_lock("t", other) is None
    t0 = time.monotonic()
    with pytest.raises(LockHeldError) as err:
        run(plan, store)
    assert f"pid {os.getppid()}" in str(err.value) and time.monotonic() - t0 < 2
    t0 = time.monotonic()
    with pytest.raises(LockHeldError):
        run(plan, store, lock_timeout=0.6)
    assert time.monotonic() - t0 >= 0.6
    store.unlock("t", other)
    assert run(plan, store).ok


def test_a_dead_holders_lease_is_taken_over(tmp_path, store):
    import socket
    path = write_profile(tmp_path, [fake("a")])
    dead = Holder(socket.gethostname(), 2**22 + 12345, time.time(), "crashed")
    assert store.try_lock("t", dead) is None
    assert run(plan_of(path, store), store).ok


def test_a_run_that_loses_its_lease_starts_nothing_more(tmp_path, store, monkeypatch):
    """Another run (on another host, where expiry is all it can know) takes the lease over;
    the running step's driver finishes, but its outcome is not written over the new
    holder's lease (it stays pending: shown as interrupted), nothing after it starts, and
    the run ends with LeaseLostError."""
    import threading

    from orchestrator.errors import LeaseLostError
    monkeypatch.setattr(store, "lease_seconds", 0.3)  # renewed every 0.1 s
    path = write_profile(tmp_path, [fake("a", duration=0.8), fake("b", after=["a"]),
                                    fake("c", after=["b"])],
                         roles={}, drivers={"fake": {"store": str(tmp_path / "f.json")}})
    plan = plan_of(path, store)
    other = open_store(str(tmp_path / "state.db"))

    def take_over() -> None:
        time.sleep(0.3)  # as a run elsewhere does once the lease has lapsed
        other._conn.execute("UPDATE orch_locks SET host='other-host', pid=4242")
        other._conn.commit()

    thief = threading.Thread(target=take_over)
    thief.start()
    with pytest.raises(LeaseLostError) as err:
        run(plan, store)
    thief.join()
    assert "another run" in str(err.value)
    assert err.value.report.outcomes["a"].status is StepStatus.INTERRUPTED
    records = store.records("t")
    assert records["a"].status.value == "pending"       # outcome not written: fenced
    assert "b" not in records and "c" not in records    # never started: no intent
    assert store.runs("t")[0].status == "aborted"
    other.close()


def test_an_expired_lease_of_a_live_process_here_is_not_taken(tmp_path, store):
    """A stopped (SIGSTOP) or slowed run on this host lets its lease lapse; it is alive,
    so another run must not take it over (it would redo the stopped run's step)."""
    import socket
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        holder = Holder(socket.gethostname(), live.pid, time.time(), "stopped")
        assert store.try_lock("t", holder) is None
        store._conn.execute("UPDATE orch_locks SET expires_at=0")
        store._conn.commit()
        other = Holder(socket.gethostname(), os.getpid(), time.time(), "me")
        assert store.try_lock("t", other) == Holder(socket.gethostname(), live.pid,
                                                     holder.started_at, "stopped")
    finally:
        live.kill()
        live.wait()
    assert store.try_lock("t", other) is None  # once it is gone, it is taken over


class SlowDriver(Driver):
    """A driver that ignores its deadline, to prove the executor's own wait is bounded."""

    name = "slow"

    def apply(self, request: ApplyRequest) -> ApplyResult:
        request.cancelled.wait(5)
        return ApplyResult({})


def test_a_driver_that_overruns_its_timeout_is_given_up_on(tmp_path, store, monkeypatch):
    import orchestrator.walk as walk
    from orchestrator.plan import Mode, PlannedStep
    from orchestrator.step import Step
    monkeypatch.setattr(walk, "GRACE_SECONDS", 0.2)
    step = Step("hang", "slow.op", "slow", "hang", "l", timeout=0.3)
    plan = Plan("t", Mode.NORMAL, (PlannedStep(step, Action.CREATE, "test"),),
                state_hash=store.state_hash("t"))
    reg = DriverRegistry({"slow": SlowDriver})
    t0 = time.monotonic()
    report = Executor(plan, store, reg, ExecOptions()).run()
    assert time.monotonic() - t0 < 3
    assert report.outcomes["hang"].status is StepStatus.FAILED
    assert "timed out" in report.outcomes["hang"].error


class LeakyDriver(Driver):
    """Raises a vendor-style error whose text includes the secret it was given."""

    name = "leaky"

    def apply(self, request: ApplyRequest) -> ApplyResult:
        pw = request.inputs["password"].reveal()
        raise PermanentError(f"login refused for admin:{pw}@bmc", endpoint="bmc",
                             operation="login")


def test_error_texts_are_redacted_before_state_and_report(tmp_path, store, monkeypatch):
    from orchestrator.plan import Mode, PlannedStep
    from orchestrator.step import Step
    monkeypatch.setenv("LEAKY_PW", "s3cr3t-Value-77")
    step = Step("x", "leaky.op", "leaky", "x", "l",
                inputs={"password": {"$secret": "env:LEAKY_PW"}})
    plan = Plan("t", Mode.NORMAL, (PlannedStep(step, Action.CREATE, "t"),),
                state_hash=store.state_hash("t"))
    report = Executor(plan, store, DriverRegistry({"leaky": LeakyDriver}), ExecOptions()).run()
    err = report.outcomes["x"].error
    assert "login refused" in err and "s3cr3t-Value-77" not in err
    assert "s3cr3t-Value-77" not in store.records("t")["x"].error
    assert "s3cr3t-Value-77" not in json.dumps(store.journal("t"))


class TransientThenOk(Driver):
    name = "tto"
    calls = 0

    def apply(self, request: ApplyRequest) -> ApplyResult:
        TransientThenOk.calls += 1
        if TransientThenOk.calls == 1:
            raise TransientError("409 conflict", endpoint="e", operation="op", retry_after=0.01)
        return ApplyResult({"ok": True})


def test_outputs_of_upstream_steps_reach_their_dependents(tmp_path, store):
    seen = {}

    class Echo(Driver):
        name = "echo"

        def apply(self, request: ApplyRequest) -> ApplyResult:
            seen[request.step.id] = dict(request.upstream)
            return ApplyResult({"mac": f"52:54:00:{request.step.id}"})

    from orchestrator.plan import Mode, PlannedStep
    from orchestrator.step import Step
    a = Step("a", "echo", "echo", "a", "l")
    b = Step("b", "echo", "echo", "b", "l", depends_on=("a",))
    plan = Plan("t", Mode.NORMAL, (PlannedStep(a, Action.CREATE, ""),
                                   PlannedStep(b, Action.CREATE, "")),
                state_hash=store.state_hash("t"))
    Executor(plan, store, DriverRegistry({"echo": Echo}), ExecOptions()).run()
    assert seen["b"] == {"a": {"mac": "52:54:00:a"}}
    assert store.records("t")["b"].outputs == {"mac": "52:54:00:b"}


def test_lock_timeout_waits_for_the_holder_then_runs(tmp_path, store):
    import os
    import socket
    import threading
    path = write_profile(tmp_path, [fake("a")])
    plan = plan_of(path, store)
    other = Holder(socket.gethostname(), os.getppid(), time.time(), "run-x")  # alive
    assert store.try_lock("t", other) is None
    releaser = threading.Timer(0.8, store.unlock, ("t", other))
    releaser.start()
    t0 = time.monotonic()
    report = run(plan, store, lock_timeout=10)
    releaser.join()
    assert report.ok and 0.8 <= time.monotonic() - t0 < 5


def test_retries_stop_at_the_total_time_budget_before_the_attempts_run_out(tmp_path, store):
    """A transient failure with attempts to spare still ends once the next wait would pass
    the policy's total seconds (the sleeps are real here, and short)."""
    path = write_profile(tmp_path, [fake("hopeless", fail="transient:99")],
                         drivers={"fake": {"store": str(tmp_path / "f.json")}})
    t0 = time.monotonic()
    report = run(plan_of(path, store), store, sleep=time.sleep,
                 retry=RetryPolicy(attempts=50, total_seconds=1.0, initial_wait=0.2,
                                   max_wait=0.4))
    elapsed = time.monotonic() - t0
    outcome = report.outcomes["hopeless"]
    assert outcome.status is StepStatus.FAILED
    assert 2 <= outcome.attempts < 10 and elapsed < 2.5


def test_a_lease_whose_pid_was_reused_by_a_newer_process_is_taken_over(tmp_path, store):
    """The holder died and its pid now belongs to a process started after the lease was
    taken: that process is not the holder."""
    import socket
    newer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        ghost = Holder(socket.gethostname(), newer.pid, time.time() - 3600, "long-dead")
        assert store.try_lock("t", ghost) is None
        assert store.try_lock("t", Holder.me()) is None
    finally:
        newer.kill()
        newer.wait()
