"""``orch verify``: run the checks components declare against hosts, like a test run.

A check is plain data, one of::

    {"service": "sshd", "running": true, "enabled": true}
    {"command": "ceph health", "stdout_contains": "HEALTH_OK", "exit_status": 0}
    {"file": "/sys/module/kvm_intel/parameters/nested", "contains": "Y"}
    {"package": "pve-manager", "installed": true}
    {"port": 8006, "listening": true, "address": "0.0.0.0"}

each with an optional ``name``. Hosts have the ``inputs["host"]`` shape with secrets resolved.
Checks run over SSH with testinfra's paramiko backend (imported only when checks run); every
result is a :class:`CheckResult`: name, host, passed, detail, duration. A host that cannot be
reached fails each of its checks with the reason. Nothing on a host is changed.

Limitation: testinfra's paramiko backend accepts unknown host keys with a warning; host keys
are recorded and enforced by the SSH driver when the same hosts are applied.
"""

from __future__ import annotations

import os
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import OrchError
from orchestrator.secrets import SECRET_KEY, Secret, redact


class VerifyError(OrchError):
    """A check declaration that cannot be understood."""


@dataclass(frozen=True)
class Check:
    kind: str
    subject: str
    expect: Mapping[str, Any]
    name: str


@dataclass(frozen=True)
class CheckResult:
    name: str
    host: str
    passed: bool
    detail: str
    duration: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "host": self.host, "passed": self.passed,
                "detail": self.detail, "duration": round(self.duration, 3)}


@dataclass(frozen=True)
class HostChecks:
    """One host (``inputs["host"]`` shape, secrets resolved) and the checks to run on it."""

    host: Mapping[str, Any]
    checks: Sequence[Mapping[str, Any]] = field(default_factory=tuple)


# -- declarations ----------------------------------------------------------------------
DEFAULTS: dict[str, dict[str, Any]] = {
    "service": {"running": True},
    "command": {"exit_status": 0},
    "file": {"exists": True},
    "package": {"installed": True},
    "port": {"listening": True},
}
ALLOWED: dict[str, set[str]] = {
    "service": {"running", "enabled"},
    "command": {"exit_status", "stdout_contains", "stderr_contains"},
    "file": {"exists", "contains", "mode", "owner"},
    "package": {"installed", "version"},
    "port": {"listening", "address", "protocol"},
}


def parse_check(decl: Mapping[str, Any]) -> Check:
    """Read one declaration; raises :class:`VerifyError` naming what is wrong."""
    kinds = [k for k in DEFAULTS if k in decl]
    if len(kinds) != 1:
        raise VerifyError(f"check {dict(decl)!r} must name exactly one of "
                          f"{', '.join(DEFAULTS)}")
    kind = kinds[0]
    unknown = set(decl) - ALLOWED[kind] - {kind, "name"}
    if unknown:
        raise VerifyError(f"{kind} check does not take {', '.join(sorted(unknown))}",
                          hint=f"a {kind} check takes {', '.join(sorted(ALLOWED[kind]))}")
    expect = {**DEFAULTS[kind], **{k: v for k, v in decl.items() if k in ALLOWED[kind]}}
    subject = str(decl[kind])
    name = str(decl.get("name") or f"{kind} {subject} " + ", ".join(
        f"{k}={v}" for k, v in expect.items()))
    return Check(kind, subject, expect, name)


# -- evaluation: (passed, detail) from a testinfra host --------------------------------
def _service(host: Any, check: Check) -> tuple[bool, str]:
    service = host.service(check.subject)
    problems, found = [], []
    for attr, label in (("running", "is_running"), ("enabled", "is_enabled")):
        if attr in check.expect:
            actual = bool(getattr(service, label))
            found.append(f"{attr}={actual}")
            if actual != bool(check.expect[attr]):
                problems.append(f"expected {attr}={bool(check.expect[attr])}")
    return not problems, "; ".join([*problems, "found " + ", ".join(found)])


def _command(host: Any, check: Check) -> tuple[bool, str]:
    result = host.run(check.subject)
    problems = []
    if int(check.expect["exit_status"]) != result.rc:
        problems.append(f"expected exit status {check.expect['exit_status']}, got {result.rc}")
    for stream in ("stdout", "stderr"):
        wanted = check.expect.get(f"{stream}_contains")
        if wanted is not None and str(wanted) not in getattr(result, stream):
            problems.append(f"{stream} lacks {wanted!r}")
    tail = (result.stdout.strip() or result.stderr.strip())[-300:]
    return not problems, "; ".join([*problems, f"output: {tail}" if tail else "no output"])


def _file(host: Any, check: Check) -> tuple[bool, str]:
    f = host.file(check.subject)
    exists = bool(f.exists)
    if exists != bool(check.expect["exists"]):
        return False, f"expected exists={bool(check.expect['exists'])}, found exists={exists}"
    if not exists:
        return True, "absent"
    problems, found = [], []
    if "contains" in check.expect:
        content = f.content_string
        found.append(f"content {content.strip()[:200]!r}")
        if str(check.expect["contains"]) not in content:
            problems.append(f"expected content containing {check.expect['contains']!r}")
    if "mode" in check.expect:
        mode = int(str(check.expect["mode"]), 8) if isinstance(check.expect["mode"], str) \
            else int(check.expect["mode"])
        found.append(f"mode {f.mode:o}")
        if f.mode != mode:
            problems.append(f"expected mode {mode:o}")
    if "owner" in check.expect:
        found.append(f"owner {f.user}")
        if f.user != check.expect["owner"]:
            problems.append(f"expected owner {check.expect['owner']}")
    return not problems, "; ".join(problems + found) or "exists"


def _package(host: Any, check: Check) -> tuple[bool, str]:
    package = host.package(check.subject)
    installed = bool(package.is_installed)
    if installed != bool(check.expect["installed"]):
        return False, (f"expected installed={bool(check.expect['installed'])}, "
                       f"found installed={installed}")
    if not installed:
        return True, "not installed"
    version = str(package.version)
    wanted = check.expect.get("version")
    if wanted is not None and not version.startswith(str(wanted)):
        return False, f"expected version {wanted}*, found {version}"
    return True, f"version {version}"


def _port(host: Any, check: Check) -> tuple[bool, str]:
    """Without ``address``: anything listening on the port, on any address."""
    protocol = str(check.expect.get("protocol", "tcp"))
    address = check.expect.get("address")
    if address:
        where = f"{protocol}://{address}:{check.subject}"
        listening = bool(host.socket(where).is_listening)
    else:
        where = f"{protocol} port {check.subject}"
        sockets = host.socket.get_listening_sockets()
        listening = any(s.startswith(f"{protocol}://") and s.rsplit(":", 1)[-1] ==
                        check.subject for s in sockets)
    wanted = bool(check.expect["listening"])
    return listening == wanted, f"{where} listening={listening}" + (
        "" if listening == wanted else f", expected {wanted}")


EVALUATORS: dict[str, Callable[[Any, Check], tuple[bool, str]]] = {
    "service": _service, "command": _command, "file": _file, "package": _package,
    "port": _port,
}


# -- hosts -------------------------------------------------------------------------------
def _reveal(value: Any) -> str | None:
    if isinstance(value, Secret):
        return value.reveal() or None
    return str(value) if value else None


@contextmanager
def _identity_file(private_key: Any) -> Iterator[str | None]:
    """A key file path for testinfra: the referenced file itself, or a 0600 temp copy."""
    reference = private_key.reference if isinstance(private_key, Secret) else (
        private_key.get(SECRET_KEY) if isinstance(private_key, Mapping) else None)
    if reference and reference.startswith("file:"):
        path = os.path.expanduser(reference[5:])
        if os.path.isabs(path) and os.path.exists(path):
            yield path
            return
    text = _reveal(private_key)
    if not text:
        yield None
        return
    if "PRIVATE KEY-----" not in text:
        yield os.path.expanduser(text)  # a plain path
        return
    fd, path = tempfile.mkstemp(prefix="orch-verify-", suffix=".key")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text if text.endswith("\n") else text + "\n")
        yield path
    finally:
        os.unlink(path)


def _connect(host: Mapping[str, Any], identity: str | None, timeout: float) -> Any:
    import testinfra.backend
    import testinfra.host

    ssh = host.get("ssh") or {}
    user = urllib.parse.quote(str(ssh.get("user") or "root"), safe="")
    password = _reveal(ssh.get("password"))
    credentials = f"{user}:{urllib.parse.quote(password, safe='')}" if password else user
    spec = f"paramiko://{credentials}@{host['address']}:{int(ssh.get('port') or 22)}"
    backend = testinfra.backend.get_backend(spec, ssh_identity_file=identity,
                                            timeout=int(timeout))
    tinfra_host = testinfra.host.Host(backend)
    backend.set_host(tinfra_host)
    return tinfra_host, backend


def verify_host(host: Mapping[str, Any], checks: Sequence[Mapping[str, Any]], *,
                timeout: float = 10) -> list[CheckResult]:
    """Run ``checks`` on ``host``. Declarations are parsed first (VerifyError if bad)."""
    parsed = [parse_check(c) for c in checks]
    name = str(host.get("name") or host.get("address"))
    results: list[CheckResult] = []
    with _identity_file((host.get("ssh") or {}).get("private_key")) as identity:
        start = time.monotonic()
        try:
            tinfra_host, backend = _connect(host, identity, timeout)
            backend.client  # noqa: B018 -- log in now, so one failure explains every check
        except Exception as exc:  # paramiko and socket errors, translated to results
            reason = redact(f"cannot log in to {host.get('address')}: "
                            f"{type(exc).__name__}: {exc}")
            spent = time.monotonic() - start
            return [CheckResult(c.name, name, False, reason, spent) for c in parsed]
        try:
            for check in parsed:
                begin = time.monotonic()
                try:
                    passed, detail = EVALUATORS[check.kind](tinfra_host, check)
                except Exception as exc:  # a check that cannot run is a failed check
                    passed, detail = False, f"{type(exc).__name__}: {exc}"
                results.append(CheckResult(check.name, name, passed, redact(detail),
                                           time.monotonic() - begin))
        finally:
            backend.client.close()
    return results


def verify(targets: Sequence[HostChecks], *, timeout: float = 10) -> list[CheckResult]:
    """Run every host's checks, host after host; results in declaration order."""
    for target in targets:  # refuse bad declarations before connecting anywhere
        for decl in target.checks:
            parse_check(decl)
    results: list[CheckResult] = []
    for target in targets:
        results.extend(verify_host(target.host, target.checks, timeout=timeout))
    return results
