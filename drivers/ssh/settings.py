"""The SSH driver's settings, validated from the profile before planning."""

from __future__ import annotations

from typing import Annotated

import msgspec

DEFAULT_KNOWN_HOSTS = "~/.local/state/orch/known_hosts"


class SshSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    known_hosts: Annotated[str, msgspec.Meta(
        description="OpenSSH-format file where host keys are recorded on first contact "
                    "and checked after")] = DEFAULT_KNOWN_HOSTS
    connect_timeout: Annotated[float, msgspec.Meta(
        description="seconds one TCP connect, banner or authentication may take", gt=0)] = 10.0
    wait_interval: Annotated[float, msgspec.Meta(
        description="seconds between login attempts in ssh.wait", gt=0)] = 2.0
    endpoint_limit: Annotated[int, msgspec.Meta(
        description="commands one host may run at once (sshd MaxSessions is 10)",
        ge=1)] = 4
    output_limit: Annotated[int, msgspec.Meta(
        description="bytes of stdout and of stderr kept per command (the tail)",
        ge=1024)] = 1 << 20
