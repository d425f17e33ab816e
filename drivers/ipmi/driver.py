"""The IPMI driver: power and boot device over IPMI 2.0 lanplus (pyghmi).

Each step opens a session (negotiating the cipher suite, reported in the outputs as
``cipher_suite``), reads the current state, acts only when needed, reads back, logs out. A
transient failure retries the whole step under a bounded tenacity policy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from drivers.ipmi.chassis import DEVICE_CODES, Chassis
from drivers.ipmi.session import close_session, open_session
from drivers.ipmi.settings import IpmiSettings
from drivers.ipmi.target import IpmiTarget
from orchestrator.driver import ApplyRequest, ApplyResult, Driver, Observed
from orchestrator.errors import (
    NotSupportedError,
    PermanentError,
    StepTimeoutError,
)
from orchestrator.plan import Action
from orchestrator.retry import call_with_retries
from orchestrator.secrets import resolve_inputs
from orchestrator.step import Step

POWER_STATES = ("on", "off", "graceful-off", "restart")


class _NullLog:
    def __getattr__(self, _name: str) -> Callable[..., None]:
        return lambda *_a, **_k: None


def check_inputs(kind: str, inputs: Mapping[str, Any]) -> None:
    """Refuse a bad value before any packet is sent."""
    if kind == "ipmi.power" and inputs.get("state") not in POWER_STATES:
        raise PermanentError(f"state {inputs.get('state')!r} is not one of "
                             f"{', '.join(POWER_STATES)}", operation=kind)
    if kind == "ipmi.wait_power" and inputs.get("state") not in ("on", "off"):
        raise PermanentError(f"state {inputs.get('state')!r} is not on or off", operation=kind)
    if kind == "ipmi.boot_device":
        if inputs.get("device") not in DEVICE_CODES:
            raise PermanentError(f"device {inputs.get('device')!r} is not one of "
                                 f"{', '.join(DEVICE_CODES)}", operation=kind)
        if inputs.get("persistence", "once") not in ("once", "continuous"):
            raise PermanentError("persistence is once or continuous", operation=kind)
        if inputs.get("mode") not in (None, "", "uefi", "legacy"):
            raise PermanentError("mode is uefi or legacy", operation=kind)


class IpmiDriver(Driver):
    name = "ipmi"
    description = "Bare-metal power and boot device via IPMI 2.0 lanplus"
    step_kinds: ClassVar[Mapping[str, str]] = {
        "ipmi.power": "state on|off|graceful-off|restart, confirmed by reading it back",
        "ipmi.wait_power": "wait until the host reaches state on|off by itself (timeout)",
        "ipmi.boot_device": "device pxe|disk|cd, persistence once|continuous, mode uefi|legacy",
    }
    settings_type = IpmiSettings
    requires = ("pyghmi",)
    endpoint_concurrency = 1

    settings: IpmiSettings

    def __init__(self, settings: IpmiSettings | None = None) -> None:
        super().__init__(settings)
        #: Sleep between retries; tests replace it so that they do not wait.
        self.retry_sleep: Callable[[float], None] = time.sleep

    def apply(self, request: ApplyRequest) -> ApplyResult:
        kind = request.step.kind
        if kind not in self.step_kinds:
            raise NotSupportedError(f"unknown step kind {kind}", operation=kind)
        if request.action is Action.DELETE:
            return ApplyResult({})
        check_inputs(kind, request.inputs)
        work = {"ipmi.power": self._power, "ipmi.wait_power": self._wait_power,
                "ipmi.boot_device": self._boot_device}[kind]
        return ApplyResult(self.run(kind, request.inputs, work, deadline=request.deadline,
                                    log=request.log, cancelled=request.cancelled))

    def run(self, operation: str, inputs: Mapping[str, Any],
            work: Callable[[Chassis, Mapping[str, Any], float, threading.Event],
                           dict[str, Any]], *,
            deadline: float, log: Any = None,
            cancelled: threading.Event | None = None) -> dict[str, Any]:
        """Run ``work`` in a negotiated session with bounded retries of transient errors."""
        target = IpmiTarget.from_inputs(inputs)
        log = log if log is not None else _NullLog()
        cancelled = cancelled or threading.Event()

        def attempt() -> dict[str, Any]:
            opened = open_session(target, self.settings.cipher_suites, operation)
            log.info("ipmi.session", endpoint=target.endpoint, cipher_suite=opened.suite,
                     rejected=opened.rejected)
            try:
                chassis = Chassis(opened.session, target.endpoint, operation, target.password)
                out = work(chassis, inputs, deadline, cancelled)
            finally:
                close_session(opened, target)
            return {"cipher_suite": opened.suite, **out}

        def on_retry(attempt_no: int, error: BaseException, wait: float) -> None:
            log.warning("ipmi.retry", endpoint=target.endpoint, operation=operation,
                        attempt=attempt_no, wait=round(wait, 2), error=str(error))

        return call_with_retries(attempt, policy=self.settings.retry_policy(),
                                 deadline=deadline, sleep=self.retry_sleep, on_retry=on_retry)

    # -- the work of each step kind -------------------------------------------------------
    def _wait_for(self, chassis: Chassis, state: str, timeout: float, deadline: float,
                  cancelled: threading.Event) -> str:
        start = time.monotonic()
        limit = min(start + timeout, deadline)
        while True:
            power = chassis.power()
            if power == state:
                return power
            if time.monotonic() >= limit:
                raise StepTimeoutError(
                    f"waiting for power {state}: still {power} after "
                    f"{time.monotonic() - start:.0f} s", endpoint=chassis.endpoint,
                    operation=chassis.operation)
            if cancelled.wait(min(self.settings.poll_interval,
                                  max(limit - time.monotonic(), 0.0))):
                raise StepTimeoutError("cancelled", endpoint=chassis.endpoint,
                                       operation=chassis.operation)

    def _power(self, chassis: Chassis, inputs: Mapping[str, Any], deadline: float,
               cancelled: threading.Event) -> dict[str, Any]:
        wanted = str(inputs["state"])
        before = chassis.power()
        timeout = float(inputs.get("timeout") or self.settings.power_timeout)
        action = None
        if wanted == "on" and before != "on":
            action = "on"
        elif wanted == "off" and before != "off":
            action = "off"
        elif wanted == "graceful-off" and before != "off":
            action = "soft"
        elif wanted == "restart":
            action = "reset" if before == "on" else "on"
        if action:
            chassis.control(action)
        target = "off" if wanted in ("off", "graceful-off") else "on"
        forced = False
        if action == "soft":
            try:
                power = self._wait_for(chassis, "off", float(
                    inputs.get("graceful_timeout") or self.settings.graceful_timeout),
                    deadline, cancelled)
            except StepTimeoutError:
                if not inputs.get("force_after_graceful"):
                    raise
                chassis.control("off")
                forced = True
                power = self._wait_for(chassis, "off", timeout, deadline, cancelled)
        else:
            power = self._wait_for(chassis, target, timeout, deadline, cancelled)
        return {"state": wanted, "before": before, "action": action, "power": power,
                "forced": forced}

    def _wait_power(self, chassis: Chassis, inputs: Mapping[str, Any], deadline: float,
                    cancelled: threading.Event) -> dict[str, Any]:
        timeout = float(inputs.get("timeout") or self.settings.power_timeout)
        power = self._wait_for(chassis, str(inputs["state"]), timeout, deadline, cancelled)
        return {"state": inputs["state"], "power": power}

    def _boot_device(self, chassis: Chassis, inputs: Mapping[str, Any], deadline: float,
                     cancelled: threading.Event) -> dict[str, Any]:
        device = str(inputs["device"])
        persistent = inputs.get("persistence", "once") == "continuous"
        chassis.set_boot(device, persistent, inputs.get("mode") == "uefi")
        readback = chassis.boot()
        # Many BMCs (virtualbmc among them, for a running guest) report the override only
        # after the next boot: a differing read-back is reported, not failed.
        return {"device": device, "persistence": "continuous" if persistent else "once",
                "mode": inputs.get("mode"), "readback": readback,
                "confirmed": readback.get("device") == device}

    def read(self, step: Step, outputs: Mapping[str, Any]) -> Observed:
        """Power steps report the power state now (drift when it differs); others exist."""
        if step.kind != "ipmi.power":
            return Observed(exists=True, outputs=outputs)
        inputs = resolve_inputs(step.inputs)
        observed = self.run("ipmi.read_power", inputs,
                            lambda chassis, _i, _d, _c: {"power": chassis.power()},
                            deadline=time.monotonic() + self.settings.retry_total_seconds)
        wanted = "off" if inputs.get("state") in ("off", "graceful-off") else "on"
        drift = {} if observed["power"] == wanted else {
            "state": f"power is {observed['power']}, the step left it {wanted}"}
        return Observed(exists=True, drift=drift, outputs={**outputs, **observed})
