"""A host's ``bmc:`` inputs for IPMI, read once: host, port, user and the revealed password."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import PermanentError
from orchestrator.secrets import Secret

DEFAULT_PORT = 623


@dataclass(frozen=True)
class IpmiTarget:
    host: str
    port: int
    username: str
    password: str = field(repr=False)  # revealed: never in a repr, log or error

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_inputs(cls, inputs: Mapping[str, Any]) -> IpmiTarget:
        bmc = (inputs.get("host") or {}).get("bmc") or {}
        endpoint = str(bmc.get("endpoint") or "")
        if not endpoint:
            raise PermanentError("host has no bmc.endpoint", operation="ipmi")
        host, sep, port = endpoint.rpartition(":")
        if not sep or not port.isdigit():
            host, port = endpoint, str(DEFAULT_PORT)
        password = bmc.get("password")
        revealed = password.reveal() if isinstance(password, Secret) else (password or "")
        if len(str(revealed).encode()) > 20:
            raise PermanentError("IPMI 2.0 passwords are at most 20 bytes",
                                 endpoint=f"{host}:{port}", operation="ipmi")
        return cls(host.strip("[]"), int(port), str(bmc.get("username") or ""), str(revealed))
