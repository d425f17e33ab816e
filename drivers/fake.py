"""The fake driver: registered like a real one, for tests and benchmarks.

It simulates durations and failures from its inputs, and keeps what it "created" in a JSON
file when ``store`` is set so that observed state (and drift) can be read back across
processes:

* ``duration``: seconds to sleep (default 0);
* ``fail``: ``"transient:N"`` fails the first N attempts with a transient error,
  ``"permanent"`` always fails permanently;
* ``leak``: a permanent failure's message includes the ``secret`` input's value (to test
  redaction);
* every driver call is counted in ``store`` (``attempts``: calls started, per step;
  ``applied``: calls finished, in order), so fault tests can tell a step done twice;
* a step in its ``duration`` sleep returns early, failed, when the run cancels it
  (``request.cancelled``);
* ``endpoint`` concurrency is recorded in ``store`` when ``track`` is set, so tests can check
  that the executor never exceeded a per-endpoint limit.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec

from orchestrator.driver import ApplyRequest, ApplyResult, Driver, Observed
from orchestrator.errors import PermanentError, StepTimeoutError, TransientError
from orchestrator.plan import Action
from orchestrator.step import Step


class FakeSettings(msgspec.Struct, forbid_unknown_fields=True):
    store: Annotated[str, msgspec.Meta(
        description="JSON file recording created steps (empty: keep nothing)")] = ""
    endpoint_limit: Annotated[int, msgspec.Meta(
        description="operations one endpoint may receive at once", ge=1)] = 4


class FakeDriver(Driver):
    name = "fake"
    description = "Simulated steps with configurable durations and failures (tests, benchmarks)"
    step_kinds = {"fake.step": "sleeps `duration` seconds, fails as `fail` says"}
    settings_type = FakeSettings
    endpoint_concurrency = 4

    settings: FakeSettings

    def __init__(self, settings: FakeSettings | None = None) -> None:
        super().__init__(settings)
        self.endpoint_concurrency = self.settings.endpoint_limit

    def apply(self, request: ApplyRequest) -> ApplyResult:
        step, inputs = request.step, request.inputs
        attempt = self._bump(step.id, "attempts")
        fail = str(inputs.get("fail", ""))
        if fail == "permanent":
            # `leak: true` makes the error echo the step's secret, as careless vendor
            # libraries do, so tests can prove orch redacts it everywhere.
            secret = inputs.get("secret")
            leaked = f" (password {secret.reveal()})" if inputs.get("leak") and secret else ""
            raise PermanentError(f"simulated permanent failure{leaked}",
                                 endpoint=step.endpoint or "-", operation=step.kind)
        if fail.startswith("transient:") and attempt <= int(fail.split(":")[1]):
            raise TransientError(f"simulated transient failure (attempt {attempt})",
                                 endpoint=step.endpoint or "-", operation=step.kind)
        duration = float(inputs.get("duration", 0))
        if inputs.get("track"):
            self._track(step.endpoint or "-", +1)
        try:
            if duration:
                remaining = request.deadline - time.monotonic()
                if remaining < duration:
                    time.sleep(max(remaining, 0))
                    raise StepTimeoutError(f"simulated step needs {duration}s",
                                           endpoint=step.endpoint or "-", operation=step.kind)
                if request.cancelled.wait(duration):  # the run is being cancelled
                    raise PermanentError("cancelled before it finished",
                                         endpoint=step.endpoint or "-", operation=step.kind)
        finally:
            if inputs.get("track"):
                self._track(step.endpoint or "-", -1)
        if request.action is Action.DELETE:
            self._record(step.id, None)
            return ApplyResult({})
        outputs = {"applied": step.fingerprint()}
        self._record(step.id, outputs)
        return ApplyResult(outputs)

    def can_read(self) -> bool:
        return bool(self.settings.store)  # without a store nothing is kept to read back

    def read(self, step: Step, outputs: Mapping[str, Any]) -> Observed:
        if not self.settings.store:
            return Observed(exists=True, outputs=outputs)
        data = self._load()
        return Observed(exists=step.id in data.get("created", {}), outputs=outputs)

    # -- the store, shared across processes -------------------------------------------
    def _update(self, fn: Any) -> Any:
        if not self.settings.store:
            return None
        # Writers take a lock file; the store itself is replaced whole, so a reader in
        # another process (a test watching a run it will kill) never sees half of it.
        path = Path(self.settings.store)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(path.name + ".lock"), "a", encoding="utf-8") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self._load()
            result = fn(data)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(json.dumps(data, sort_keys=True))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            return result

    def _load(self) -> dict[str, Any]:
        try:
            text = Path(self.settings.store).read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        return json.loads(text) if text.strip() else {}

    def _bump(self, step_id: str, key: str) -> int:
        def fn(data: dict[str, Any]) -> int:
            counts = data.setdefault(key, {})
            counts[step_id] = counts.get(step_id, 0) + 1
            return int(counts[step_id])
        if not self.settings.store:
            counts = self.__dict__.setdefault("_attempts", {})
            counts[step_id] = counts.get(step_id, 0) + 1
            return int(counts[step_id])
        return int(self._update(fn))

    def _record(self, step_id: str, outputs: Mapping[str, Any] | None) -> None:
        def fn(data: dict[str, Any]) -> None:
            created = data.setdefault("created", {})
            applied = data.setdefault("applied", [])
            if outputs is None:
                created.pop(step_id, None)
            else:
                created[step_id] = dict(outputs)
            applied.append(step_id)
        self._update(fn)

    def _track(self, endpoint: str, delta: int) -> None:
        def fn(data: dict[str, Any]) -> None:
            live = data.setdefault("live", {})
            live[endpoint] = live.get(endpoint, 0) + delta
            peak = data.setdefault("peak", {})
            peak[endpoint] = max(peak.get(endpoint, 0), live[endpoint])
            total = sum(live.values())
            data["peak_total"] = max(data.get("peak_total", 0), total)
        self._update(fn)
