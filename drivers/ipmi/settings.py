"""The IPMI driver's settings: timeouts, cipher suites, and the retry budget."""

from __future__ import annotations

from typing import Annotated

import msgspec

from orchestrator.retry import RetrySettings


class IpmiSettings(RetrySettings, forbid_unknown_fields=True, frozen=True):
    cipher_suites: Annotated[list[int], msgspec.Meta(
        description="IPMI 2.0 cipher suites to try, strongest first (17: SHA-256, "
                    "3: SHA-1); the first the BMC completes a session with is used")
    ] = msgspec.field(default_factory=lambda: [17, 3])
    retry_attempts: Annotated[int, msgspec.Meta(
        ge=1, description="attempts of one operation on transient errors, first included")] = 4
    retry_total_seconds: Annotated[float, msgspec.Meta(
        gt=0, description="seconds one operation may spend retrying transient errors")] = 45.0
    power_timeout: Annotated[float, msgspec.Meta(
        gt=0, description="seconds to wait for a power change to read back")] = 60.0
    graceful_timeout: Annotated[float, msgspec.Meta(
        gt=0, description="seconds to wait for a soft shutdown before forcing it off "
                          "(when the step sets force_after_graceful)")] = 120.0
    poll_interval: Annotated[float, msgspec.Meta(
        gt=0, description="seconds between reads of the power state while waiting")] = 2.0
