"""The Redfish driver's settings: timeouts and the retry budget, with one-line descriptions."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from orchestrator.retry import RetrySettings


class RedfishSettings(RetrySettings, forbid_unknown_fields=True, frozen=True):
    connect_timeout: Annotated[float, msgspec.Meta(
        gt=0, description="seconds to wait for a TCP connection to the BMC")] = 5.0
    read_timeout: Annotated[float, msgspec.Meta(
        gt=0, description="seconds to wait for the BMC to answer one request")] = 30.0
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
