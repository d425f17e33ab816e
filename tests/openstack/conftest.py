"""Fixtures for the OpenStack driver tests: a real standalone Ironic, and a real OpenStack
control plane (plane.py: Keystone, Placement, Glance, Neutron, Nova with the fake virt
driver), each started once per session, and on demand a second compute host with the real
libvirt driver (plane_libvirt.py).

In CI (``CI=true``) a missing Ironic or plane is an error, not a skip:
``.ci/install.d/60-ironic.sh`` and ``65-openstack-plane.sh`` must have installed them. Set
``ORCH_TEST_OS_CLOUD`` (a clouds.yaml name; the file: ``ORCH_TEST_OS_CLOUDS_YAML``, default
~/.config/openstack/clouds.yaml) to run the same Nova, Glance and Neutron tests against a real
cloud instead; tests that need the plane itself (stopping a service) are skipped there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("openstack")

import ironic_service
import plane as os_plane
import plane_libvirt
from os_harness import CloudUnderTest, ironic_settings

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


@pytest.fixture(scope="session")
def os_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudUnderTest]:
    real = os.environ.get("ORCH_TEST_OS_CLOUD", "")
    if real:
        path = os.environ.get("ORCH_TEST_OS_CLOUDS_YAML",
                              os.path.expanduser("~/.config/openstack/clouds.yaml"))
        yield CloudUnderTest(real, Path(path), os.environ.get("ORCH_TEST_OS_SERVER_IMAGE", ""),
                             os.environ.get("ORCH_TEST_OS_SERVER_FLAVOR", ""))
        return
    why = os_plane.missing()
    if why:
        require_service(why)
    plane = os_plane.start(tmp_path_factory.mktemp("openstack"))
    print(f"\nopenstack plane ready after {plane.startup_seconds} s, "
          f"{plane.rss_mib():.0f} MiB RSS")
    yield CloudUnderTest(plane.cloud, plane.clouds_yaml, plane.image, plane.flavor, plane)
    print(f"\nopenstack plane: {plane.rss_mib():.0f} MiB RSS at the end")
    plane.stop()


@pytest.fixture(scope="session")
def libvirt_host(os_cloud: CloudUnderTest) -> Iterator[plane_libvirt.LibvirtHost | None]:
    """The plane's second compute host, with the real libvirt driver (plane_libvirt.py),
    started when first asked for; None against a real cloud."""
    if os_cloud.plane is None:
        yield None
        return
    why = plane_libvirt.missing()
    if why:
        require_service(why)
    host = plane_libvirt.start(os_cloud.plane)
    print(f"\nlibvirt compute ready after {host.startup_seconds} s, "
          f"{host.rss_mib():.0f} MiB RSS")
    yield host
    host.stop()


@pytest.fixture
def plane(os_cloud: CloudUnderTest) -> os_plane.Plane:
    """The plane itself, for tests that stop its services (not against a real cloud)."""
    if os_cloud.plane is None:
        pytest.skip("needs the test plane (stops its services), not a real cloud")
    return os_cloud.plane


@pytest.fixture
def cloud_driver(os_cloud: CloudUnderTest) -> Iterator[OpenStackDriver]:
    drv = OpenStackDriver(os_cloud.settings())
    yield drv
    drv.close()
