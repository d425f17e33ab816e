"""The executor: walks a plan's graph in parallel and journals every step.

* A global limit (``parallelism``) and a per-endpoint limit each driver declares (one BMC
  never gets more than its driver allows at once).
* Before a driver acts, the step's *intent* is durable in the journal; after, its outcome.
* Transient errors are retried by the policy; permanent errors are not.
* When a step fails, its dependents are skipped and independent branches go on; the report
  names the root cause of each skipped step, not the cascade.
* ``external`` steps are not run: the walk stops before them, says what to do by hand, and
  skips what depends on them.
* Every wait is bounded: a step that overruns its timeout (plus a grace period) is reported
  failed and the walk moves on.
"""

from __future__ import annotations

import contextlib
import enum
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import log as orch_log
from orchestrator.driver import ApplyRequest, Driver, DriverRegistry
from orchestrator.errors import (
    DriverError,
    LeaseLostError,
    OrchError,
    StalePlanError,
    StepTimeoutError,
)
from orchestrator.journal import JournalWriter
from orchestrator.plan import Action, Plan, PlannedStep
from orchestrator.retry import RetryPolicy, call_with_retries
from orchestrator.secrets import redact, resolve_inputs
from orchestrator.state.base import Holder, JournalEntry, StateStore
from orchestrator.state.lease import Lease

#: extra seconds past a step's timeout before the executor gives up waiting for its driver
GRACE_SECONDS = 30.0
#: the root cause of steps not started because the run lost its lease
LEASE_LOST = "(the run's lease on the state, lost)"


class StepStatus(str, enum.Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    STOPPED = "stopped"  # an external step, left for a human


@dataclass
class StepOutcome:
    step_id: str
    status: StepStatus
    action: Action
    attempts: int = 0
    duration: float = 0.0
    error: str = ""
    #: for skipped steps: the failed or external step that caused the skip
    root_cause: str = ""


@dataclass
class ApplyReport:
    run_id: str
    outcomes: dict[str, StepOutcome] = field(default_factory=dict)
    wall_seconds: float = 0.0

    def of(self, status: StepStatus) -> list[StepOutcome]:
        return [o for o in self.outcomes.values() if o.status is status]

    @property
    def ok(self) -> bool:
        return all(o.status is StepStatus.SUCCEEDED for o in self.outcomes.values())

    def root_causes(self) -> list[StepOutcome]:
        return [o for o in self.outcomes.values()
                if o.status in (StepStatus.FAILED, StepStatus.STOPPED)]


Event = Callable[[str, str, str], None]  # (event, step id, detail)


@dataclass
class ExecOptions:
    parallelism: int = 10
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    lock_timeout: float = 0.0
    on_event: Event = lambda _e, _s, _d: None
    #: directory secret ``file:`` references are relative to
    base_dir: Path | None = None
    #: check the plan's state hash against the store (off for a freshly made plan)
    check_state_hash: bool = True


class Executor:
    """One apply of one plan against one store."""

    def __init__(self, plan: Plan, store: StateStore, drivers: DriverRegistry,
                 options: ExecOptions | None = None,
                 settings: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.plan = plan
        self.store = store
        self.registry = drivers
        self.options = options or ExecOptions()
        self.settings = dict(settings if settings is not None else plan_settings(plan))
        self.log = orch_log.get_logger("orch.apply").bind(profile=plan.profile)

    # -- entry -------------------------------------------------------------------------
    def run(self) -> ApplyReport:
        """Apply the plan. Raises StalePlanError, LockHeldError, DriverLoadError, and
        LeaseLostError when the lease was lost mid-run (no step started after the loss)."""
        holder = Holder.me()
        profile = self.plan.profile
        with self.store.locked(profile, holder, timeout=self.options.lock_timeout) as lease:
            if self.options.check_state_hash:
                current = self.store.state_hash(profile)
                if current != self.plan.state_hash:
                    raise StalePlanError("the state changed since the plan was made "
                                         f"(plan {self.plan.state_hash[:12]}, "
                                         f"now {current[:12]})")
            run_id = self.store.begin_run(profile, self.plan.mode.value, holder)
            self.log.info("apply started", run=run_id,
                          steps=sum(1 for p in self.plan if p.action.changes))
            report = ApplyReport(run_id)
            t0 = time.monotonic()
            journal = JournalWriter(self.store, profile)
            drivers = self._drivers()
            try:
                _Walk(self, run_id, journal, drivers, report, lease).run()
            finally:
                journal.close()
                for d in drivers.values():
                    with contextlib.suppress(Exception):
                        d.close()
            report.wall_seconds = time.monotonic() - t0
            if lease.lost.is_set():
                self.store.finish_run(run_id, "aborted")
                self.log.error("apply aborted: lease lost", run=run_id, why=lease.why)
                raise LeaseLostError(lease.why)
            status = "succeeded" if report.ok else "partial"
            self.store.finish_run(run_id, status)
            self.log.info("apply finished", run=run_id, status=status,
                          seconds=round(report.wall_seconds, 3))
            return report

    def _drivers(self) -> dict[str, Driver]:
        names = sorted({p.step.driver for p in self.plan
                        if p.action.changes and not p.step.external})
        out: dict[str, Driver] = {}
        for name in names:
            cls = self.registry.load(name)
            out[name] = cls(self.registry.settings(name, self.settings.get(name)))
        return out


def plan_settings(plan: Plan) -> dict[str, Mapping[str, Any]]:
    return dict(plan.driver_settings)


class _Walk:
    """The parallel walk itself: a scheduler loop and a pool of daemon workers."""

    def __init__(self, ex: Executor, run_id: str, journal: JournalWriter,
                 drivers: Mapping[str, Driver], report: ApplyReport, lease: Lease) -> None:
        self.ex = ex
        self.lease = lease
        self.run_id = run_id
        self.journal = journal
        self.drivers = drivers
        self.report = report
        self.opts = ex.options
        self.todo: dict[str, PlannedStep] = {p.step.id: p for p in ex.plan if p.action.changes}
        self.rank = {sid: i for i, sid in enumerate(self.todo)}
        graph = ex.plan.graph().subgraph(self.todo)
        self.graph = graph
        self.waiting_on = {sid: len(graph.predecessors(sid)) for sid in self.todo}
        self.outputs: dict[str, Mapping[str, Any]] = {}
        self.endpoint_busy: dict[str, int] = {}
        self.endpoint_queue: dict[str, list[str]] = {}
        self.tasks: queue.SimpleQueue[tuple[str, float] | None] = queue.SimpleQueue()
        self.results: queue.SimpleQueue[tuple[str, StepOutcome, Mapping[str, Any]]] = \
            queue.SimpleQueue()
        self.running: dict[str, float] = {}  # step id -> deadline
        self.cancel = threading.Event()
        self.prior = self._prior_outputs()

    def _prior_outputs(self) -> dict[str, Mapping[str, Any]]:
        if not any(p.action is not Action.CREATE for p in self.todo.values()) and \
                not any(d for p in self.todo.values() for d in p.step.depends_on
                        if d not in self.todo):
            return {}
        return {sid: r.outputs for sid, r in self.ex.store.records(self.ex.plan.profile).items()}

    # -- scheduling --------------------------------------------------------------------
    def run(self) -> None:
        workers = [threading.Thread(target=self._worker, name=f"orch-step-{i}", daemon=True)
                   for i in range(max(1, min(self.opts.parallelism, len(self.todo))))]
        for w in workers:
            w.start()
        ready = sorted((sid for sid, n in self.waiting_on.items() if n == 0),
                       key=self.rank.__getitem__)
        for sid in ready:
            self._offer(sid)
        try:
            while self.running:
                self._collect()
        finally:
            self.cancel.set()
            for _ in workers:
                self.tasks.put(None)

    def _limit(self, driver_name: str) -> int | None:
        d = self.drivers.get(driver_name)
        return getattr(d, "endpoint_concurrency", None) if d is not None else None

    def _offer(self, sid: str) -> None:
        p = self.todo[sid]
        if self.lease.lost.is_set():  # another run may be acting: start nothing more
            self._finish(sid, StepOutcome(sid, StepStatus.SKIPPED, p.action,
                                          error=f"not started: {self.lease.why}",
                                          root_cause=LEASE_LOST), {})
            return
        if p.step.external:
            self._finish(sid, StepOutcome(sid, StepStatus.STOPPED, p.action,
                                          error=f"external: {p.step.external_reason}"), {})
            return
        ep = p.step.endpoint
        limit = self._limit(p.step.driver)
        if ep and limit is not None:
            if self.endpoint_busy.get(ep, 0) >= limit:
                self.endpoint_queue.setdefault(ep, []).append(sid)
                return
            self.endpoint_busy[ep] = self.endpoint_busy.get(ep, 0) + 1
        deadline = time.monotonic() + p.step.timeout
        self.running[sid] = deadline
        # The driver may act only once the intent is durable: the journal thread hands the
        # step to a worker when its commit is done (and, commits being in order, every
        # outcome submitted before it is durable too).
        intent = self.journal.submit(JournalEntry(self.run_id, p.step, "intent",
                                                  p.action.value))
        intent.add_done_callback(lambda fut: self._intent_committed(fut, sid, deadline))

    def _intent_committed(self, fut: Any, sid: str, deadline: float) -> None:
        exc = fut.exception()
        if exc is None:
            self.tasks.put((sid, deadline))
            return
        p = self.todo[sid]
        self.results.put((sid, StepOutcome(sid, StepStatus.FAILED, p.action,
                                           error=f"intent not journaled: {exc}"), {}))

    def _collect(self) -> None:
        now = time.monotonic()
        soonest = min(self.running.values()) + GRACE_SECONDS
        try:
            sid, outcome, outputs = self.results.get(timeout=max(0.05, soonest - now))
        except queue.Empty:
            for sid, deadline in list(self.running.items()):
                if time.monotonic() > deadline + GRACE_SECONDS:
                    p = self.todo[sid]
                    self._release(sid)
                    self._record_outcome(p, "failed", {}, "driver did not return within "
                                         f"{p.step.timeout:.0f} s (+{GRACE_SECONDS:.0f} s)")
                    self._finish(sid, StepOutcome(
                        sid, StepStatus.FAILED, p.action,
                        error=f"timed out after {p.step.timeout:.0f} s"), {})
            return
        if sid not in self.running:
            # Given up on as timed out, its dependents skipped; the driver's real outcome,
            # journaled by the worker, is what the state keeps and the next plan reads.
            self.ex.log.warning("step finished after its timeout", step=sid,
                                result=outcome.status.value)
            self.opts.on_event("progress", sid, "finished after its timeout: "
                               f"{outcome.status.value} (recorded in the state)")
            return
        self._release(sid)
        self._finish(sid, outcome, outputs)

    def _release(self, sid: str) -> None:
        self.running.pop(sid, None)
        p = self.todo[sid]
        ep = p.step.endpoint
        if ep and ep in self.endpoint_busy:
            self.endpoint_busy[ep] -= 1
            q = self.endpoint_queue.get(ep)
            if q:
                self._offer(q.pop(0))

    def _finish(self, sid: str, outcome: StepOutcome, outputs: Mapping[str, Any]) -> None:
        self.report.outcomes[sid] = outcome
        event = outcome.status.value
        self.opts.on_event(event, sid, outcome.error)
        if outcome.status is StepStatus.SUCCEEDED:
            self.outputs[sid] = outputs
            released = []
            for nxt in self.graph.successors(sid):
                self.waiting_on[nxt] -= 1
                if self.waiting_on[nxt] == 0 and nxt not in self.report.outcomes:
                    released.append(nxt)
            for nxt in sorted(released, key=self.rank.__getitem__):
                self._offer(nxt)
            return
        cause = outcome.root_cause or sid
        for dep in sorted(self.graph.descendants([sid]), key=self.rank.__getitem__):
            if dep in self.report.outcomes:
                continue
            p = self.todo[dep]
            self.report.outcomes[dep] = StepOutcome(dep, StepStatus.SKIPPED, p.action,
                                                    root_cause=cause)
            why = ("needs a human" if outcome.status is StepStatus.STOPPED
                   else "was lost" if cause == LEASE_LOST else "failed")
            self.opts.on_event("skipped", dep, f"because {cause} {why}")

    # -- workers -----------------------------------------------------------------------
    def _worker(self) -> None:
        while True:
            task = self.tasks.get()
            if task is None:
                return
            sid, deadline = task
            p = self.todo[sid]
            try:
                outcome, outputs = self._carry_out(p, deadline)
            except BaseException as exc:
                outcome, outputs = StepOutcome(sid, StepStatus.FAILED, p.action,
                                               error=redact(f"internal error: {exc!r}")), {}
            self.results.put((sid, outcome, outputs))

    def _carry_out(self, p: PlannedStep, deadline: float) -> tuple[StepOutcome, Mapping[str, Any]]:
        step = p.step
        t0 = time.monotonic()
        self.opts.on_event("started", step.id, p.action.value)
        log = self.ex.log.bind(step=step.id, action=p.action.value)
        attempts = 0
        try:
            inputs = resolve_inputs(step.inputs, base_dir=self.opts.base_dir)
            driver = self.drivers[step.driver]
            upstream = {d: self.outputs.get(d) or self.prior.get(d, {})
                        for d in step.depends_on}

            def attempt() -> Mapping[str, Any]:
                nonlocal attempts
                attempts += 1
                if time.monotonic() >= deadline:
                    raise StepTimeoutError(f"no time left after {attempts - 1} attempt(s)",
                                           endpoint=step.endpoint or "-", operation=step.kind)
                request = ApplyRequest(step, p.action, inputs, self.prior.get(step.id, {}),
                                       upstream, deadline, log,
                                       report=lambda text: self.opts.on_event(
                                           "progress", step.id, redact(text)),
                                       cancelled=self.cancel)
                return driver.apply(request).outputs

            def on_retry(n: int, exc: BaseException, wait: float) -> None:
                text = redact(str(exc))
                log.warning("transient failure, retrying", attempt=n, error=text,
                            wait=round(wait, 2))
                self.opts.on_event("retry", step.id, f"attempt {n}: {text}")

            outputs = call_with_retries(attempt, self.opts.retry, deadline=deadline,
                                        sleep=self.opts.sleep, on_retry=on_retry)
        except (DriverError, OrchError) as exc:
            error = redact(exc.render() if isinstance(exc, OrchError) else str(exc))
            self._record_outcome(p, "failed", {}, error)
            log.error("step failed", error=error, attempts=attempts)
            return StepOutcome(step.id, StepStatus.FAILED, p.action, attempts,
                               time.monotonic() - t0, error), {}
        except Exception as exc:
            error = redact(f"{type(exc).__name__}: {exc}")  # but must still be journaled
            self._record_outcome(p, "failed", {}, error)
            log.error("step failed with an untranslated error", error=error)
            return StepOutcome(step.id, StepStatus.FAILED, p.action, attempts,
                               time.monotonic() - t0, error), {}
        outputs = dict(outputs)
        self._record_outcome(p, "succeeded", outputs, "")
        return StepOutcome(step.id, StepStatus.SUCCEEDED, p.action, attempts,
                           time.monotonic() - t0), outputs

    def _record_outcome(self, p: PlannedStep, result: str, outputs: Mapping[str, Any],
                        error: str) -> None:
        """Queue the outcome. It is durable before any intent submitted after it (so before
        a dependent step acts), and at the latest when the run ends."""
        self.journal.submit(JournalEntry(self.run_id, p.step, "outcome", p.action.value,
                                         result, outputs, error))
