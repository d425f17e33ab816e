"""``openstack.network`` through Neutron: a network and, when asked, one subnet, each created
once by name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drivers.openstack import bodies
from drivers.openstack.calls import Calls


def ensure_network(c: Calls, inputs: Mapping[str, Any]) -> dict[str, Any]:
    body = bodies.network(inputs)
    name = body["name"]
    net = c.call(f"find network {name}", c.proxy("network").find_network, name,
                 ignore_missing=True)
    if net is None:
        net = c.call(f"create network {name}", c.proxy("network").create_network, **body)
    out: dict[str, Any] = {"id": net.id, "name": name}
    sub = bodies.subnet(inputs, net.id)
    if sub is not None:
        found = c.call(f"find subnet {sub['name']}", c.proxy("network").find_subnet, sub["name"],
                       network_id=net.id, ignore_missing=True)
        if found is None:
            found = c.call(f"create subnet {sub['name']}", c.proxy("network").create_subnet, **sub)
        out["subnet_id"] = found.id
    return out


def delete_network(c: Calls, name_or_id: str) -> None:
    """Delete the network and its subnets (409 while ports remain: retried as transient)."""
    net = c.call(f"find network {name_or_id}", c.proxy("network").find_network, name_or_id,
                 ignore_missing=True)
    if net is None:
        return
    for subnet_id in net.subnet_ids or ():
        c.call(f"delete subnet {subnet_id}", c.proxy("network").delete_subnet, subnet_id,
               ignore_missing=True)
    c.call(f"delete network {name_or_id}", c.proxy("network").delete_network, net,
           ignore_missing=True)
