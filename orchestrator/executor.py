"""The executor: walks a plan's graph in parallel and journals every step.

* A global limit (``parallelism``) and a per-endpoint limit each driver declares (one BMC
  never gets more than its driver allows at once).
* When a worker starts a step, its *intent* is made durable in the journal before the
  driver acts; after, its outcome. A step only queued is not in the journal.
* The run's lease is proven right before each driver call; every journal write commits only
  while the lease is this run's. A failed journal write stops the run: nothing is written
  after it and the run fails (it never reports success with an outcome unrecorded).
* Transient errors are retried by the policy; permanent errors are not.
* When a step fails, its dependents are skipped and independent branches go on; the report
  names the root cause of each skipped step, not the cascade.
* ``external`` steps are not run: the walk stops before them, says what to do by hand, and
  skips what depends on them.
* Every wait is bounded: a step that overruns its timeout (plus a grace period) is reported
  failed and the walk moves on.
* :meth:`Executor.interrupt` (SIGINT/SIGTERM in the CLI) stops starting steps; a second
  call cancels those in flight (see :mod:`orchestrator.walk`).

The walk itself is :mod:`orchestrator.walk`; outcomes are :mod:`orchestrator.outcome`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import log as orch_log
from orchestrator.driver import Driver, DriverRegistry
from orchestrator.errors import (
    ApplyError,
    LeaseLostError,
    OrchError,
    PlanError,
    StalePlanError,
)
from orchestrator.journal import JournalWriter
from orchestrator.outcome import ApplyReport, StepOutcome, StepStatus
from orchestrator.plan import Plan
from orchestrator.retry import RetryPolicy
from orchestrator.state.base import Holder, StateStore
from orchestrator.walk import GRACE_SECONDS, LEASE_LOST, Walk

__all__ = ["GRACE_SECONDS", "LEASE_LOST", "ApplyReport", "ExecOptions", "Executor",
           "StepOutcome", "StepStatus", "plan_settings"]

Event = Callable[[str, str, str], None]  # (event, step id, detail)


def _stop_grace() -> float:
    raw = os.environ.get("ORCH_STOP_GRACE", "")
    try:
        return max(float(raw), 0.0) if raw else 60.0
    except ValueError:
        return 60.0


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
    #: after a first interrupt, seconds before in-flight steps see ``request.cancelled``
    #: (``ORCH_STOP_GRACE``, default 60)
    stop_grace: float = field(default_factory=_stop_grace)
    #: how long a journal write refused as busy is retried before the run fails
    journal_retry: float = 120.0


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
        self._walk: Walk | None = None
        self._interrupts: list[str] = []

    def interrupt(self, why: str) -> None:
        """Stop starting steps (first call) or cancel those in flight (second). Safe from a
        signal handler."""
        self._interrupts.append(why)
        if self._walk is not None:
            self._walk.interrupt(why)

    # -- entry -------------------------------------------------------------------------
    def run(self) -> ApplyReport:
        """Apply the plan. Raises PlanError for a malformed plan, StalePlanError,
        LockHeldError, DriverLoadError; and, with the report as ``.report``,
        LeaseLostError when the lease was lost mid-run (no driver call after the loss) and
        StateError when the journal could not be written (nothing written after it)."""
        self.check_plan()
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
            journal = JournalWriter(self.store, profile, holder=holder,
                                    retry_seconds=self.options.journal_retry)
            drivers = self._drivers()
            walk = Walk(self, run_id, journal, drivers, report, lease)
            self._walk = walk
            for why in self._interrupts:
                walk.interrupt(why)
            try:
                walk.run()
            finally:
                journal.close(timeout=max(60.0, self.options.journal_retry + 10))
                for d in drivers.values():
                    with contextlib.suppress(Exception):
                        d.close()
            report.wall_seconds = time.monotonic() - t0
            report.stopped_by = walk.stopping
            self._account(report, journal)
            status = self._status(report, lease.lost.is_set(), journal)
            try:
                self.store.finish_run(run_id, status)
            except OrchError as exc:  # the store went bad too: the next run marks it aborted
                self.log.error("run end not recorded", run=run_id, error=str(exc))
            self.log.info("apply finished", run=run_id, status=status,
                          seconds=round(report.wall_seconds, 3))
            if report.error is not None:
                report.error.report = report  # type: ignore[attr-defined]
                raise report.error
            return report

    def _account(self, report: ApplyReport, journal: JournalWriter) -> None:
        """Every step given got an outcome; an outcome whose journal entry failed is not
        reported as done."""
        missing = [sid for sid in (p.step.id for p in self.plan if p.action.changes)
                   if sid not in report.outcomes]
        actions = {p.step.id: p.action for p in self.plan}
        for sid in missing:
            report.outcomes[sid] = StepOutcome(sid, StepStatus.FAILED, actions[sid],
                                               error="never reached (an executor defect)")
        if missing:
            report.error = ApplyError(f"{len(missing)} step(s) got no outcome: "
                                      f"{', '.join(missing[:5])}")
        for e in journal.unwritten:
            o = report.outcomes.get(e.step.id)
            if e.phase == "outcome" and o is not None and \
                    o.status is not StepStatus.INTERRUPTED:
                o.status = StepStatus.INTERRUPTED
                o.error = (f"{e.result} in its driver, but that outcome could not be "
                           "journaled: the next plan shows it as interrupted")
        if journal.failure is not None and report.error is None:
            report.error = journal.failure
        if self._walk is not None and self._walk.lease.lost.is_set() and report.error is None:
            report.error = LeaseLostError(self._walk.lease.why)

    def _status(self, report: ApplyReport, lost: bool, journal: JournalWriter) -> str:
        if lost:
            self.log.error("apply aborted: lease lost", run=report.run_id)
            return "aborted"
        if report.error is not None or journal.failure is not None:
            return "failed"
        if report.stopped_by:
            return "interrupted"
        return "succeeded" if report.ok else "partial"

    def check_plan(self) -> None:
        """A (hand-edited) saved plan must name each step once and have no cycle."""
        seen: set[str] = set()
        for p in self.plan:
            if p.step.id in seen:
                raise PlanError(f"the plan lists step {p.step.id!r} more than once",
                                hint="make the plan again with `orch plan --out`")
            seen.add(p.step.id)
        changing = [p.step.id for p in self.plan if p.action.changes]
        cycle = self.plan.graph().subgraph(changing).find_cycle()
        if cycle:
            raise PlanError("the plan's steps depend on each other in a cycle: "
                            + " -> ".join([*cycle, cycle[0]]),
                            hint="make the plan again with `orch plan --out`")

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

