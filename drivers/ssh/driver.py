"""SshDriver: wait for a login, run guarded commands, run read-only preflight checks."""

from __future__ import annotations

import base64
import hashlib
import re
import shlex
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

from drivers.ssh import checks
from drivers.ssh.known_hosts import KnownHosts
from drivers.ssh.session import CommandResult, SshSession, connect
from drivers.ssh.settings import SshSettings
from drivers.ssh.target import SshTarget, target_from_inputs
from orchestrator.driver import ApplyRequest, ApplyResult, Driver, Observed
from orchestrator.errors import PermanentError, StepTimeoutError, TransientError
from orchestrator.plan import Action
from orchestrator.secrets import Secret, redact
from orchestrator.step import Step

STDERR_TAIL = 800


def _tail(text: str, limit: int = STDERR_TAIL) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def _command_text(item: Any) -> str:
    return item.reveal() if isinstance(item, Secret) else str(item)


def _shown(command: str) -> str:
    """A command as it may appear in logs and errors: secrets masked, long ones cut."""
    command = redact(command)
    return command if len(command) <= 200 else command[:200] + "..."


class SshDriver(Driver):
    name = "ssh"
    description = "Commands and read-only checks on a host over SSH (paramiko)"
    step_kinds = {
        "ssh.wait": "wait until the host accepts a login, bounded by the step deadline",
        "ssh.wait_port": "wait until a TCP `port` on the host accepts connections (systems "
                         "without SSH: Talos' API on 50000, appliances)",
        "ssh.command": "run `command`/`commands`, skipped when `creates` exists or "
                       "`unless` succeeds",
        **{kind: doc for kind, doc in checks.describe_kinds()},
    }
    settings_type = SshSettings
    requires = ("paramiko",)
    endpoint_concurrency = 4

    settings: SshSettings

    def __init__(self, settings: SshSettings | None = None) -> None:
        super().__init__(settings)
        self.endpoint_concurrency = self.settings.endpoint_limit
        self.known_hosts = KnownHosts(self.settings.known_hosts)
        self._sessions: dict[tuple[str, int, str, str], SshSession] = {}
        self._lock = threading.Lock()

    # -- the contract ---------------------------------------------------------------
    def apply(self, request: ApplyRequest) -> ApplyResult:
        kind = request.step.kind
        target = target_from_inputs(request.inputs, kind)
        if request.action is Action.DELETE and kind != "ssh.command":
            # waits and read-only checks leave nothing behind to remove
            return ApplyResult({})
        if kind == "ssh.wait":
            return self._wait(request, target)
        if kind == "ssh.wait_port":
            return self._wait_port(request, target)
        if kind == "ssh.command":
            return self._command(request, target)
        if kind in checks.CHECKS:
            return self._check(request, target)
        raise PermanentError(f"unknown step kind {kind!r}", endpoint=target.endpoint,
                             operation=kind, hint=f"known: {', '.join(self.step_kinds)}")

    def read(self, step: Step, outputs: Mapping[str, Any]) -> Observed:
        """Commands and checks leave no state of their own to observe: always present."""
        return Observed(exists=True, outputs=outputs)

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.close()

    # -- sessions -------------------------------------------------------------------
    def session(self, target: SshTarget) -> SshSession:
        """A logged-in session to ``target``, reused across steps of one run."""
        # Credentials are part of the key: a step with other credentials must log in itself.
        creds = hashlib.sha256(f"{target.key_text}\0{target.password}".encode()).hexdigest()
        key = (target.address, target.port, target.user, creds)
        with self._lock:
            cached = self._sessions.get(key)
        if cached is not None and cached.active:
            return cached
        fresh = connect(target, known_hosts=self.known_hosts,
                        timeout=self.settings.connect_timeout,
                        output_limit=self.settings.output_limit)
        with self._lock:
            self._sessions[key] = fresh
        return fresh

    def _run(self, request: ApplyRequest, target: SshTarget, command: str, *,
             as_step: bool = False) -> CommandResult:
        """Run ``command``; ``as_step`` applies the step's ``sudo`` and ``env``."""
        remote, stdin = (command, b"")
        if as_step:
            remote, stdin = wrap_command(command, request.inputs.get("env") or {},
                                         bool(request.inputs.get("sudo")), target)
        result = self.session(target).run(remote, deadline=request.deadline,
                                          cancelled=request.cancelled, stdin=stdin)
        request.log.info("ssh command", command=_shown(command),
                         exit_status=result.exit_status, seconds=round(result.duration, 2))
        return result

    # -- ssh.wait -------------------------------------------------------------------
    def _wait(self, request: ApplyRequest, target: SshTarget) -> ApplyResult:
        start = time.monotonic()
        deadline = request.deadline
        if request.inputs.get("timeout"):
            deadline = min(deadline, start + float(request.inputs["timeout"]))
        last_error = "no attempt made"
        attempts = 0
        while True:
            attempts += 1
            try:
                result = self._run(request, target, "true")
                if result.exit_status == 0:
                    waited = time.monotonic() - start
                    request.log.info("ssh ready", endpoint=target.endpoint,
                                     attempts=attempts, seconds=round(waited, 1))
                    return ApplyResult({"endpoint": target.endpoint, "attempts": attempts})
                last_error = f"`true` exited {result.exit_status}"
            except TransientError as exc:
                last_error = exc.fields["message"]
            elapsed = time.monotonic() - start
            request.report(f"waiting for SSH on {target.endpoint}, {elapsed:.0f} s "
                           f"({last_error})")
            pause = min(self.settings.wait_interval, deadline - time.monotonic())
            if pause <= 0 or request.cancelled.wait(pause) or time.monotonic() >= deadline:
                break
        elapsed = time.monotonic() - start
        why = "cancelled" if request.cancelled.is_set() else f"timed out after {elapsed:.0f} s"
        raise StepTimeoutError(
            f"{why} waiting for SSH on {target.endpoint}; last error: {last_error}",
            endpoint=target.endpoint, operation="ssh.wait",
            hint="check the host is up, sshd listens on that port and no firewall drops it")

    # -- ssh.wait_port --------------------------------------------------------------
    def _wait_port(self, request: ApplyRequest, target: SshTarget) -> ApplyResult:
        port = int(request.inputs["port"])
        start = time.monotonic()
        last_error = "no attempt made"
        while True:
            remaining = request.deadline - time.monotonic()
            try:
                with socket.create_connection((target.address, port),
                                              timeout=max(0.1, min(5.0, remaining))):
                    return ApplyResult({"port": port,
                                        "seconds": round(time.monotonic() - start, 1)})
            except OSError as exc:
                last_error = exc.strerror or str(exc)
            request.report(f"waiting for {target.address}:{port}, "
                           f"{time.monotonic() - start:.0f} s ({last_error})")
            pause = min(self.settings.wait_interval, request.deadline - time.monotonic())
            if pause <= 0 or request.cancelled.wait(pause):
                raise StepTimeoutError(
                    f"timed out after {time.monotonic() - start:.0f} s waiting for "
                    f"{target.address}:{port}; last error: {last_error}",
                    endpoint=f"{target.address}:{port}", operation="ssh.wait_port")

    # -- ssh.command ----------------------------------------------------------------
    def _command(self, request: ApplyRequest, target: SshTarget) -> ApplyResult:
        inputs = request.inputs
        if request.action is Action.DELETE:
            commands = [_command_text(c) for c in _as_list(inputs.get("on_delete"))]
        else:
            skip = self._guard(request, target)
            if skip:
                request.log.info("ssh command skipped", reason=skip)
                return ApplyResult({"exit_status": 0, "skipped": skip})
            commands = [_command_text(c) for c in
                        _as_list(inputs.get("commands")) + _as_list(inputs.get("command"))]
            if not commands:
                raise PermanentError("ssh.command has no `command` or `commands`",
                                     endpoint=target.endpoint, operation="ssh.command")
        stdout = ""
        for index, command in enumerate(commands, 1):
            result = self._run(request, target, command, as_step=True)
            if result.exit_status != 0:
                where = f"command {index} of {len(commands)}" if len(commands) > 1 \
                    else "command"
                tail = _tail(redact(result.stderr)) or _tail(redact(result.stdout)) or \
                    "(no output)"
                raise PermanentError(
                    f"{where} `{_shown(command)}` exited {result.exit_status}: {tail}",
                    endpoint=target.endpoint, operation="ssh.command")
            stdout += result.stdout
        return ApplyResult(_outputs(stdout, len(commands)))

    def _guard(self, request: ApplyRequest, target: SshTarget) -> str:
        """Why the commands need not run (empty: they must)."""
        creates = request.inputs.get("creates")
        test = f"test -e {shlex.quote(str(creates))}"
        if creates and self._run(request, target, test, as_step=True).exit_status == 0:
            return f"{creates} exists"
        unless = request.inputs.get("unless")
        if unless and self._run(request, target, _command_text(unless),
                                as_step=True).exit_status == 0:
            return f"`{_shown(_command_text(unless))}` succeeded"
        return ""

    # -- check.* --------------------------------------------------------------------
    def _check(self, request: ApplyRequest, target: SshTarget) -> ApplyResult:
        kind = request.step.kind
        command_for, judge = checks.CHECKS[kind]
        result = self._run(request, target, command_for(request.inputs))
        if result.exit_status != 0:
            raise PermanentError(f"could not read {kind.split('.', 1)[1]}: "
                                 f"{_tail(result.stderr) or 'exit ' + str(result.exit_status)}",
                                 endpoint=target.endpoint, operation=kind)
        try:
            found = judge(request.inputs, result.stdout)
        except checks.CheckFailed as exc:
            raise PermanentError(f"{target.name}: expected {exc.expected}; found {exc.found}",
                                 endpoint=target.endpoint, operation=kind) from None
        except (ValueError, TypeError) as exc:
            raise PermanentError(f"bad check inputs or output: {exc}",
                                 endpoint=target.endpoint, operation=kind) from None
        request.log.info("check passed", check=kind, found=found)
        return ApplyResult({"found": found})


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _outputs(stdout: str, count: int) -> dict[str, Any]:
    """What the state keeps of a command's output: not the text, which may carry what
    the command made (`kubeadm token create`, `lxc cluster add` print join tokens), only
    enough to tell whether it changed."""
    return {
        "exit_status": 0,
        "commands": count,
        "stdout_sha256": hashlib.sha256(stdout.encode()).hexdigest()[:16],
        "stdout_lines": len(stdout.splitlines()),
    }


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def wrap_command(command: str, env: Mapping[str, Any], sudo: bool,
                 target: SshTarget) -> tuple[str, bytes]:
    """The remote command line and its stdin for a step's ``command`` with ``env`` and
    ``sudo``. Values travel base64-encoded on stdin, read by the remote shell into its
    environment: never on a command line (``ps``), in a log or in the state."""
    if not env and not sudo:
        return command, b""
    lines, data = [], []
    for name in sorted(env):
        if not _ENV_NAME.fullmatch(name):
            raise PermanentError(f"env name {name!r} is not a shell variable name",
                                 endpoint=target.endpoint, operation="ssh.command")
        lines.append(f'IFS= read -r {name} || exit 97; '
                     f'{name}=$(printf %s "${name}" | base64 -d) || exit 97; export {name}')
        value = _command_text(env[name]).encode()
        data.append(base64.b64encode(value) + b"\n")
    script = "\n".join([*lines, command])
    remote = f"{'sudo -n ' if sudo else ''}sh -c {shlex.quote(script)}"
    return remote, b"".join(data)
