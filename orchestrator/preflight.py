"""Preflight: static checks decided at plan time, and readiness checks before acting.

Static checks (``preflight:`` in a profile) read the profile, parameters and inventory.
Readiness (:func:`readiness`) asks whether this machine can carry the plan out: every driver
the plan needs is importable (the missing pip extra named), every secret reference resolves
(existence and readability only: a value is never read into the plan), hosts have addresses
(an inventory was given), and every plug-in loaded. Its FAIL findings are shown in the plan
and make ``orch apply`` refuse before anything is touched (:func:`blocking`).

Checks that need the machines themselves (kernel command line, CPU flags, nested KVM) are
``check.*`` components that run as steps. The static ones here guard against the cons a
profile's stack is known for (a Ceph cluster below quorum, a node without the hardware the
stack needs) before anything is touched. A failed static check stops planning.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator import model
from orchestrator.errors import SourceError, SourceErrors
from orchestrator.loader import Loaded
from orchestrator.plan import Finding, FindingStatus, Plan
from orchestrator.secrets import SECRET_KEY, is_ref_value
from orchestrator.step import EXTERNAL

if TYPE_CHECKING:
    from orchestrator.driver import DriverRegistry

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
            from orchestrator.suggest import did_you_mean
            errors.append(SourceError(f"unknown preflight check {chk.type!r}",
                                      location=smap.locate((*path, "type")),
                                      expected=", ".join(sorted(CHECKS)), found=chk.type,
                                      hint=did_you_mean(chk.type, CHECKS)))
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


# -- readiness: can this machine carry the plan out? -----------------------------------
#: drivers that never contact a host, so a plan of theirs needs no inventory
HOSTLESS_DRIVERS = frozenset({"fake", EXTERNAL})


def readiness(plan: Plan, drivers: DriverRegistry, *, base_dir: Path | None = None,
              plugin_errors: Mapping[str, str] | None = None,
              environ: Mapping[str, str] | None = None) -> list[Finding]:
    """What would stop ``plan`` half-way on this machine, as findings (FAIL blocks apply)."""
    changing = [p.step for p in plan if p.action.changes]
    env = os.environ if environ is None else environ
    found = _inventory_given(plan, changing)
    found += _drivers_importable(sorted({s.driver for s in changing} - {EXTERNAL}), drivers)
    refs: dict[str, list[str]] = {}
    for step in changing:
        for r in _refs(step.inputs):
            refs.setdefault(r, []).append(step.id)
    for settings in plan.driver_settings.values():
        for r in _refs(settings):
            refs.setdefault(r, []).append("driver settings")
    found += [_secret_finding(r, users, base_dir, env) for r, users in sorted(refs.items())]
    found += [Finding(f"plug-in {name}", FindingStatus.WARN, f"failed to load: {error}",
                      "orch.components") for name, error in sorted((plugin_errors or {}).items())]
    return found


def with_readiness(plan: Plan, drivers: DriverRegistry, *, base_dir: Path | None = None,
                   plugin_errors: Mapping[str, str] | None = None) -> Plan:
    """``plan`` with its readiness findings added (for review; apply checks again)."""
    extra = readiness(plan, drivers, base_dir=base_dir, plugin_errors=plugin_errors)
    return replace(plan, findings=(*plan.findings, *extra))


def blocking(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.status is FindingStatus.FAIL]


def _inventory_given(plan: Plan, steps: list[Any]) -> list[Finding]:
    if plan.inventory_path:
        return []
    hosted = [s for s in steps if s.node is not None and s.driver not in HOSTLESS_DRIVERS]
    if not hosted:
        return []
    drivers = ", ".join(sorted({s.driver for s in hosted}))
    return [Finding("inventory", FindingStatus.FAIL,
                    f"no inventory (-i): {len(hosted)} step(s) on nodes ({drivers}) need host "
                    "addresses, BMCs and credentials; give -i INVENTORY", "-i")]


def _drivers_importable(names: list[str], drivers: DriverRegistry) -> list[Finding]:
    out = []
    for name in names:
        info = drivers.info(name)
        if info.error:
            out.append(Finding(f"driver {name}", FindingStatus.FAIL,
                               f"cannot be loaded: {info.error}", name))
        elif info.missing:
            out.append(Finding(f"driver {name}", FindingStatus.FAIL,
                               f"missing Python module(s) {', '.join(info.missing)}: "
                               f"{install_hint(name, info.missing)}", name))
    return out


def install_hint(driver: str, missing: Iterable[str]) -> str:
    """The command that installs what ``driver`` lacks: orch's extra of that name, if any."""
    from orchestrator import distribution_extras
    dist, extras = distribution_extras()
    if driver in extras:
        return f"pip install '{dist}[{driver}]' (in a checkout: pip install -e '.[{driver}]')"
    return "pip install " + " ".join(missing)


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, Mapping):
        if is_ref_value(value):
            yield str(value[SECRET_KEY])
            return
        for v in value.values():
            yield from _refs(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _refs(v)


def _secret_finding(reference: str, users: list[str], base_dir: Path | None,
                    env: Mapping[str, str]) -> Finding:
    """Whether ``reference`` resolves here, without reading the value."""
    scheme, _, rest = reference.partition(":")
    used = f"used by {users[0]}" + (f" and {len(users) - 1} more" if len(users) > 1 else "")
    name = f"secret {reference}"
    if scheme == "env":
        if rest in env:
            return Finding(name, FindingStatus.OK, f"set ({used})", reference)
        return Finding(name, FindingStatus.FAIL, f"not set ({used}): export {rest}=… "
                       "before orch apply", reference)
    if scheme == "published":  # written by an earlier step of the run (planning checks order)
        return Finding(name, FindingStatus.OK, f"published by an earlier step ({used})",
                       reference)
    path = Path(os.path.expanduser(rest))
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if path.is_file() and os.access(path, os.R_OK):
        return Finding(name, FindingStatus.OK, f"readable ({used})", reference)
    why = "not readable" if path.exists() else "does not exist"
    return Finding(name, FindingStatus.FAIL, f"{path} {why} ({used})", reference)


def describe() -> list[tuple[str, str]]:
    return sorted((name, desc) for name, (desc, _) in CHECKS.items())


__all__ = ["CHECKS", "blocking", "describe", "evaluate", "model", "readiness", "with_readiness"]
