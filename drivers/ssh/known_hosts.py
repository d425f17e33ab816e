"""Host keys recorded on first contact and checked after (trust on first use).

The file is OpenSSH's ``known_hosts`` format, so ``ssh -o UserKnownHostsFile=...`` and
Ansible read the same file. Entries are appended under an exclusive ``flock`` so that
concurrent steps (and concurrent runs) never lose one another's entries.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import os
from pathlib import Path


def fingerprint(key_type: str, key_base64: str) -> str:
    """OpenSSH's SHA256 fingerprint: ``ssh-ed25519 SHA256:abc...``."""
    digest = hashlib.sha256(base64.b64decode(key_base64)).digest()
    return f"{key_type} SHA256:{base64.b64encode(digest).decode().rstrip('=')}"


def _matches(pattern_field: str, name: str) -> bool:
    for pattern in pattern_field.split(","):
        if pattern.startswith("|1|"):
            try:
                _, _, salt, digest = pattern.split("|")
                mac = hmac.new(base64.b64decode(salt), name.encode(), hashlib.sha1).digest()
            except ValueError:
                continue
            if hmac.compare_digest(base64.b64encode(mac).decode(), digest):
                return True
        elif pattern == name:
            return True
    return False


class KnownHosts:
    """One known_hosts file. ``lookup`` gives recorded (type, base64) keys of a host name."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(os.path.expanduser(os.fspath(path)))

    def lookup(self, name: str) -> list[tuple[str, str]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        found = []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) < 3 or line.startswith("#") or parts[0].startswith("@"):
                continue
            if _matches(parts[0], name):
                found.append((parts[1], parts[2]))
        return found

    def record(self, name: str, key_type: str, key_base64: str) -> None:
        """Append ``name``'s key unless the same key is already there."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "r+", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            if (key_type, key_base64) in self.lookup(name):
                return
            fh.write(f"{name} {key_type} {key_base64}\n")
            fh.flush()
            os.fsync(fh.fileno())
