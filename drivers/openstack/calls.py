"""One step's view of a cloud: SDK calls translated at the boundary, and the step's deadline,
poll interval, progress report and cancellation for the waits."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from drivers.openstack.connection import Cloud
from drivers.openstack.errors import translate


@dataclass
class Calls:
    cloud: Cloud
    service: str
    deadline: float
    poll_interval: float
    report: Callable[[str], None] = field(default=lambda _text: None)
    cancelled: threading.Event = field(default_factory=threading.Event)
    extra_secrets: tuple[str, ...] = ()

    @property
    def endpoint(self) -> str:
        return self.cloud.endpoint(self.service)

    @property
    def conn(self) -> Any:
        return self.cloud.conn

    def proxy(self, service: str) -> Any:
        """The SDK's proxy for ``service`` (building it may already fetch the catalog or the
        version document, so it is translated too)."""
        try:
            return getattr(self.conn, service)
        except Exception as exc:
            raise translate(exc, endpoint=self.endpoint, operation=f"connect to {service}",
                            secrets=(*self.extra_secrets, *self.cloud.secrets)) from None

    def call(self, operation: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``; any exception becomes a classified orch error."""
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise translate(exc, endpoint=self.endpoint, operation=operation,
                            secrets=(*self.extra_secrets, *self.cloud.secrets)) from None
