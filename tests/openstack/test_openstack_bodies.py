"""The request bodies sent to Nova, Glance and Neutron, built from step inputs. Nova, Glance
and Neutron cannot run on this machine; these prove the shape, and test_openstack_cloud.py
proves the calls against a real cloud when ORCH_TEST_OS_CLOUD is set."""

from __future__ import annotations

import base64

import pytest

from drivers.openstack import bodies
from drivers.openstack.bodies import InputError


def test_flavor_fields_and_limits() -> None:
    assert bodies.flavor({"name": "m1.lab", "vcpus": 2, "ram": 4096, "disk": 20}) == {
        "name": "m1.lab", "vcpus": 2, "ram": 4096, "disk": 20, "is_public": True}
    with pytest.raises(InputError, match="vcpus >= 1"):
        bodies.flavor({"name": "x", "vcpus": 0, "ram": 1})
    with pytest.raises(InputError, match="`ram` is required"):
        bodies.flavor({"name": "x", "vcpus": 1})


def test_image_needs_exactly_one_data_source_and_keeps_properties() -> None:
    body = bodies.image({"name": "deb12", "url": "http://x/deb.qcow2",
                         "properties": {"hw_firmware_type": "uefi"}})
    assert body == {"name": "deb12", "disk_format": "qcow2", "container_format": "bare",
                    "visibility": "private", "hw_firmware_type": "uefi"}
    with pytest.raises(InputError, match="exactly one"):
        bodies.image({"name": "x", "url": "http://a", "file": "/b"})


def test_network_with_a_vlan_provider_segment_and_a_subnet_without_gateway() -> None:
    inputs = {"name": "prov", "shared": True, "mtu": 9000,
              "provider": {"network_type": "vlan", "physical_network": "physnet1",
                           "segmentation_id": 120},
              "subnet": {"cidr": "10.20.0.0/24", "gateway_ip": None,
                         "allocation_pools": [{"start": "10.20.0.10", "end": "10.20.0.99"}]}}
    assert bodies.network(inputs) == {
        "name": "prov", "is_shared": True, "mtu": 9000, "provider_network_type": "vlan",
        "provider_physical_network": "physnet1", "provider_segmentation_id": 120}
    sub = bodies.subnet(inputs, "net-id")
    assert sub == {"name": "prov-subnet", "network_id": "net-id", "cidr": "10.20.0.0/24",
                   "ip_version": 4, "is_dhcp_enabled": True, "gateway_ip": None,
                   "allocation_pools": [{"start": "10.20.0.10", "end": "10.20.0.99"}]}
    assert bodies.subnet({"name": "n"}, "net-id") is None


def test_server_body_encodes_user_data_and_names_networks_by_id() -> None:
    body = bodies.server({"name": "vm1", "user_data": "#cloud-config\n",
                          "security_groups": ["default"], "key_name": "lab"},
                         image_id="img", flavor_id="flv", networks=[{"uuid": "net"}])
    assert body["networks"] == [{"uuid": "net"}]
    assert base64.b64decode(body["user_data"]) == b"#cloud-config\n"
    assert body["security_groups"] == [{"name": "default"}]
    no_nets = bodies.server({"name": "vm2"}, image_id="i", flavor_id="f", networks=[])
    assert no_nets["networks"] == "none"  # Nova's explicit "no network", not auto-allocation


def test_server_networks_accept_names_fixed_ips_and_ports() -> None:
    assert bodies.server_networks({"networks": ["prov", {"network": "mgmt",
                                                         "fixed_ip": "10.0.0.5"},
                                                {"port": "p1"}]}) == [
        {"network": "prov"}, {"network": "mgmt", "fixed_ip": "10.0.0.5"}, {"port": "p1"}]
    with pytest.raises(InputError, match="networks"):
        bodies.server_networks({"networks": [{"fixed_ip": "10.0.0.5"}]})


def test_the_shorthands_profiles_use() -> None:
    assert bodies.flavor({"name": "l1", "vcpus": 16, "ram_mib": 65536, "disk_gib": 160}) == {
        "name": "l1", "vcpus": 16, "ram": 65536, "disk": 160, "is_public": True}
    sub = bodies.subnet({"name": "k8s-pods", "cidr": "10.81.0.0/16"}, "net-id")
    assert sub is not None and sub["cidr"] == "10.81.0.0/16" and sub["name"] == "k8s-pods-subnet"
    assert bodies.server_networks({"network": "tenant-net"}) == [{"network": "tenant-net"}]


def test_boot_from_volume_copies_the_image_into_a_boot_volume() -> None:
    body = bodies.server({"name": "vm", "boot_from_volume": True, "volume_size": 40},
                         image_id="img", flavor_id="flv", networks=[])
    assert "image_id" not in body
    assert body["block_device_mapping"] == [{
        "boot_index": 0, "uuid": "img", "source_type": "image", "destination_type": "volume",
        "delete_on_termination": True, "volume_size": 40}]
    with pytest.raises(InputError, match="volume_size"):
        bodies.server({"name": "vm", "boot_from_volume": True}, image_id="i", flavor_id="f",
                      networks=[])


def test_subnet_gateway_is_an_alias_of_gateway_ip() -> None:
    body = bodies.subnet({"name": "n", "subnet": {"cidr": "10.77.0.0/24",
                                                  "gateway": "10.77.0.1"}}, "net-id")
    assert body is not None and body["gateway_ip"] == "10.77.0.1"
