"""Helpers shared by the OpenStack driver tests (a module name no other test folder uses)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drivers.openstack import OpenStackDriver
from drivers.openstack.settings import OpenStackSettings
from orchestrator.driver import ApplyRequest, ApplyResult
from orchestrator.plan import Action
from orchestrator.step import Step

if TYPE_CHECKING:
    from plane import Plane


class ListLog:
    """A structlog-like logger that keeps what it was given, to check nothing leaks."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def __getattr__(self, level: str) -> Callable[..., None]:
        def log(event: str, **fields: Any) -> None:
            self.events.append(f"{level} {event} {fields}")
        return log


def step_of(kind: str, inputs: Mapping[str, Any]) -> Step:
    return Step(id=f"test/{kind}", kind=kind, driver="openstack", component="test",
                layer="test", inputs=dict(inputs), endpoint="openstack:test")


def run_step(driver: OpenStackDriver, kind: str, inputs: Mapping[str, Any], *,
             action: Action = Action.CREATE, prior: Mapping[str, Any] | None = None,
             timeout: float = 60.0, log: Any = None) -> ApplyResult:
    request = ApplyRequest(step=step_of(kind, inputs), action=action, inputs=dict(inputs),
                           prior_outputs=dict(prior or {}), upstream={},
                           deadline=time.monotonic() + timeout, log=log or ListLog())
    return driver.apply(request)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def ironic_settings(url: str, **overrides: object) -> OpenStackSettings:
    """Settings for a standalone Ironic at ``url`` (no Keystone)."""
    values: dict[str, object] = {"auth_type": "none", "endpoints": {"baremetal": url},
                                 "poll_interval": 0.2, "api_timeout": 10.0}
    return OpenStackSettings(**{**values, **overrides})  # type: ignore[arg-type]


@dataclass
class CloudUnderTest:
    """A cloud the Nova/Glance/Neutron tests run against: the plane, or a real one."""

    name: str
    clouds_yaml: Path
    image: str    # an existing image and flavor a server can boot with
    flavor: str
    plane: Plane | None = None

    def settings(self, **overrides: object) -> OpenStackSettings:
        values: dict[str, object] = {"cloud": self.name, "clouds_yaml": str(self.clouds_yaml),
                                     "poll_interval": 1.0, "api_timeout": 30.0}
        return OpenStackSettings(**{**values, **overrides})  # type: ignore[arg-type]
