"""The paramiko boundary: log in, run a command within a deadline, translate errors.

Only this module imports paramiko. Connection failures (refused, unreachable, timed out,
a dropped banner) are :class:`TransientError`; bad credentials and a changed host key are
:class:`PermanentError`. No message ever carries a password or key text.
"""

from __future__ import annotations

import base64
import io
import select
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from drivers.ssh.known_hosts import KnownHosts, fingerprint
from drivers.ssh.target import SshTarget
from orchestrator.errors import PermanentError, StepTimeoutError, TransientError


@dataclass(frozen=True)
class CommandResult:
    command: str
    exit_status: int
    stdout: str
    stderr: str
    duration: float


def describe(exc: BaseException) -> str:
    """A short operator-facing reason for a connection failure: "Connection refused"."""
    import paramiko

    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        reasons = {describe(e) for e in exc.errors.values()}
        return ", ".join(sorted(reasons)) or "no address could be reached"
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, EOFError):
        return "connection closed by the server"
    return str(exc) or type(exc).__name__


def _load_key(text: str, target: SshTarget) -> Any:
    import paramiko

    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError):
            continue
    raise PermanentError("the private key cannot be read (not an unencrypted ed25519, "
                         "ECDSA or RSA key)", endpoint=target.endpoint, operation="ssh login")


class _RecordOnFirstContact:
    """Missing-host-key policy: record the key; paramiko itself refuses a changed one."""

    def __init__(self, known_hosts: KnownHosts) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        self.known_hosts.record(hostname, key.get_name(), key.get_base64())


class SshSession:
    """One logged-in connection to one host; commands run on fresh channels."""

    def __init__(self, client: Any, target: SshTarget, output_limit: int) -> None:
        self.client = client
        self.target = target
        self.output_limit = output_limit

    @property
    def active(self) -> bool:
        transport = self.client.get_transport()
        return bool(transport is not None and transport.is_active())

    def run(self, command: str, *, deadline: float,
            cancelled: threading.Event | None = None, stdin: bytes = b"") -> CommandResult:
        """Run ``command`` with ``stdin`` (then end of file) as its input; raises
        StepTimeoutError at the deadline (the channel is closed)."""
        import paramiko

        start = time.monotonic()
        out, err = bytearray(), bytearray()
        try:
            chan = self.client.get_transport().open_session(
                timeout=max(deadline - start, 0.1))
            chan.exec_command(command)
            if stdin:
                chan.sendall(stdin)
            chan.shutdown_write()
            while True:
                while chan.recv_ready():
                    self._keep(out, chan.recv(65536))
                while chan.recv_stderr_ready():
                    self._keep(err, chan.recv_stderr(65536))
                if chan.exit_status_ready() and not (chan.recv_ready()
                                                      or chan.recv_stderr_ready()):
                    break
                if time.monotonic() >= deadline or (cancelled and cancelled.is_set()):
                    chan.close()
                    why = "was cancelled" if cancelled and cancelled.is_set() else \
                        f"ran past the step deadline ({time.monotonic() - start:.0f} s)"
                    raise StepTimeoutError(f"command {why}", endpoint=self.target.endpoint,
                                           operation="ssh.command")
                select.select([chan], [], [], 0.1)
            status = chan.recv_exit_status()
            chan.close()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise TransientError(f"connection lost while running a command: {describe(exc)}",
                                 endpoint=self.target.endpoint,
                                 operation="ssh.command") from None
        return CommandResult(command, status, out.decode(errors="replace"),
                             err.decode(errors="replace"), time.monotonic() - start)

    def _keep(self, buf: bytearray, data: bytes) -> None:
        buf += data
        if len(buf) > self.output_limit:
            del buf[: len(buf) - self.output_limit]

    def close(self) -> None:
        self.client.close()


def connect(target: SshTarget, *, known_hosts: KnownHosts, timeout: float,
            output_limit: int = 1 << 20) -> SshSession:
    """Log in to ``target``. Raises TransientError or PermanentError, never paramiko's."""
    import paramiko

    pkey = _load_key(target.key_text, target) if target.key_text else None
    if pkey is None and not target.password:
        raise PermanentError("no private key and no password for this host",
                             endpoint=target.endpoint, operation="ssh login",
                             hint="set ssh.private_key or ssh.password in the inventory")
    client = paramiko.SSHClient()
    name = target.known_hosts_name
    for key_type, key_b64 in known_hosts.lookup(name):
        try:
            recorded = paramiko.PKey.from_type_string(key_type, base64.b64decode(key_b64))
        except (paramiko.SSHException, ValueError, TypeError):
            continue  # a key type paramiko cannot read; OpenSSH may still use it
        client.get_host_keys().add(name, key_type, recorded)
    client.set_missing_host_key_policy(_RecordOnFirstContact(known_hosts))
    try:
        client.connect(
            target.address, port=target.port, username=target.user, pkey=pkey,
            password=target.password, timeout=timeout, banner_timeout=timeout,
            auth_timeout=timeout, channel_timeout=timeout, allow_agent=False,
            look_for_keys=False)
    except paramiko.BadHostKeyException as exc:
        client.close()
        offered = fingerprint(exc.key.get_name(), exc.key.get_base64())
        expected = fingerprint(exc.expected_key.get_name(), exc.expected_key.get_base64())
        raise PermanentError(
            f"host key changed: recorded {expected}, offered {offered}",
            endpoint=target.endpoint, operation="ssh login",
            hint=f"if {target.name} was reinstalled, remove its entry with "
                 f"`ssh-keygen -R '{name}' -f {known_hosts.path}`") from None
    except paramiko.AuthenticationException:
        client.close()
        raise PermanentError(f"authentication failed for user {target.user} "
                             f"with {target.auth_text}", endpoint=target.endpoint,
                             operation="ssh login",
                             hint="check the inventory's ssh user and credentials") from None
    except (paramiko.SSHException, OSError, EOFError) as exc:
        client.close()
        raise TransientError(describe(exc), endpoint=target.endpoint,
                             operation="ssh login") from None
    return SshSession(client, target, output_limit)
