"""The state store contract.

The store keeps, per profile, one **record** per step orch has acted on, and an append-only
**journal** of what each run intended and what came of it:

* ``intent``  — written (durably) *before* a driver acts: run, step, action, fingerprint;
  the step's record becomes ``pending`` and keeps its previous inputs and outputs;
* ``outcome`` — written after: the record becomes ``applied`` with the new step and its
  outputs, is removed (a successful delete), or becomes ``failed`` with the error text.

So a run killed at any moment leaves records that say exactly what was done: ``applied``
steps are not redone, ``pending`` ones are shown in the next plan as interrupted and carried
out again (drivers are idempotent), ``failed`` ones are retried. Secrets never reach the
store: steps carry secret *references* only, and error texts are redacted before writing.

A run holds a **lease** on the profile (holder host, pid, start time, expiry renewed by a
heartbeat); a second run fails fast naming the holder, or waits up to a timeout. A lease
whose holder died on this host is taken over; one whose expiry passed is taken over only
when its holder is not a live process on this host (a stopped process keeps it).
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrator.errors import StateError
from orchestrator.step import Step

if TYPE_CHECKING:
    from orchestrator.state.lease import Lease


class RecordStatus(str, enum.Enum):
    APPLIED = "applied"
    PENDING = "pending"
    FAILED = "failed"


class Record:
    """What the store knows about one step of a profile.

    The step and its outputs are kept as the JSON the store holds and decoded on first use:
    re-planning thousands of unchanged steps compares fingerprints and never needs them.
    """

    __slots__ = ("_outputs", "_outputs_json", "_step", "_step_json", "error", "fingerprint",
                 "pending_action", "run_id", "status", "step_id", "updated_at")

    def __init__(self, step: Step | str, status: RecordStatus, fingerprint: str,
                 outputs: Mapping[str, Any] | str | None = None, pending_action: str = "",
                 run_id: str = "", updated_at: float = 0.0, error: str = "",
                 step_id: str = "") -> None:
        self._step = step if isinstance(step, Step) else None
        self._step_json = step if isinstance(step, str) else ""
        self.step_id = step.id if isinstance(step, Step) else step_id
        self._outputs = None if isinstance(outputs, str) else dict(outputs or {})
        self._outputs_json = outputs if isinstance(outputs, str) else ""
        self.status = status
        self.fingerprint = fingerprint
        #: the action an interrupted or failed run was carrying out
        self.pending_action = pending_action
        self.run_id = run_id
        self.updated_at = updated_at
        self.error = error

    @property
    def step(self) -> Step:
        if self._step is None:
            try:
                self._step = Step.from_dict(json.loads(self._step_json))
            except Exception as exc:  # a hand-edited or damaged row
                raise damaged(self.step_id, "step", exc) from None
        return self._step

    @property
    def outputs(self) -> Mapping[str, Any]:
        if self._outputs is None:
            try:
                self._outputs = json.loads(self._outputs_json) if self._outputs_json else {}
            except ValueError as exc:
                raise damaged(self.step_id, "outputs", exc) from None
        return self._outputs

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return (self.step, self.status, self.fingerprint, dict(self.outputs),
                self.pending_action, self.run_id, self.error) == \
            (other.step, other.status, other.fingerprint, dict(other.outputs),
             other.pending_action, other.run_id, other.error)

    def __repr__(self) -> str:
        return f"Record({self.step_id!r}, {self.status.value}, {self.fingerprint[:8]})"


def damaged(step_id: str, column: str, exc: BaseException) -> StateError:
    return StateError(f"the state's record of {step_id} is damaged: its {column} cannot be "
                      f"read ({type(exc).__name__}: {str(exc)[:120]})",
                      hint=f"`orch state rm PROFILE {step_id}` forgets it (the next plan "
                      "then creates it again); nothing else was changed")


class StoreBusyError(StateError):
    """The store did not take a write in time (SQLite: another process holds its write
    lock past busy_timeout). Worth retrying."""


@dataclass(frozen=True)
class JournalEntry:
    """One line of the journal: an intent before a driver acts, or an outcome after."""

    run_id: str
    step: Step
    phase: str  # "intent" | "outcome"
    action: str
    #: outcome only: "succeeded" | "failed"
    result: str = ""
    outputs: Mapping[str, Any] = field(default_factory=dict)
    error: str = ""
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Holder:
    """Who holds (or asks for) the lease."""

    host: str
    pid: int
    started_at: float
    run_id: str = ""

    @classmethod
    def me(cls, run_id: str = "") -> Holder:
        return cls(socket.gethostname(), os.getpid(), time.time(), run_id)

    def describe(self) -> str:
        if not self.pid:  # not a process: the store itself was too busy to answer
            return self.host
        return f"pid {self.pid} on {self.host}" + (f" (run {self.run_id})" if self.run_id
                                                   else "")

    def alive_here(self) -> bool:
        """False when the holder ran on this host and its process is gone."""
        if self.host != socket.gethostname():
            return True
        return self.running_here()

    def running_here(self) -> bool:
        """True when the holder runs on this host and its process exists (even stopped:
        a SIGSTOPped run still holds the lease, whatever its renewal says)."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        started = _process_start(self.pid)
        # a process that started after the lease was taken is another one, reusing the pid
        return started is None or started <= self.started_at + 2.0


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds), from /proc; None when unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            stat = fh.read()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        with open("/proc/stat", encoding="ascii") as fh:
            btime = next(int(ln.split()[1]) for ln in fh if ln.startswith("btime "))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    profile: str
    mode: str
    started_at: float
    finished_at: float | None
    status: str
    holder: str


class StateStore(ABC):
    """Abstract store; :mod:`.sqlite` and :mod:`.postgres` are the two backends."""

    url: str
    lease_seconds: float = 30.0  # see state.lease.lease_seconds (ORCH_LEASE_SECONDS)

    @abstractmethod
    def records(self, profile: str) -> dict[str, Record]:
        """Every record of ``profile`` by step id."""

    @abstractmethod
    def write(self, entries: Sequence[JournalEntry], profile: str,
              holder: Holder | None = None) -> None:
        """Append ``entries`` to the journal and update records, in one durable transaction.
        With ``holder``, commit only if it still holds the profile's lease (else raise
        LeaseLostError and write nothing)."""

    def lock_holder(self, profile: str) -> Holder | None:
        """Who holds the profile's lease now (None: nobody)."""
        return None

    @abstractmethod
    def begin_run(self, profile: str, mode: str, holder: Holder) -> str:
        """Record a new run; returns its id."""

    @abstractmethod
    def finish_run(self, run_id: str, status: str) -> None: ...

    @abstractmethod
    def runs(self, profile: str, limit: int = 20) -> list[RunInfo]: ...

    @abstractmethod
    def journal(self, profile: str, step_id: str | None = None,
                limit: int = 200) -> list[dict[str, Any]]: ...

    @abstractmethod
    def try_lock(self, profile: str, holder: Holder) -> Holder | None:
        """Take the lease if free or stale; return None on success, else the holder."""

    @abstractmethod
    def renew_lock(self, profile: str, holder: Holder) -> bool: ...

    @abstractmethod
    def unlock(self, profile: str, holder: Holder) -> None: ...

    @abstractmethod
    def forget(self, profile: str, step_ids: Sequence[str]) -> int:
        """Drop records without touching the world (``orch state rm``)."""

    def close(self) -> None:
        """Release the connection."""

    def meta(self, key: str) -> str | None:
        """A fact about the whole state (``state_id``, ``inventory:PROFILE``), or None."""
        return None

    def set_meta(self, key: str, value: str) -> None:
        raise NotImplementedError

    @property
    def state_id(self) -> str:
        """The random id given to the state when it was created ("" for none yet)."""
        return self.meta("state_id") or ""

    # -- derived ---------------------------------------------------------------------------
    def state_hash(self, profile: str, records: Mapping[str, Record] | None = None) -> str:
        recs = self.records(profile) if records is None else records
        h = hashlib.sha256(profile.encode())
        for sid in sorted(recs):
            r = recs[sid]
            h.update(f"\0{sid}\0{r.fingerprint}\0{r.status.value}\0{r.pending_action}".encode())
        return h.hexdigest()

    @contextmanager
    def locked(self, profile: str, holder: Holder, timeout: float = 0.0,
               poll: float = 0.5) -> Iterator[Lease]:
        """Hold the profile's lease for the duration of the block, renewing it. The
        :class:`~orchestrator.state.lease.Lease` yielded tells whether it was lost."""
        from orchestrator.state.lease import hold
        held: dict[str, Lease] = self.__dict__.setdefault("_held_leases", {})
        if profile in held:  # re-entered by this process (plan under the lock, then apply)
            yield held[profile]
            return
        with hold(self, profile, holder, timeout, poll) as lease:
            held[profile] = lease
            try:
                yield lease
            finally:
                del held[profile]
