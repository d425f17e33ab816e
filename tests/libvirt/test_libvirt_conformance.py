"""The driver conformance kit (orchestrator.testing) on the libvirt driver, against the real
libvirtd the libvirt tier uses: a storage pool is created, read, deleted, deleted again.

The secret check is left out: no libvirt step kind takes a secret input (the driver refuses
unknown inputs, so none can be slipped in)."""

from __future__ import annotations

import pytest

from drivers.libvirt import LibvirtDriver
from orchestrator.plan import Action
from orchestrator.testing import CHECKS, Case, check_no_secret_in_outputs
from tests.libvirt.conftest import PREFIX, apply, step_for


@pytest.fixture
def case(request: pytest.FixtureRequest) -> Case:
    tag = request.node.callspec.id.replace("check_", "")[:12].replace("_", "-")
    bad = {"name": f"{PREFIX}-conf-bad", "memory_mib": "lots"}
    return Case(step_for("libvirt.pool", {"name": f"{PREFIX}-conf-{tag}"}),
                step_for("libvirt.domain", bad))


@pytest.mark.parametrize("check", [c for c in CHECKS if c is not check_no_secret_in_outputs],
                         ids=lambda c: c.__name__)
def test_the_libvirt_driver_conforms(check, driver: LibvirtDriver, case: Case):
    try:
        check(driver, case)
    finally:  # leave nothing behind (the session's sweep would too)
        apply(driver, "libvirt.pool", case.step.inputs, Action.DELETE)
