"""Flavors, networks and images through a real Nova, Neutron and Glance: the test plane
(plane.py) or a real cloud named by ORCH_TEST_OS_CLOUD (see conftest.py)."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from os_harness import CloudUnderTest, run_step, step_of, unique

from drivers.openstack import OpenStackDriver
from orchestrator.errors import PermanentError
from orchestrator.plan import Action

pytestmark = pytest.mark.slow


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


def test_flavor_lifecycle_and_change(cloud_driver: OpenStackDriver,
                                     os_cloud: CloudUnderTest) -> None:
    name = unique("orch-flavor")
    inputs: dict[str, object] = {"name": name, "vcpus": 1, "ram": 512, "disk": 1,
                                 "extra_specs": {"hw:cpu_policy": "shared"}}
    first = run_step(cloud_driver, "openstack.flavor", inputs).outputs
    conn = cloud_driver.cloud(os_cloud.name).conn
    flavor = conn.compute.get_flavor(first["id"])
    assert (flavor.vcpus, flavor.ram, flavor.disk) == (1, 512, 1)
    assert conn.compute.fetch_flavor_extra_specs(flavor).extra_specs == {
        "hw:cpu_policy": "shared"}
    # a changed field: the flavor is made again under the same name
    changed = run_step(cloud_driver, "openstack.flavor", {**inputs, "ram": 1024},
                       action=Action.UPDATE, prior=first).outputs
    assert changed["id"] != first["id"]
    assert conn.compute.get_flavor(changed["id"]).ram == 1024
    run_step(cloud_driver, "openstack.flavor", inputs, action=Action.DELETE, prior=changed)
    assert conn.compute.find_flavor(name, ignore_missing=True) is None


def test_network_and_subnet_lifecycle(cloud_driver: OpenStackDriver,
                                      os_cloud: CloudUnderTest) -> None:
    name = unique("orch-net")
    out = lifecycle(cloud_driver, "openstack.network",
                    {"name": name, "mtu": 1400,
                     "subnet": {"cidr": "10.251.0.0/24", "gateway_ip": "10.251.0.1",
                                "dns_nameservers": ["10.251.0.53"]}})
    assert out["subnet_id"]


def test_network_with_a_provider_segment(cloud_driver: OpenStackDriver,
                                         os_cloud: CloudUnderTest) -> None:
    if os_cloud.plane is None:
        pytest.skip("provider segments need the plane's physnet1 (a real cloud has others)")
    name = unique("orch-vlan")
    inputs: dict[str, object] = {
        "name": name, "shared": True,
        "provider": {"network_type": "vlan", "physical_network": "physnet1",
                     "segmentation_id": 142},
        "subnet": {"cidr": "10.142.0.0/24", "enable_dhcp": False}}
    out = run_step(cloud_driver, "openstack.network", inputs).outputs
    net = cloud_driver.cloud(os_cloud.name).conn.network.get_network(out["id"])
    assert (net.provider_network_type, net.provider_physical_network,
            net.provider_segmentation_id) == ("vlan", "physnet1", 142)
    assert net.is_shared
    run_step(cloud_driver, "openstack.network", inputs, action=Action.DELETE, prior=out)
    assert not cloud_driver.read(step_of("openstack.network", inputs), out).exists


def test_image_upload_lifecycle(cloud_driver: OpenStackDriver, tmp_path: Path) -> None:
    data = tmp_path / "tiny.raw"
    data.write_bytes(b"\0" * 1024 * 1024)
    out = lifecycle(cloud_driver, "openstack.image",
                    {"name": unique("orch-image"), "file": str(data), "disk_format": "raw"})
    assert out["checksum"] == "b6d81b360a5672d80c27430f39153e2c"  # md5 of 1 MiB of zeros


class _Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web(tmp_path: Path, os_cloud: CloudUnderTest) -> Iterator[str]:
    """A loopback HTTP server over tmp_path, which the plane's Glance imports from."""
    if os_cloud.plane is None:
        pytest.skip("a real cloud cannot fetch from this machine's loopback")
    handler = lambda *a, **k: _Files(*a, directory=str(tmp_path), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_image_web_download(cloud_driver: OpenStackDriver, web: str, tmp_path: Path) -> None:
    (tmp_path / "disk.raw").write_bytes(b"\1" * 65536)
    out = lifecycle(cloud_driver, "openstack.image",
                    {"name": unique("orch-web"), "url": f"{web}/disk.raw",
                     "disk_format": "raw"}, timeout=120)
    assert out["checksum"]


def test_failed_import_ends_as_a_permanent_error_within_seconds(
        cloud_driver: OpenStackDriver, web: str, os_cloud: CloudUnderTest) -> None:
    """Glance puts an image whose import failed back to `queued`: the wait ends at once
    instead of polling until the step deadline (this hung for 300 s before)."""
    name = unique("orch-404")
    inputs = {"name": name, "url": f"{web}/missing.qcow2"}
    started = time.monotonic()
    with pytest.raises(PermanentError, match="import failed") as err:
        run_step(cloud_driver, "openstack.image", inputs, timeout=300)
    assert time.monotonic() - started < 60
    assert name in str(err.value)
    # applied again: the unfinished image is replaced, not waited on, and fails the same way
    with pytest.raises(PermanentError, match="import failed"):
        run_step(cloud_driver, "openstack.image", inputs, timeout=300)
    conn = cloud_driver.cloud(os_cloud.name).conn
    assert len([i for i in conn.image.images() if i.name == name]) == 1
    run_step(cloud_driver, "openstack.image", inputs, action=Action.DELETE)
