"""The driver conformance kit (orchestrator.testing) on the OpenStack driver, against the
real Keystone/Nova plane of this tier (or ORCH_TEST_OS_CLOUD). The flavor step reaches the
cloud through a clouds.yaml given as a secret reference, as a layer that built the cloud
hands it over, so the kit can check that its password never comes back in outputs, reads
or errors."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
import yaml
from os_harness import CloudUnderTest, unique

from drivers.openstack import OpenStackDriver
from orchestrator.step import Step
from orchestrator.testing import CHECKS, Case


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _case(os_cloud: CloudUnderTest, tmp_path: Path) -> Case:
    handed = tmp_path / "clouds.yaml"
    shutil.copy(os_cloud.clouds_yaml, handed)
    doc = yaml.safe_load(handed.read_text())
    password = str(doc["clouds"][os_cloud.name]["auth"]["password"])
    cloud = {"name": os_cloud.name, "clouds_yaml": {"$secret": f"file:{handed}"}}
    step = Step("test/flavor", "openstack.flavor", "openstack", "flavor", "test",
                {"name": unique("orch-conform"), "vcpus": 1, "ram": 256, "disk": 1,
                 "cloud": cloud}, endpoint=f"openstack:{os_cloud.name}")
    dead_doc = yaml.safe_load(handed.read_text())
    dead_doc["clouds"][os_cloud.name]["auth"]["auth_url"] = (
        f"http://127.0.0.1:{_closed_port()}/v3")
    dead = tmp_path / "dead-clouds.yaml"
    dead.write_text(yaml.safe_dump(dead_doc), encoding="utf-8")
    failing = Step("test/refused", "openstack.flavor", "openstack", "refused", "test",
                   {"name": unique("orch-never"), "vcpus": 1, "ram": 256, "disk": 1,
                    "cloud": {"name": os_cloud.name,
                              "clouds_yaml": {"$secret": f"file:{dead}"}}},
                   endpoint=f"openstack:{os_cloud.name}")
    return Case(step, failing, secrets=(password,), timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_the_openstack_driver_conforms(check, os_cloud: CloudUnderTest,
                                       cloud_driver: OpenStackDriver, tmp_path: Path) -> None:
    check(cloud_driver, _case(os_cloud, tmp_path))
