"""Request bodies for Nova, Glance and Neutron built from step inputs: pure functions, so the
shape of what is sent is tested without a cloud. A bad input raises :class:`InputError`."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any


class InputError(ValueError):
    """A step input that cannot be turned into a request."""


def _need(inputs: Mapping[str, Any], key: str) -> Any:
    value = inputs.get(key)
    if value in (None, "", [], {}):
        raise InputError(f"input `{key}` is required")
    return value


def flavor(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """``create_flavor`` fields: name, vcpus, ram (MiB), disk (GiB), is_public."""
    ram_key = "ram_mib" if "ram_mib" in inputs else "ram"  # ram_mib, disk_gib: aliases
    vcpus, ram = int(_need(inputs, "vcpus")), int(_need(inputs, ram_key))
    if vcpus < 1 or ram < 1:
        raise InputError("a flavor needs vcpus >= 1 and ram >= 1 (MiB)")
    disk = int(inputs.get("disk_gib", inputs.get("disk", 0)))
    return {"name": str(_need(inputs, "name")), "vcpus": vcpus, "ram": ram, "disk": disk,
            "is_public": bool(inputs.get("is_public", True))}


def image(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """``create_image`` fields; the data comes from ``url`` (web-download) or ``file``."""
    if bool(inputs.get("url")) == bool(inputs.get("file")):
        raise InputError("an image needs exactly one of `url` (imported by Glance) or `file`")
    body: dict[str, Any] = {
        "name": str(_need(inputs, "name")),
        "disk_format": str(inputs.get("disk_format") or "qcow2"),
        "container_format": str(inputs.get("container_format") or "bare"),
        "visibility": str(inputs.get("visibility") or "private"),
    }
    for key in ("min_disk", "min_ram"):
        if inputs.get(key):
            body[key] = int(inputs[key])
    body.update({str(k): str(v) for k, v in dict(inputs.get("properties") or {}).items()})
    return body


def network(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """``create_network`` fields: name, shared, external, mtu, provider segment."""
    body: dict[str, Any] = {"name": str(_need(inputs, "name"))}
    for key, field in (("shared", "is_shared"), ("external", "is_router_external")):
        if key in inputs:
            body[field] = bool(inputs[key])
    if inputs.get("mtu"):
        body["mtu"] = int(inputs["mtu"])
    provider = dict(inputs.get("provider") or {})
    for key in ("network_type", "physical_network", "segmentation_id"):
        if provider.get(key) is not None:
            body[f"provider_{key}"] = provider[key]
    return body


def subnet(inputs: Mapping[str, Any], network_id: str) -> dict[str, Any] | None:
    """``create_subnet`` fields from the ``subnet`` input, or None when there is none."""
    sub = dict(inputs.get("subnet") or {})
    if inputs.get("cidr"):  # shorthand: `cidr` beside the network's name
        sub.setdefault("cidr", inputs["cidr"])
    if not sub:
        return None
    body: dict[str, Any] = {
        "name": str(sub.get("name") or f"{inputs['name']}-subnet"), "network_id": network_id,
        "cidr": str(_need(sub, "cidr")), "ip_version": int(sub.get("ip_version", 4)),
        "is_dhcp_enabled": bool(sub.get("enable_dhcp", True)),
    }
    for key in ("gateway_ip", "gateway"):  # gateway: an alias
        if key in sub:
            body["gateway_ip"] = sub[key]  # None: no gateway
    if sub.get("dns_nameservers"):
        body["dns_nameservers"] = list(sub["dns_nameservers"])
    if sub.get("allocation_pools"):
        body["allocation_pools"] = [dict(p) for p in sub["allocation_pools"]]
    return body


def server(inputs: Mapping[str, Any], *, image_id: str, flavor_id: str,
           networks: list[dict[str, str]]) -> dict[str, Any]:
    """``create_server`` fields once image, flavor and networks are resolved to ids."""
    body: dict[str, Any] = {"name": str(_need(inputs, "name")), "image_id": image_id,
                            "flavor_id": flavor_id, "networks": networks or "none"}
    if inputs.get("boot_from_volume"):  # the image is copied into a new boot volume
        body.pop("image_id")
        body["block_device_mapping"] = [{
            "boot_index": 0, "uuid": image_id, "source_type": "image",
            "destination_type": "volume", "delete_on_termination": True,
            "volume_size": int(_need(inputs, "volume_size"))}]
    if inputs.get("key_name"):
        body["key_name"] = str(inputs["key_name"])
    if inputs.get("user_data"):
        body["user_data"] = base64.b64encode(str(inputs["user_data"]).encode()).decode()
    if inputs.get("security_groups"):
        body["security_groups"] = [{"name": str(g)} for g in inputs["security_groups"]]
    if inputs.get("availability_zone"):
        body["availability_zone"] = str(inputs["availability_zone"])
    if inputs.get("metadata"):
        body["metadata"] = {str(k): str(v) for k, v in dict(inputs["metadata"]).items()}
    return body


def server_networks(inputs: Mapping[str, Any]) -> list[dict[str, str]]:
    """Each of ``networks``: a name/id, or {network, fixed_ip} / {port}; ids resolved later."""
    out = []
    nets = list(inputs.get("networks") or ())
    if inputs.get("network"):  # shorthand: one network
        nets.insert(0, inputs["network"])
    for net in nets:
        if isinstance(net, str):
            out.append({"network": net})
        elif isinstance(net, Mapping) and (net.get("network") or net.get("port")):
            out.append({str(k): str(v) for k, v in net.items()})
        else:
            raise InputError("each of `networks` is a name or {network, fixed_ip} or {port}")
    return out
