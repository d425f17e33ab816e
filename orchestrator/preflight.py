"""Static preflight checks: decided at plan time from the profile, parameters and inventory.

Checks that need the machines themselves (kernel command line, CPU flags, nested KVM) are
``check.*`` components that run as steps. The static ones here guard against the cons a
profile's stack is known for (a Ceph cluster below quorum, a node without the hardware the
stack needs) before anything is touched. A failed static check stops planning.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator import model
from orchestrator.errors import SourceError, SourceErrors
from orchestrator.loader import Loaded
from orchestrator.plan import Finding, FindingStatus

Checker = Callable[[Loaded, dict[str, Any]], tuple[FindingStatus, str]]
CHECKS: dict[str, tuple[str, Checker]] = {}


def check(name: str, description: str) -> Callable[[Checker], Checker]:
    def deco(fn: Checker) -> Checker:
        CHECKS[name] = (description, fn)
        return fn
    return deco


def _count(loaded: Loaded, role: str) -> int:
    if role not in loaded.nodes:
        raise KeyError(role)
    return len(loaded.nodes[role])


@check("min_nodes", "a role has at least `min` nodes (quorum, replication)")
def _min_nodes(loaded: Loaded, w: dict[str, Any]) -> tuple[FindingStatus, str]:
    n, need = _count(loaded, w["role"]), int(w["min"])
    status = FindingStatus.OK if n >= need else FindingStatus.FAIL
    return status, f"{w['role']}: {n} node(s), need ≥ {need}"


@check("odd_nodes", "a role has an odd number of nodes (Raft/Paxos majority)")
def _odd_nodes(loaded: Loaded, w: dict[str, Any]) -> tuple[FindingStatus, str]:
    n = _count(loaded, w["role"])
    status = FindingStatus.OK if n % 2 == 1 else FindingStatus.WARN
    return status, f"{w['role']}: {n} node(s)" + ("" if n % 2 else " (even: no tie-breaker)")


@check("max_nodes", "a role has at most `max` nodes (a platform limit)")
def _max_nodes(loaded: Loaded, w: dict[str, Any]) -> tuple[FindingStatus, str]:
    n, limit = _count(loaded, w["role"]), int(w["max"])
    status = FindingStatus.OK if n <= limit else FindingStatus.FAIL
    return status, f"{w['role']}: {n} node(s), limit {limit}"


@check("hardware", "the role's hardware shape meets minimums (cpu, memory_gib, disks, nics)")
def _hardware(loaded: Loaded, w: dict[str, Any]) -> tuple[FindingStatus, str]:
    role = loaded.profile.roles[w["role"]]
    hw = role.hardware
    problems = []
    if hw.cpu < int(w.get("cpu", 0)):
        problems.append(f"cpu {hw.cpu} < {w['cpu']}")
    if hw.memory_gib < int(w.get("memory_gib", 0)):
        problems.append(f"memory {hw.memory_gib} GiB < {w['memory_gib']}")
    disk_role = w.get("disk_role")
    if disk_role and not any(d.role == disk_role for d in hw.disks):
        problems.append(f"no disk with role {disk_role}")
    nics = sum(n.count for n in hw.nics)
    if nics < int(w.get("nics", 0)):
        problems.append(f"{nics} NIC(s) < {w['nics']}")
    hosts = [n.host for n in loaded.nodes.get(w["role"], [])]
    declared = [h for h in hosts if h.hardware is not None]
    for h in declared:
        assert h.hardware is not None
        if h.hardware.cpu < hw.cpu or h.hardware.memory_gib < hw.memory_gib:
            problems.append(f"host {h.name} has {h.hardware.cpu} cpu / "
                            f"{h.hardware.memory_gib} GiB, role wants {hw.cpu} / "
                            f"{hw.memory_gib}")
    if problems:
        return FindingStatus.FAIL, f"{w['role']}: " + "; ".join(problems)
    return FindingStatus.OK, (f"{w['role']}: {hw.cpu} cpu, {hw.memory_gib} GiB, "
                              f"{len(hw.disks)} disk kind(s), {nics} NIC(s)")


@check("features", "the role's hardware declares CPU/platform features (vt-x, iommu, sriov)")
def _features(loaded: Loaded, w: dict[str, Any]) -> tuple[FindingStatus, str]:
    role = loaded.profile.roles[w["role"]]
    want = list(w.get("any_of", [])) or list(w.get("all_of", []))
    have = set(role.hardware.features)
    ok = bool(have & set(want)) if w.get("any_of") else set(want) <= have
    return (FindingStatus.OK if ok else FindingStatus.FAIL,
            f"{w['role']}: needs {'any of' if w.get('any_of') else 'all of'} "
            f"{', '.join(want)}; declared {', '.join(sorted(have)) or 'none'}")


@check("note", "a con of the stack that no check can decide; shown in every plan")
def _note(loaded: Loaded, w: dict[str, Any]) -> tuple[FindingStatus, str]:
    return FindingStatus.INFO, str(w.get("text", ""))


def evaluate(loaded: Loaded) -> list[Finding]:
    """Run every static check; raise SourceErrors (located) for checks that failed."""
    findings: list[Finding] = []
    errors: list[SourceError] = []
    smap = loaded.profile_source
    for i, chk in enumerate(loaded.profile.preflight):
        path = ("preflight", i)
        entry = CHECKS.get(chk.type)
        if entry is None:
            errors.append(SourceError(f"unknown preflight check {chk.type!r}",
                                      location=smap.locate((*path, "type")),
                                      expected=", ".join(sorted(CHECKS)), found=chk.type))
            continue
        try:
            status, detail = entry[1](loaded, dict(chk.with_))
        except KeyError as exc:
            errors.append(SourceError(f"preflight {chk.type}: missing or unknown {exc}",
                                      location=smap.locate((*path, "with")),
                                      expected=entry[0]))
            continue
        name = chk.name or chk.type
        text = f"{detail} — {chk.why}" if chk.why else detail
        findings.append(Finding(name, status, text, str(smap.locate(path))))
        if status is FindingStatus.FAIL:
            errors.append(SourceError(f"preflight {name} failed: {detail}",
                                      location=smap.locate(path),
                                      hint=chk.why or "fix the profile or its parameters"))
    if errors:
        raise SourceErrors(errors)
    return findings


def describe() -> list[tuple[str, str]]:
    return sorted((name, desc) for name, (desc, _) in CHECKS.items())


__all__ = ["CHECKS", "describe", "evaluate", "model"]
