"""Nova, Glance and Neutron kinds against a real cloud, named by ORCH_TEST_OS_CLOUD (a
clouds.yaml entry); skipped without one. ORCH_TEST_OS_SERVER_IMAGE and
ORCH_TEST_OS_SERVER_FLAVOR (existing names) also enable the server test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from os_harness import run_step, step_of, unique

from drivers.openstack import OpenStackDriver
from drivers.openstack.settings import OpenStackSettings
from orchestrator.plan import Action

CLOUD = os.environ.get("ORCH_TEST_OS_CLOUD", "")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not CLOUD, reason="ORCH_TEST_OS_CLOUD names no real cloud")]


@pytest.fixture
def cloud_driver() -> Iterator[OpenStackDriver]:
    drv = OpenStackDriver(OpenStackSettings(cloud=CLOUD, poll_interval=3.0))
    yield drv
    drv.close()


def lifecycle(driver: OpenStackDriver, kind: str, inputs: dict[str, object],
              timeout: float = 300) -> dict[str, object]:
    outputs = dict(run_step(driver, kind, inputs, timeout=timeout).outputs)
    again = run_step(driver, kind, inputs, action=Action.UPDATE, prior=outputs,
                     timeout=timeout)
    assert again.outputs["id"] == outputs["id"]  # found by name, not created twice
    assert driver.read(step_of(kind, inputs), outputs).exists
    run_step(driver, kind, inputs, action=Action.DELETE, prior=outputs, timeout=timeout)
    assert not driver.read(step_of(kind, inputs), outputs).exists
    return outputs


def test_flavor_lifecycle(cloud_driver: OpenStackDriver) -> None:
    lifecycle(cloud_driver, "openstack.flavor",
              {"name": unique("orch-flavor"), "vcpus": 1, "ram": 512, "disk": 1,
               "extra_specs": {"hw:cpu_policy": "shared"}})


def test_network_and_subnet_lifecycle(cloud_driver: OpenStackDriver) -> None:
    out = lifecycle(cloud_driver, "openstack.network",
                    {"name": unique("orch-net"), "subnet": {"cidr": "10.251.0.0/24"}})
    assert out["subnet_id"]


def test_image_upload_lifecycle(cloud_driver: OpenStackDriver, tmp_path: Path) -> None:
    data = tmp_path / "tiny.raw"
    data.write_bytes(b"\0" * 1024 * 1024)
    out = lifecycle(cloud_driver, "openstack.image",
                    {"name": unique("orch-image"), "file": str(data), "disk_format": "raw"})
    assert out["checksum"]


@pytest.mark.skipif(not (os.environ.get("ORCH_TEST_OS_SERVER_IMAGE")
                         and os.environ.get("ORCH_TEST_OS_SERVER_FLAVOR")),
                    reason="needs ORCH_TEST_OS_SERVER_IMAGE and ORCH_TEST_OS_SERVER_FLAVOR")
def test_server_becomes_active_and_is_gone_after_delete(cloud_driver: OpenStackDriver) -> None:
    out = lifecycle(cloud_driver, "openstack.server",
                    {"name": unique("orch-vm"), "image": os.environ["ORCH_TEST_OS_SERVER_IMAGE"],
                     "flavor": os.environ["ORCH_TEST_OS_SERVER_FLAVOR"]}, timeout=600)
    assert out["status"] == "ACTIVE"
