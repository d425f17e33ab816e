"""Inventory: what the BMC reports (CPUs, memory, NIC MACs) against the profile's hardware.

Mismatches are reported in the outputs and logged; with ``strict: true`` they fail the step
permanently (the hardware will not change by trying again).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drivers.redfish.context import OperationContext
from orchestrator.errors import PermanentError


def observe(system: Any) -> dict[str, Any]:
    from sushy import exceptions as sx

    system.refresh(force=True)
    raw = system.json or {}
    cpus = (raw.get("ProcessorSummary") or {}).get("Count")
    if cpus is None:
        cpus = system.processors.summary.count
    memory = (raw.get("MemorySummary") or {}).get("TotalSystemMemoryGiB")
    try:
        macs = sorted(str(m).lower() for m in system.ethernet_interfaces.summary)
    except sx.MissingAttributeError:
        macs = []
    return {"cpu": cpus, "memory_gib": memory, "macs": macs,
            "manufacturer": raw.get("Manufacturer"), "model": raw.get("Model"),
            "serial": raw.get("SerialNumber"), "system": system.identity}


def compare(observed: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """One line per difference between the profile's ``hardware`` and what was observed."""
    problems = []
    for key in ("cpu", "memory_gib"):
        want = expected.get(key)
        if want is not None and observed.get(key) is not None and \
                float(observed[key]) != float(want):
            problems.append(f"{key}: profile wants {want}, BMC reports {observed[key]}")
        elif want is not None and observed.get(key) is None:
            problems.append(f"{key}: profile wants {want}, BMC does not report it")
    want_macs = [str(m).lower() for m in expected.get("macs") or ()]
    missing = sorted(set(want_macs) - set(observed.get("macs") or ()))
    if missing:
        problems.append(f"macs: {', '.join(missing)} not found on the system")
    nics = expected.get("nics")
    if isinstance(nics, int) and len(observed.get("macs") or ()) != nics:
        problems.append(f"nics: profile wants {nics}, BMC reports "
                        f"{len(observed.get('macs') or ())}")
    return problems


def inventory(system: Any, inputs: Mapping[str, Any], ctx: OperationContext) -> dict[str, Any]:
    observed = observe(system)
    expected = (inputs.get("host") or {}).get("hardware") or {}
    mismatches = compare(observed, expected)
    for line in mismatches:
        ctx.log.warning("redfish.inventory_mismatch", endpoint=ctx.endpoint, detail=line)
    if mismatches and inputs.get("strict"):
        raise PermanentError("hardware differs from the profile: " + "; ".join(mismatches),
                             endpoint=ctx.endpoint, operation=ctx.operation)
    return {"observed": observed, "mismatches": mismatches}
