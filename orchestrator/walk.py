"""The executor's parallel walk: a scheduler loop (the caller's thread) and a pool of workers.

A step is *queued* when its dependencies are done and *started* when a worker takes it: only
then is its intent journaled (so a run killed with 28 steps queued and 2 started leaves 2
steps ``pending``, not 30). Before every driver call the worker proves the run's lease.

Stopping: :meth:`Walk.interrupt` (a first SIGINT/SIGTERM) starts nothing more and lets
started steps finish; after ``stop_grace`` seconds they see ``request.cancelled``. A second
call cancels at once and, ``HARD_GRACE`` seconds later, stops waiting: a step still in its
driver is reported *interrupted* (its intent is journaled, its outcome is not, and the next
plan shows it as interrupted).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from orchestrator.driver import ApplyRequest, Driver
from orchestrator.errors import DriverError, LeaseLostError, OrchError, StepTimeoutError
from orchestrator.journal import JournalWriter
from orchestrator.outcome import ApplyReport, StepOutcome, StepStatus
from orchestrator.plan import Action, PlannedStep
from orchestrator.retry import call_with_retries
from orchestrator.secrets import redact, resolve_inputs
from orchestrator.state.base import JournalEntry
from orchestrator.state.lease import Lease

if TYPE_CHECKING:
    from orchestrator.executor import Executor

#: extra seconds past a step's timeout before the executor gives up waiting for its driver
GRACE_SECONDS = 30.0
#: after a second interrupt, seconds to wait for drivers to notice ``cancelled``
HARD_GRACE = 5.0
#: the root cause of steps not started because the run lost its lease
LEASE_LOST = "(the run's lease on the state, lost)"
JOURNAL_FAILED = "(the journal, which could not be written)"
NEVER = float("inf")


class Walk:
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
        self.tasks: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self.results: queue.SimpleQueue[tuple[str, StepOutcome, Mapping[str, Any]]] = \
            queue.SimpleQueue()
        self.running: dict[str, float] = {}  # queued or started step id -> deadline
        self.started: set[str] = set()
        self.dropped: set[str] = set()       # queued, then given up before a worker took it
        self.claim = threading.Lock()
        self.cancel = threading.Event()
        #: why no new step may start ("" while they may)
        self.stopping = ""
        self.interrupts = 0
        self.cancel_at = NEVER
        self.abandon_at = NEVER
        self._announced = 0
        self.prior = self._prior_outputs()

    def _prior_outputs(self) -> dict[str, Mapping[str, Any]]:
        if not any(p.action is not Action.CREATE for p in self.todo.values()) and \
                not any(d for p in self.todo.values() for d in p.step.depends_on
                        if d not in self.todo):
            return {}
        return {sid: r.outputs for sid, r in self.ex.store.records(self.ex.plan.profile).items()}

    # -- stopping ----------------------------------------------------------------------
    def interrupt(self, why: str) -> None:
        """A first call stops starting steps; a second one cancels those in flight. Safe to
        call from a signal handler (it only sets fields)."""
        self.interrupts += 1
        if self.interrupts == 1:
            self.stopping = self.stopping or f"(an interrupt: {why})"
            self.cancel_at = time.monotonic() + self.opts.stop_grace
        else:
            self.cancel.set()
            self.abandon_at = time.monotonic() + HARD_GRACE

    def _why_not_start(self) -> str:
        if self.lease.lost.is_set():
            return LEASE_LOST
        if self.journal.failure is not None:
            return JOURNAL_FAILED
        return self.stopping

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

    def _not_started(self, sid: str, cause: str) -> StepOutcome:
        p = self.todo[sid]
        return StepOutcome(sid, StepStatus.SKIPPED, p.action, error=f"not started: {cause}",
                           root_cause=cause)

    def _offer(self, sid: str) -> None:
        p = self.todo[sid]
        why = self._why_not_start()
        if why:  # another run may be acting, or this one is stopping: start nothing more
            self._finish(sid, self._not_started(sid, why), {})
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
        self.running[sid] = NEVER  # its deadline is set when a worker starts it
        self.tasks.put(sid)

    def _announce(self) -> None:
        while self._announced < self.interrupts:
            self._announced += 1
            if self._announced == 1:
                inflight = sum(1 for sid in self.running if sid in self.started)
                self.opts.on_event("notice", "", (
                    f"Interrupted by {self.stopping[len('(an interrupt: '):-1]}: starting no "
                    f"more steps; waiting for the {inflight} in progress (they are "
                    f"cancelled after {self.opts.stop_grace:.0f} s). Interrupt again to "
                    "cancel them now."))
            elif self._announced == 2:
                self.opts.on_event("notice", "", (
                    "Interrupted again: cancelling the steps in progress; outcomes are "
                    f"recorded for those that return within {HARD_GRACE:.0f} s"))

    def _collect(self) -> None:
        self._announce()
        now = time.monotonic()
        if now >= self.cancel_at and not self.cancel.is_set():
            self.cancel.set()
        if self.stopping or self._why_not_start():
            self._drop_queued(self._why_not_start())
        if now >= self.abandon_at:
            self._abandon()
            return
        try:
            sid, outcome, outputs = self.results.get(timeout=0.2)
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
            # Given up on (timed out, or abandoned): the driver's real outcome, journaled by
            # the worker, is what the state keeps and the next plan reads.
            if sid in self.report.outcomes:
                self.ex.log.warning("step finished after it was given up on", step=sid,
                                    result=outcome.status.value)
                self.opts.on_event("progress", sid, "finished after it was given up on: "
                                   f"{outcome.status.value} (recorded in the state)")
            return
        self._release(sid)
        self._finish(sid, outcome, outputs)

    def _drop_queued(self, why: str) -> None:
        with self.claim:
            queued = [sid for sid in self.running if sid not in self.started]
            self.dropped.update(queued)
        for sid in sorted(queued, key=self.rank.__getitem__):
            self._release(sid, reoffer=False)
            self._finish(sid, self._not_started(sid, why), {})
        for ep, q in list(self.endpoint_queue.items()):
            self.endpoint_queue[ep] = []
            for sid in q:
                if sid not in self.report.outcomes:
                    self._finish(sid, self._not_started(sid, why), {})

    def _abandon(self) -> None:
        """After a second interrupt: stop waiting for drivers that did not return."""
        for sid in sorted(self.running, key=self.rank.__getitem__):
            p = self.todo[sid]
            self._finish(sid, StepOutcome(
                sid, StepStatus.INTERRUPTED, p.action,
                error="still running when orch stopped: its outcome is not recorded (the "
                      "next plan shows it as interrupted and carries it out again)"), {})
        self.running.clear()

    def _release(self, sid: str, reoffer: bool = True) -> None:
        self.running.pop(sid, None)
        p = self.todo[sid]
        ep = p.step.endpoint
        if ep and ep in self.endpoint_busy:
            self.endpoint_busy[ep] -= 1
            q = self.endpoint_queue.get(ep)
            if q and reoffer:
                self._offer(q.pop(0))

    def _finish(self, sid: str, outcome: StepOutcome, outputs: Mapping[str, Any]) -> None:
        self.report.outcomes[sid] = outcome
        self.opts.on_event(outcome.status.value, sid, outcome.error)
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
                   else "was lost" if cause == LEASE_LOST
                   else "was not written" if cause == JOURNAL_FAILED
                   else "came first" if cause.startswith("(an interrupt")
                   else "was interrupted" if outcome.status is StepStatus.INTERRUPTED
                   else "failed")
            self.opts.on_event("skipped", dep, f"because {cause} {why}")

    # -- workers -----------------------------------------------------------------------
    def _worker(self) -> None:
        while True:
            sid = self.tasks.get()
            if sid is None:
                return
            p = self.todo[sid]
            with self.claim:
                if sid in self.dropped:
                    continue
                self.started.add(sid)
            try:
                outcome, outputs = self._start(p)
            except BaseException as exc:
                outcome, outputs = StepOutcome(sid, StepStatus.FAILED, p.action,
                                               error=redact(f"internal error: {exc!r}")), {}
            self.results.put((sid, outcome, outputs))

    def _start(self, p: PlannedStep) -> tuple[StepOutcome, Mapping[str, Any]]:
        """Journal the intent (durably), then carry the step out."""
        sid = p.step.id
        why = self._why_not_start()
        if not why:
            try:
                self.lease.ensure()
            except LeaseLostError:
                why = LEASE_LOST
        if why:
            return self._not_started(sid, why), {}
        try:
            self.journal.submit(JournalEntry(self.run_id, p.step, "intent",
                                             p.action.value)).result()
        except Exception as exc:
            cause = LEASE_LOST if isinstance(exc, LeaseLostError) else JOURNAL_FAILED
            return StepOutcome(sid, StepStatus.SKIPPED, p.action,
                               error=f"not started: its intent was not journaled ({exc})",
                               root_cause=cause), {}
        deadline = time.monotonic() + p.step.timeout
        if sid in self.running:  # (not when the walk has already given up on it)
            self.running[sid] = deadline
        return self._carry_out(p, deadline)

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
                self.lease.ensure()  # right before the driver acts: prove the lease
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
        except LeaseLostError as exc:
            # Not acting without the lease; the intent stays (pending: shown as interrupted).
            return StepOutcome(step.id, StepStatus.INTERRUPTED, p.action, attempts,
                               time.monotonic() - t0, f"stopped before its driver call: {exc}",
                               root_cause=LEASE_LOST), {}
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
        a dependent step acts), and at the latest when the run ends; if it cannot be written,
        nothing after it is, and the run fails (see JournalWriter)."""
        self.journal.submit(JournalEntry(self.run_id, p.step, "outcome", p.action.value,
                                         result, outputs, error))
