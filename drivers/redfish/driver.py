"""The Redfish driver: power, boot device, virtual media, inventory and BIOS through sushy.

One operation per step: open a bounded client, find the system the host's ``bmc.system``
names, do the step kind's work, close. A transient failure (connection, timeout, 5xx, 409)
retries the whole operation under a bounded tenacity policy; every step's work first reads
the current state, so a retried attempt does not repeat what already happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from drivers.redfish import bios, boot, inventory, media, power
from drivers.redfish.context import OperationContext
from drivers.redfish.session import BmcTarget, close_client, find_system, open_client
from drivers.redfish.settings import RedfishSettings
from orchestrator.driver import ApplyRequest, ApplyResult, Driver, Observed
from orchestrator.errors import DriverError, NotSupportedError
from orchestrator.plan import Action
from orchestrator.retry import call_with_retries
from orchestrator.secrets import resolve_inputs
from orchestrator.step import Step

Handler = Callable[[Any, Mapping[str, Any], OperationContext], dict[str, Any]]


def _check_power(inputs: Mapping[str, Any]) -> None:
    power.parse_state(inputs.get("state"))


def _check_wait(inputs: Mapping[str, Any]) -> None:
    power.parse_state(inputs.get("state"), (power.PowerState.ON, power.PowerState.OFF))


def _check_boot(inputs: Mapping[str, Any]) -> None:
    boot.BootRequest.from_inputs(inputs)


def _no_check(_inputs: Mapping[str, Any]) -> None:
    return None


# step kind -> (input check run before any request, work done against the system)
HANDLERS: dict[str, tuple[Callable[[Mapping[str, Any]], None], Handler]] = {
    "redfish.power": (_check_power, power.set_power),
    "redfish.wait_power": (_check_wait, power.wait_power),
    "redfish.boot_device": (_check_boot, boot.set_boot_device),
    "redfish.virtual_media": (media.check_inputs, media.virtual_media),
    "redfish.inventory": (_no_check, inventory.inventory),
    "redfish.bios": (_no_check, bios.bios),
}


class _NullLog:
    def __getattr__(self, _name: str) -> Callable[..., None]:
        return lambda *_a, **_k: None


class RedfishDriver(Driver):
    name = "redfish"
    description = "Bare-metal power, boot device, virtual media, inventory and BIOS via Redfish"
    step_kinds: ClassVar[Mapping[str, str]] = {
        "redfish.power": "state on|off|graceful-off|restart, confirmed by reading it back",
        "redfish.wait_power": "wait until the host reaches state on|off by itself (timeout)",
        "redfish.boot_device": "device pxe|disk|cd, persistence once|continuous, mode uefi|legacy",
        "redfish.virtual_media": "action insert (url, boot_once) or eject of a CD/USB image",
        "redfish.inventory": "CPU count, memory, NIC MACs compared with the host's hardware",
        "redfish.bios": "set BIOS attributes (staged for the next boot)",
    }
    settings_type = RedfishSettings
    requires = ("sushy",)
    endpoint_concurrency = 1  # one BMC must not get concurrent requests

    settings: RedfishSettings

    def __init__(self, settings: RedfishSettings | None = None) -> None:
        super().__init__(settings)
        #: Sleep between retries; tests replace it so that they do not wait.
        self.retry_sleep: Callable[[float], None] = time.sleep

    def apply(self, request: ApplyRequest) -> ApplyResult:
        kind = request.step.kind
        if kind not in HANDLERS:
            raise NotSupportedError(f"unknown step kind {kind}", operation=kind,
                                    endpoint=request.step.endpoint or "-")
        if request.action is Action.DELETE:
            return ApplyResult({})  # nothing on a BMC is "created"; forgetting it is enough
        check, handler = HANDLERS[kind]
        check(request.inputs)
        outputs = self.run(kind, request.inputs, handler, deadline=request.deadline,
                           log=request.log, report=request.report,
                           cancelled=request.cancelled)
        return ApplyResult(outputs)

    def run(self, operation: str, inputs: Mapping[str, Any], handler: Handler, *,
            deadline: float, log: Any = None, report: Callable[[str], None] | None = None,
            cancelled: Any = None) -> dict[str, Any]:
        """Run ``handler`` against the host's system with bounded retries."""
        target = BmcTarget.from_inputs(inputs)
        log = log if log is not None else _NullLog()
        ctx = OperationContext(self.settings, target.endpoint, operation, deadline, log,
                               secrets=(target.password,))
        if report is not None:
            ctx.report = report
        if cancelled is not None:
            ctx.cancelled = cancelled

        def attempt() -> dict[str, Any]:
            client = None
            try:
                client = open_client(target, self.settings)
                system = find_system(client, target.system)
                return {"system": system.identity, **handler(system, inputs, ctx)}
            except DriverError as exc:
                exc.endpoint = target.endpoint
                raise
            except Exception as exc:
                raise ctx.translate(exc) from None
            finally:
                if client is not None:
                    close_client(client)

        def on_retry(attempt_no: int, error: BaseException, wait: float) -> None:
            log.warning("redfish.retry", endpoint=target.endpoint, operation=operation,
                        attempt=attempt_no, wait=round(wait, 2), error=str(error))
            ctx.report(f"{error} (attempt {attempt_no}, next in {wait:.1f} s)")

        return call_with_retries(attempt, policy=self.settings.retry_policy(),
                                 deadline=deadline, sleep=self.retry_sleep, on_retry=on_retry)

    def read(self, step: Step, outputs: Mapping[str, Any]) -> Observed:
        """Power steps report the power state now (drift when it differs); others exist."""
        if step.kind != "redfish.power" or step.inputs.get("passing"):
            return Observed(exists=True, outputs=outputs)  # nothing held to drift from
        inputs = resolve_inputs(step.inputs)
        observed = self.run("redfish.read_power", inputs,
                            lambda system, _i, _c: {"power": power.read_power(system)},
                            deadline=time.monotonic() + self.settings.retry_total_seconds)
        wanted = "off" if inputs.get("state") in ("off", "graceful-off") else "on"
        drift = {} if observed["power"] == wanted else {
            "state": f"power is {observed['power']}, the step left it {wanted}"}
        return Observed(exists=True, drift=drift, outputs={**outputs, **observed})
