"""Where and as whom to log in: the ``inputs["host"]`` mapping, read once and checked.

``ssh.private_key`` is a resolved :class:`~orchestrator.secrets.Secret` holding the key
*text* (a ``file:`` reference resolves to the file's content), or a plain string that is
either key text or the path of a key file. ``ssh.password`` is a Secret (or plain string).
Neither ever appears in ``repr`` or in an error message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import PermanentError
from orchestrator.secrets import Secret


def _reveal(value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, Secret):
        return value.reveal() or None
    return str(value)


@dataclass(frozen=True)
class SshTarget:
    name: str
    address: str
    port: int = 22
    user: str = "root"
    key_text: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def known_hosts_name(self) -> str:
        """The host's name in known_hosts, as OpenSSH writes it."""
        return self.address if self.port == 22 else f"[{self.address}]:{self.port}"

    @property
    def auth_text(self) -> str:
        kinds = [k for k, v in (("key", self.key_text), ("password", self.password)) if v]
        return " and ".join(kinds) or "no credentials"


def target_from_inputs(inputs: Mapping[str, Any], operation: str) -> SshTarget:
    """Read ``inputs["host"]``; raises PermanentError naming what is missing."""
    host = inputs.get("host")
    if not isinstance(host, Mapping) or not host.get("address"):
        raise PermanentError("step inputs carry no host with an address",
                             operation=operation, hint="bind the node to an inventory host")
    ssh = host.get("ssh") or {}
    raw_key = ssh.get("private_key")
    key = _reveal(raw_key)
    if key is not None and "PRIVATE KEY-----" not in key:
        if isinstance(raw_key, Secret):
            raise PermanentError(f"private key {raw_key.reference} holds no key text",
                                 operation=operation,
                                 hint="point it at an OpenSSH or PEM private key file")
        key = _read_key_file(key, operation)
    return SshTarget(
        name=str(host.get("name") or host["address"]),
        address=str(host["address"]),
        port=int(ssh.get("port") or 22),
        user=str(ssh.get("user") or "root"),
        key_text=key,
        password=_reveal(ssh.get("password")),
    )


def _read_key_file(path_text: str, operation: str) -> str:
    path = Path(os.path.expanduser(path_text))
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        # The value was not key text, so it is a path; naming a path leaks nothing.
        raise PermanentError(f"private key file {path} cannot be read: {exc.strerror}",
                             operation=operation) from None
