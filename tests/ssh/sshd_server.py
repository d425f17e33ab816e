"""A real OpenSSH server for driver tests: Debian's sshd in the foreground on 127.0.0.1.

It runs as root with its own config, host key, authorized_keys and pid file in a temp
directory, on a free port, and logs to a file the tests can read. Password logins work for
one dedicated local account (created once, with a fresh random password per session).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"
PASSWORD_USER = "orch-sshtest"


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def keygen(path: Path, kind: str = "ed25519") -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "orch-test",
                    "-f", str(path)], check=True)
    return path


@dataclass
class Sshd:
    address: str
    port: int
    root: Path
    client_key: Path
    host_key: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def host(self, **ssh: object) -> dict[str, object]:
        """An inventory host (the ``inputs["host"]`` shape) logging in as root by key."""
        creds: dict[str, object] = {"user": "root", "port": self.port,
                                    "private_key": self.client_key.read_text()}
        creds.update(ssh)
        return {"name": "local", "role": "test", "address": self.address, "ssh": creds}

    def start(self) -> None:
        config = self.root / "sshd_config"
        self.process = subprocess.Popen(
            [SSHD, "-D", "-f", str(config), "-E", str(self.log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_banner(self.address, self.port, self.process)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def new_host_key(self) -> None:
        """Restart with a different host key, as a reinstalled host would present."""
        self.stop()
        for p in (self.host_key, self.host_key.with_suffix(".pub")):
            p.unlink()
        keygen(self.host_key)
        self.start()


def wait_for_banner(address: str, port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with status {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((address, port), 1) as s:
            if s.recv(4).startswith(b"SSH-"):
                return
        time.sleep(0.05)
    raise RuntimeError(f"sshd on {address}:{port} did not answer within 15 s")


def ensure_password_user() -> str:
    """Create the dedicated password-login account if needed; set a fresh password."""
    if subprocess.run(["id", PASSWORD_USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", PASSWORD_USER], check=True)
    password = "pw-" + secrets.token_urlsafe(18)
    subprocess.run(["chpasswd"], input=f"{PASSWORD_USER}:{password}".encode(), check=True)
    return password


def available() -> str:
    """Why the real-sshd tests cannot run here (empty: they can)."""
    if not os.path.exists(SSHD):
        return "openssh-server is not installed (.ci/apt-packages.txt installs it)"
    if os.geteuid() != 0:
        return "sshd must run as root to log in as root and as a second user"
    if not shutil.which("ssh-keygen"):
        return "ssh-keygen (openssh-client) is not installed"
    return ""


@contextlib.contextmanager
def running_sshd(root: Path, address: str = "127.0.0.1") -> Iterator[Sshd]:
    root.mkdir(parents=True, exist_ok=True)
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
    host_key = keygen(root / "ssh_host_ed25519_key")
    client_key = keygen(root / "id_ed25519")
    (root / "authorized_keys").write_text((root / "id_ed25519.pub").read_text())
    port = free_port(address)
    (root / "sshd_config").write_text(f"""\
Port {port}
ListenAddress {address}
HostKey {host_key}
PidFile {root}/sshd.pid
AuthorizedKeysFile {root}/authorized_keys
StrictModes no
PermitRootLogin yes
PubkeyAuthentication yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM no
MaxStartups 100
MaxSessions 20
LogLevel VERBOSE
Subsystem sftp /usr/lib/openssh/sftp-server
""")
    server = Sshd(address, port, root, client_key, host_key, root / "sshd.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
