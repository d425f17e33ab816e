"""Fixtures for the OpenStack driver tests: a real standalone Ironic started per session.

In CI (``CI=true``) a missing Ironic is an error, not a skip: ``.ci/install.d/60-ironic.sh``
must have installed it. Set ``ORCH_TEST_OS_CLOUD`` (a clouds.yaml name) to also run the Nova,
Glance and Neutron tests against a real cloud.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("openstack")

import ironic_service
from os_harness import ironic_settings

from drivers.openstack import OpenStackDriver
from tests.conftest import require_service


@pytest.fixture(scope="session")
def ironic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ironic_service.Ironic]:
    if not ironic_service.installed():
        message = (f"no Ironic in {ironic_service.ironic_bin()}: run "
                   ".ci/install.d/60-ironic.sh or set ORCH_IRONIC_BIN")
        require_service(message)
    service = ironic_service.start(tmp_path_factory.mktemp("ironic"))
    print(f"\nironic ready at {service.url} after {service.startup_seconds} s")
    yield service
    service.stop()


@pytest.fixture
def driver(ironic: ironic_service.Ironic) -> Iterator[OpenStackDriver]:
    drv = OpenStackDriver(ironic_settings(ironic.url))
    yield drv
    drv.close()
