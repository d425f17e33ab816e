"""Boot device override: pxe, disk or cd; once or continuous; uefi or legacy mode.

A value the BMC does not advertise is refused before anything is sent, naming what it
does advertise (as sushy's ``reset_system()`` refuses an unlisted reset type). The override
is read back after it is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from drivers.redfish.context import OperationContext
from orchestrator.errors import NotSupportedError, PermanentError, TransientError

DEVICES = {"pxe": "Pxe", "disk": "Hdd", "cd": "Cd"}
PERSISTENCE = {"once": "Once", "continuous": "Continuous"}
MODES = {"uefi": "UEFI", "legacy": "Legacy"}


@dataclass(frozen=True)
class BootRequest:
    device: str
    persistence: str
    mode: str | None

    @classmethod
    def from_inputs(cls, inputs: Mapping[str, Any]) -> BootRequest:
        # bmc.boot_device documents device: disk as its default, and the engine leaves a
        # component's defaults out of step inputs: absent means disk.
        device = str(inputs.get("device") or "disk")
        # The bmc.boot_device and os.install components say `once: true|false`.
        default = "once" if inputs.get("once", True) else "continuous"
        persistence = str(inputs.get("persistence") or default)
        mode = inputs.get("mode") or None  # "" (the component default): leave the mode
        for key, value, known in (("device", device, DEVICES),
                                  ("persistence", persistence, PERSISTENCE)):
            if value not in known:
                raise PermanentError(f"{key} {value!r} is not one of {', '.join(known)}",
                                     operation="redfish.boot_device")
        if mode is not None and mode not in MODES:
            raise PermanentError(f"mode {mode!r} is not one of {', '.join(MODES)}",
                                 operation="redfish.boot_device")
        return cls(device, persistence, mode)


def _advertised(boot: Mapping[str, Any], prop: str) -> list[str] | None:
    """The AllowableValues of ``prop``; None when the BMC lists none (all are allowed)."""
    values = boot.get(f"{prop}@Redfish.AllowableValues")
    return [str(v) for v in values] if isinstance(values, list) else None


def check_advertised(system: Any, request: BootRequest, ctx: OperationContext) -> None:
    """Raise PermanentError unless the BMC advertises every value ``request`` would send."""
    boot = (system.json or {}).get("Boot") or {}
    wanted = [("BootSourceOverrideTarget", DEVICES[request.device]),
              ("BootSourceOverrideEnabled", PERSISTENCE[request.persistence])]
    if request.mode is not None:
        if "BootSourceOverrideMode" not in boot:
            raise NotSupportedError(
                f"mode {request.mode!r} cannot be set: the BMC does not advertise "
                f"BootSourceOverrideMode for this system", endpoint=ctx.endpoint,
                operation=ctx.operation, hint="leave mode out of the step")
        wanted.append(("BootSourceOverrideMode", MODES[request.mode]))
    for prop, value in wanted:
        allowed = _advertised(boot, prop)
        if allowed is not None and value not in allowed:
            raise PermanentError(
                f"{prop} {value!r} is not advertised by the BMC; allowed values: "
                f"{', '.join(allowed)}", endpoint=ctx.endpoint, operation=ctx.operation)


def set_boot_device(system: Any, inputs: Mapping[str, Any],
                    ctx: OperationContext) -> dict[str, Any]:
    request = BootRequest.from_inputs(inputs)
    system.refresh(force=True)
    check_advertised(system, request, ctx)
    send_boot_options(system, request)
    return read_back(system, request, ctx)


def send_boot_options(system: Any, request: BootRequest) -> None:
    import sushy

    system.set_system_boot_options(
        target=sushy.BootSource(DEVICES[request.device]),
        enabled=sushy.BootSourceOverrideEnabled(PERSISTENCE[request.persistence]),
        mode=sushy.BootSourceOverrideMode(MODES[request.mode]) if request.mode else None)


def read_back(system: Any, request: BootRequest, ctx: OperationContext) -> dict[str, Any]:
    system.refresh(force=True)
    boot = (system.json or {}).get("Boot") or {}
    target = boot.get("BootSourceOverrideTarget")
    if target != DEVICES[request.device]:
        # Some BMCs apply a PATCH a moment later; a retried attempt sets it again.
        raise TransientError(f"boot target reads back {target!r}, not "
                             f"{DEVICES[request.device]!r}", endpoint=ctx.endpoint,
                             operation=ctx.operation)
    return {"device": request.device, "persistence": request.persistence,
            "mode": request.mode, "target": target,
            "enabled": boot.get("BootSourceOverrideEnabled"),
            "boot_mode": boot.get("BootSourceOverrideMode")}
