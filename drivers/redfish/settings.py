"""The Redfish driver's settings: timeouts and the retry budget, with one-line descriptions."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from orchestrator.retry import RetryPolicy


class RedfishSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    connect_timeout: Annotated[float, msgspec.Meta(
        gt=0, description="seconds to wait for a TCP connection to the BMC")] = 5.0
    read_timeout: Annotated[float, msgspec.Meta(
        gt=0, description="seconds to wait for the BMC to answer one request")] = 30.0
    retry_attempts: Annotated[int, msgspec.Meta(
        ge=1, description="attempts of one operation on transient errors, first included")] = 5
    retry_total_seconds: Annotated[float, msgspec.Meta(
        gt=0, description="seconds one operation may spend retrying transient errors")] = 60.0
    retry_initial_wait: Annotated[float, msgspec.Meta(
        ge=0, description="first wait between attempts (exponential, jittered)")] = 1.0
    retry_max_wait: Annotated[float, msgspec.Meta(
        ge=0, description="longest wait between attempts")] = 10.0
    power_timeout: Annotated[float, msgspec.Meta(
        gt=0, description="seconds to wait for a power change to read back")] = 60.0
    graceful_timeout: Annotated[float, msgspec.Meta(
        gt=0, description="seconds to wait for a graceful shutdown before forcing it off "
                          "(when the step sets force_after_graceful)")] = 120.0
    poll_interval: Annotated[float, msgspec.Meta(
        gt=0, description="seconds between reads of the power state while waiting")] = 2.0
    auth: Annotated[Literal["basic", "session"], msgspec.Meta(
        description="HTTP basic auth on every request, or a Redfish session per operation")
    ] = "basic"

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.retry_attempts, self.retry_total_seconds,
                           self.retry_initial_wait, self.retry_max_wait)
