"""Runtime preflight checks: one read-only command each, and a pure judgement of its output.

Each check names the command it runs (``COMMANDS``) and a function that takes the step
inputs and the command's stdout and returns what it found, or raises :class:`CheckFailed`
with what was expected and what was found.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from typing import Any


class CheckFailed(Exception):
    def __init__(self, expected: str, found: str) -> None:
        self.expected = expected
        self.found = found
        super().__init__(f"expected {expected}; found {found}")


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


# -- kernel command line -------------------------------------------------------------
def kernel_cmdline(inputs: Mapping[str, Any], stdout: str) -> str:
    """``contains``: tokens (``iommu=pt``) or bare parameter names (``intel_iommu``)."""
    tokens = stdout.split()
    names = {t.split("=", 1)[0] for t in tokens}
    wanted = _as_list(inputs.get("contains"))
    missing = [w for w in wanted if w not in tokens and ("=" in w or w not in names)]
    if missing:
        raise CheckFailed(f"kernel command line containing {', '.join(missing)}",
                          _short(stdout) or "(empty)")
    return _short(stdout)


# -- CPU flags -----------------------------------------------------------------------
def cpu_flags(inputs: Mapping[str, Any], stdout: str) -> str:
    """``any_of`` and/or ``all_of`` lists of /proc/cpuinfo flags (``vmx``, ``svm``)."""
    flags: set[str] = set()
    for line in stdout.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags = set(value.split())
            break
    any_of, all_of = _as_list(inputs.get("any_of")), _as_list(inputs.get("all_of"))
    relevant = sorted(flags & set(any_of + all_of)) or ["none of them"]
    if any_of and not flags & set(any_of):
        raise CheckFailed(f"a CPU flag among {', '.join(any_of)}",
                          f"{', '.join(relevant)} ({len(flags)} flags)")
    missing = [f for f in all_of if f not in flags]
    if missing:
        raise CheckFailed(f"CPU flags {', '.join(all_of)}",
                          f"{', '.join(missing)} missing ({len(flags)} flags)")
    return ", ".join(relevant)


# -- nested KVM ----------------------------------------------------------------------
NESTED_MODULES = ("kvm_intel", "kvm_amd")


def kvm_nested(inputs: Mapping[str, Any], stdout: str) -> str:
    """Passes when kvm_intel or kvm_amd (or ``module``) reports nested=Y or 1."""
    values = dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)
    modules = _as_list(inputs.get("module")) or list(NESTED_MODULES)
    found = ", ".join(f"{m}: nested={values[m]}" if values.get(m) else f"{m}: not loaded"
                      for m in modules)
    if not any(values.get(m, "").strip() in ("Y", "1") for m in modules):
        raise CheckFailed(f"nested=Y or 1 on {' or '.join(modules)}", found)
    return found


def kvm_nested_command(inputs: Mapping[str, Any]) -> str:
    modules = _as_list(inputs.get("module")) or list(NESTED_MODULES)
    return "; ".join(
        f"echo {m}=$(cat /sys/module/{shlex.quote(m)}/parameters/nested 2>/dev/null)"
        for m in modules)


# -- sysctl --------------------------------------------------------------------------
def sysctl(inputs: Mapping[str, Any], stdout: str) -> str:
    """``values``: {"net.ipv4.ip_forward": 1}; compared with whitespace normalised."""
    found = dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)
    wanted = {str(k): " ".join(str(v).split()) for k, v in (inputs.get("values") or {}).items()}
    wrong = {k: v for k, v in wanted.items() if " ".join(found.get(k, "").split()) != v}
    if wrong:
        raise CheckFailed(", ".join(f"{k} = {v}" for k, v in wrong.items()),
                          ", ".join(f"{k} = {found.get(k) or '(absent)'}" for k in wrong))
    return ", ".join(f"{k} = {found[k]}" for k in wanted)


def sysctl_command(inputs: Mapping[str, Any]) -> str:
    keys = [str(k) for k in (inputs.get("values") or {})]
    return "; ".join(
        f"echo {shlex.quote(k)}=$(cat /proc/sys/{shlex.quote(k.replace('.', '/'))} "
        f"2>/dev/null)" for k in keys) or "true"


# -- huge pages ----------------------------------------------------------------------
def hugepages(inputs: Mapping[str, Any], stdout: str) -> str:
    """``min_total`` / ``min_free`` pages, optionally of ``size_kb`` (2048, 1048576)."""
    info: dict[str, int] = {}
    for line in stdout.splitlines():
        key, _, value = line.partition(":")
        if value.split():
            info[key.strip()] = int(value.split()[0])
    total, free = info.get("HugePages_Total", 0), info.get("HugePages_Free", 0)
    size = info.get("Hugepagesize", 0)
    found = f"HugePages_Total={total} HugePages_Free={free} Hugepagesize={size} kB"
    expected = []
    if inputs.get("size_kb") and int(inputs["size_kb"]) != size:
        expected.append(f"Hugepagesize={int(inputs['size_kb'])} kB")
    if total < int(inputs.get("min_total", 0)):
        expected.append(f"HugePages_Total >= {int(inputs['min_total'])}")
    if free < int(inputs.get("min_free", 0)):
        expected.append(f"HugePages_Free >= {int(inputs['min_free'])}")
    if expected:
        raise CheckFailed(", ".join(expected), found)
    return found


Judge = Callable[[Mapping[str, Any], str], str]
CommandFor = Callable[[Mapping[str, Any]], str]

#: step kind -> (command, judge)
CHECKS: dict[str, tuple[CommandFor, Judge]] = {
    "check.kernel_cmdline": (lambda _i: "cat /proc/cmdline", kernel_cmdline),
    "check.cpu_flags": (lambda _i: "cat /proc/cpuinfo", cpu_flags),
    "check.kvm_nested": (kvm_nested_command, kvm_nested),
    "check.sysctl": (sysctl_command, sysctl),
    "check.hugepages": (lambda _i: "cat /proc/meminfo", hugepages),
}


def describe_kinds() -> Sequence[tuple[str, str]]:
    return [(kind, (judge.__doc__ or "").strip().splitlines()[0]) for kind, (_c, judge)
            in CHECKS.items()]
