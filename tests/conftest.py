"""Shared fixtures. Services a test needs (PostgreSQL, libvirtd, emulators) are started by
.ci/run in CI; there, a test that would be skipped for a missing service fails instead, so a
broken CI install cannot pass as 'skipped'."""

from __future__ import annotations

import os

import pytest


def require_service(reason: str) -> None:
    """Skip locally when a service is missing; fail in CI, where .ci/run must provide it."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must provide this service: {reason}")
    pytest.skip(reason)
