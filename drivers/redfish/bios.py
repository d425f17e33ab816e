"""BIOS attributes: set those that differ, refusing a name the BIOS does not list.

Changes are staged by the BMC and take effect at the next boot; the outputs say which are
pending so a following power step can restart the host.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drivers.redfish.context import OperationContext
from orchestrator.errors import NotSupportedError, PermanentError


def bios(system: Any, inputs: Mapping[str, Any], ctx: OperationContext) -> dict[str, Any]:
    from sushy import exceptions as sx

    wanted = inputs.get("attributes") or {}
    if not isinstance(wanted, Mapping) or not wanted:
        raise PermanentError("attributes must be a non-empty mapping",
                             endpoint=ctx.endpoint, operation=ctx.operation)
    try:
        resource = system.bios
    except (sx.MissingAttributeError, sx.ResourceNotFoundError):
        raise NotSupportedError("the BMC exposes no BIOS resource for this system",
                                endpoint=ctx.endpoint, operation=ctx.operation) from None
    resource.refresh(force=True)
    current = dict(resource.attributes or {})
    unknown = sorted(set(wanted) - set(current))
    if unknown:
        raise PermanentError(f"BIOS has no attribute(s) {', '.join(unknown)}; it lists: "
                             f"{', '.join(sorted(current)) or 'none'}",
                             endpoint=ctx.endpoint, operation=ctx.operation)
    changes = {k: v for k, v in wanted.items() if current.get(k) != v}
    pending = dict(getattr(resource, "pending_attributes", None) or {})
    to_send = {k: v for k, v in changes.items() if pending.get(k) != v}
    if to_send:
        resource.set_attributes(to_send)
        resource.refresh(force=True)
        pending = dict(resource.pending_attributes or {})
    return {"changed": sorted(changes), "pending": sorted(k for k in changes if k in pending),
            "reboot_required": bool(changes)}
