"""``openstack.server`` through a real Nova (the plane's: real API, conductor, scheduler and
compute; the hypervisor is Nova's fake driver) or a real cloud (ORCH_TEST_OS_CLOUD)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from os_harness import CloudUnderTest, run_step, step_of, unique

from drivers.openstack import OpenStackDriver
from orchestrator.errors import PermanentError
from orchestrator.plan import Action

pytestmark = pytest.mark.slow


@pytest.fixture
def server_cloud(os_cloud: CloudUnderTest) -> CloudUnderTest:
    if not (os_cloud.image and os_cloud.flavor):
        pytest.skip("a real cloud needs ORCH_TEST_OS_SERVER_IMAGE and "
                    "ORCH_TEST_OS_SERVER_FLAVOR")
    return os_cloud


@pytest.fixture
def network(cloud_driver: OpenStackDriver) -> Iterator[dict[str, Any]]:
    inputs = {"name": unique("orch-srvnet"), "subnet": {"cidr": "10.252.0.0/24"}}
    out = dict(run_step(cloud_driver, "openstack.network", inputs).outputs)
    yield {**inputs, **out}
    run_step(cloud_driver, "openstack.network", inputs, action=Action.DELETE, prior=out,
             timeout=120)


def test_server_without_ports_lifecycle_and_drift(cloud_driver: OpenStackDriver,
                                                  server_cloud: CloudUnderTest) -> None:
    inputs = {"name": unique("orch-vm"), "image": server_cloud.image,
              "flavor": server_cloud.flavor, "metadata": {"role": "test"}}
    started = time.monotonic()
    out = dict(run_step(cloud_driver, "openstack.server", inputs, timeout=600).outputs)
    built = time.monotonic() - started
    assert out["status"] == "ACTIVE"
    print(f"\nserver ACTIVE after {built:.1f} s")
    conn = cloud_driver.cloud(server_cloud.name).conn
    assert conn.compute.get_server(out["id"]).metadata == {"role": "test"}
    step = step_of("openstack.server", inputs)
    seen = cloud_driver.read(step, out)
    assert seen.exists and not seen.drift
    # applied again: nothing new
    again = run_step(cloud_driver, "openstack.server", inputs, action=Action.UPDATE, prior=out)
    assert again.outputs["id"] == out["id"]
    assert len([s for s in conn.compute.servers() if s.name == inputs["name"]]) == 1
    # deleted outside orch: read says so
    conn.compute.delete_server(out["id"])
    conn.compute.wait_for_delete(conn.compute.get_server(out["id"]), wait=120)
    assert not cloud_driver.read(step, out).exists
    # applied again: made again; deleted by orch: gone
    out = dict(run_step(cloud_driver, "openstack.server", inputs, timeout=600).outputs)
    run_step(cloud_driver, "openstack.server", inputs, action=Action.DELETE, prior=out,
             timeout=300)
    assert not cloud_driver.read(step, out).exists


def test_server_resized_outside_orch_is_drift(cloud_driver: OpenStackDriver,
                                              os_cloud: CloudUnderTest) -> None:
    if os_cloud.plane is None:
        pytest.skip("resizing on a real cloud needs a second flavor that fits")
    flavor = {"name": unique("orch-big"), "vcpus": 2, "ram": 128, "disk": 1}
    run_step(cloud_driver, "openstack.flavor", flavor)
    inputs = {"name": unique("orch-resized"), "image": os_cloud.image,
              "flavor": os_cloud.flavor}
    out = dict(run_step(cloud_driver, "openstack.server", inputs, timeout=600).outputs)
    conn = cloud_driver.cloud(os_cloud.name).conn
    try:
        server = conn.compute.get_server(out["id"])
        conn.compute.resize_server(server, conn.compute.find_flavor(flavor["name"]).id)
        server = conn.compute.wait_for_server(server, status="VERIFY_RESIZE", wait=180)
        conn.compute.confirm_server_resize(server)
        conn.compute.wait_for_server(server, status="ACTIVE", wait=180)
        drift = cloud_driver.read(step_of("openstack.server", inputs), out).drift
        assert set(drift) == {"flavor"}
        assert flavor["name"] in drift["flavor"]
    finally:
        run_step(cloud_driver, "openstack.server", inputs, action=Action.DELETE, prior=out,
                 timeout=300)
        run_step(cloud_driver, "openstack.flavor", flavor, action=Action.DELETE)


def test_server_on_a_network_gets_a_bound_port(cloud_driver: OpenStackDriver,
                                               server_cloud: CloudUnderTest,
                                               network: dict[str, Any]) -> None:
    inputs = {"name": unique("orch-vm-net"), "image": server_cloud.image,
              "flavor": server_cloud.flavor,
              "networks": [{"network": network["name"], "fixed_ip": "10.252.0.10"}]}
    out = dict(run_step(cloud_driver, "openstack.server", inputs, timeout=600).outputs)
    try:
        assert out["addresses"] == {network["name"]: ["10.252.0.10"]}
        conn = cloud_driver.cloud(server_cloud.name).conn
        ports = list(conn.network.ports(device_id=out["id"]))
        assert len(ports) == 1 and ports[0].status == "ACTIVE"
        assert ports[0].binding_vif_type != "binding_failed"
    finally:
        run_step(cloud_driver, "openstack.server", inputs, action=Action.DELETE, prior=out,
                 timeout=300)


def test_server_on_an_existing_port(cloud_driver: OpenStackDriver,
                                    server_cloud: CloudUnderTest,
                                    network: dict[str, Any]) -> None:
    conn = cloud_driver.cloud(server_cloud.name).conn
    port = conn.network.create_port(network_id=network["id"], name=unique("orch-port"))
    inputs = {"name": unique("orch-vm-port"), "image": server_cloud.image,
              "flavor": server_cloud.flavor, "networks": [{"port": port.name}]}
    out = dict(run_step(cloud_driver, "openstack.server", inputs, timeout=600).outputs)
    try:
        assert conn.network.get_port(port.id).device_id == out["id"]
    finally:
        run_step(cloud_driver, "openstack.server", inputs, action=Action.DELETE, prior=out,
                 timeout=300)
        conn.network.delete_port(port.id, ignore_missing=True)


def test_a_server_no_host_fits_fails_permanently_with_novas_fault(
        cloud_driver: OpenStackDriver, server_cloud: CloudUnderTest) -> None:
    huge = {"name": unique("orch-huge"), "vcpus": 1, "ram": 64 * 1024 * 1024, "disk": 1}
    run_step(cloud_driver, "openstack.flavor", huge)
    inputs = {"name": unique("orch-nofit"), "image": server_cloud.image,
              "flavor": huge["name"]}
    try:
        started = time.monotonic()
        with pytest.raises(PermanentError, match="server is ERROR: No valid host"):
            run_step(cloud_driver, "openstack.server", inputs, timeout=300)
        assert time.monotonic() - started < 120
    finally:
        run_step(cloud_driver, "openstack.server", inputs, action=Action.DELETE, timeout=300)
        run_step(cloud_driver, "openstack.flavor", huge, action=Action.DELETE)


def test_a_missing_image_is_named(cloud_driver: OpenStackDriver,
                                  server_cloud: CloudUnderTest) -> None:
    with pytest.raises(PermanentError, match="no image named 'orch-no-such-image'"):
        run_step(cloud_driver, "openstack.server",
                 {"name": unique("orch-noimg"), "image": "orch-no-such-image",
                  "flavor": server_cloud.flavor})
