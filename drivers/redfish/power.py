"""Power: on, off, graceful-off, restart, each confirmed by reading the state back; and
waiting for a power state the host reaches on its own (an installer powering off).

Every change first reads the state and does nothing when it already holds, so a retried
attempt never repeats a reset the BMC already carried out.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from drivers.redfish.context import OperationContext
from orchestrator.errors import PermanentError


class PowerState(enum.StrEnum):
    ON = "on"
    OFF = "off"
    GRACEFUL_OFF = "graceful-off"
    RESTART = "restart"


# Redfish ResetType values per requested state, in order of preference.
RESET_TYPES = {
    PowerState.ON: ("On", "ForceOn"),
    PowerState.OFF: ("ForceOff",),
    PowerState.GRACEFUL_OFF: ("GracefulShutdown",),
    PowerState.RESTART: ("ForceRestart", "GracefulRestart", "PowerCycle"),
}


def parse_state(value: object, allowed: tuple[PowerState, ...] = tuple(PowerState)) -> PowerState:
    try:
        state = PowerState(str(value))
    except ValueError:
        state = None
    if state is None or state not in allowed:
        raise PermanentError(f"state {value!r} is not one of "
                             f"{', '.join(s.value for s in allowed)}", operation="redfish.power")
    return state


def read_power(system: Any) -> str:
    """'on', 'off', 'powering on', ... as the BMC reports it now."""
    system.refresh(force=True)
    state = system.power_state
    return str(getattr(state, "value", state) or "unknown").lower()


def _reset(system: Any, ctx: OperationContext, wanted: PowerState) -> str:
    """Send the first reset type the BMC advertises for ``wanted``; refuse when none is."""
    allowed = {str(getattr(v, "value", v)) for v in system.get_allowed_reset_system_values()}
    for reset in RESET_TYPES[wanted]:
        if reset in allowed:
            ctx.log.info("redfish.reset", endpoint=ctx.endpoint, reset_type=reset)
            from sushy import ResetType

            system.reset_system(ResetType(reset))
            return reset
    raise PermanentError(f"the BMC offers no reset type for {wanted.value!r} (wanted one of "
                         f"{', '.join(RESET_TYPES[wanted])}; it offers "
                         f"{', '.join(sorted(allowed)) or 'none'})",
                         endpoint=ctx.endpoint, operation=ctx.operation)


def _wait_for(system: Any, ctx: OperationContext, state: str, timeout: float,
              tolerate_transient: bool = False) -> str:
    return ctx.wait_until(lambda: read_power(system), lambda s: s == state, timeout=timeout,
                          what=f"waiting for power {state}",
                          tolerate_transient=tolerate_transient)


def set_power(system: Any, inputs: Mapping[str, Any], ctx: OperationContext) -> dict[str, Any]:
    """Bring the system to ``inputs["state"]``; outputs what was done and the read-back."""
    wanted = parse_state(inputs.get("state"))
    before = read_power(system)
    timeout = float(inputs.get("timeout") or ctx.settings.power_timeout)
    out: dict[str, Any] = {"state": wanted.value, "before": before, "reset_type": None}
    if wanted is PowerState.ON and before != "on":
        out["reset_type"] = _reset(system, ctx, wanted)
    elif wanted in (PowerState.OFF, PowerState.GRACEFUL_OFF) and before != "off":
        out["reset_type"] = _reset(system, ctx, wanted)
        if wanted is PowerState.GRACEFUL_OFF:
            return {**out, **_finish_graceful(system, inputs, ctx)}
    elif wanted is PowerState.RESTART:
        out["reset_type"] = _reset(system, ctx, wanted if before == "on" else PowerState.ON)
    target = "off" if wanted in (PowerState.OFF, PowerState.GRACEFUL_OFF) else "on"
    out["power"] = _wait_for(system, ctx, target, timeout)
    out["forced"] = False
    return out


def _finish_graceful(system: Any, inputs: Mapping[str, Any],
                     ctx: OperationContext) -> dict[str, Any]:
    """Wait for the OS to power off; force it off after the timeout when the step allows."""
    from orchestrator.errors import StepTimeoutError

    timeout = float(inputs.get("graceful_timeout") or ctx.settings.graceful_timeout)
    try:
        return {"power": _wait_for(system, ctx, "off", timeout), "forced": False}
    except StepTimeoutError:
        if not inputs.get("force_after_graceful"):
            raise
    ctx.log.warning("redfish.graceful_timeout", endpoint=ctx.endpoint, seconds=timeout)
    reset = _reset(system, ctx, PowerState.OFF)
    power = _wait_for(system, ctx, "off", ctx.settings.power_timeout)
    return {"power": power, "forced": True, "reset_type": reset}


def wait_power(system: Any, inputs: Mapping[str, Any], ctx: OperationContext) -> dict[str, Any]:
    """Wait, without acting, until the system reaches ``inputs["state"]`` (on or off)."""
    wanted = parse_state(inputs.get("state"), (PowerState.ON, PowerState.OFF))
    timeout = float(inputs.get("timeout") or ctx.settings.power_timeout)
    power = _wait_for(system, ctx, wanted.value, timeout, tolerate_transient=True)
    return {"state": wanted.value, "power": power}
