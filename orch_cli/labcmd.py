"""Lab commands: ``orch image build``, ``orch lab up|down``, ``orch verify``."""

from __future__ import annotations

from typing import Any


def register(cli: Any) -> None:
    """Add the lab command groups to ``cli``."""
