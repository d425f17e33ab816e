"""``openstack.flavor`` and ``openstack.server`` through Nova.

A flavor cannot change in place: when the step's fields differ from the existing flavor's it
is deleted and created again (servers keep the flavor they were built with). A server is
created once by name and waited for until ``ACTIVE``; ``ERROR`` ends the step with Nova's
fault message. Delete waits until the server is gone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drivers.openstack import bodies
from drivers.openstack.calls import Calls
from drivers.openstack.waiting import poll


def ensure_flavor(c: Calls, inputs: Mapping[str, Any]) -> dict[str, Any]:
    body = bodies.flavor(inputs)
    name = body["name"]
    flavor = c.call(f"find flavor {name}", c.proxy("compute").find_flavor, name,
                    ignore_missing=True)
    if flavor is not None and any(getattr(flavor, k) != v for k, v in body.items()):
        c.call(f"delete flavor {name}", c.proxy("compute").delete_flavor, flavor)
        flavor = None
    if flavor is None:
        flavor = c.call(f"create flavor {name}", c.proxy("compute").create_flavor, **body)
    specs = {str(k): str(v) for k, v in dict(inputs.get("extra_specs") or {}).items()}
    if specs:
        c.call(f"set extra specs of {name}", c.proxy("compute").create_flavor_extra_specs,
               flavor, specs)
    return {"id": flavor.id, "name": name}


def delete_flavor(c: Calls, name_or_id: str) -> None:
    flavor = c.call(f"find flavor {name_or_id}", c.proxy("compute").find_flavor, name_or_id,
                    ignore_missing=True)
    if flavor is not None:
        c.call(f"delete flavor {name_or_id}", c.proxy("compute").delete_flavor, flavor,
               ignore_missing=True)


def _resolve(c: Calls, kind: str, finder: Any, name: str) -> str:
    found = c.call(f"find {kind} {name}", finder, name, ignore_missing=True)
    if found is None:
        from orchestrator.errors import PermanentError

        raise PermanentError(f"no {kind} named {name!r}", endpoint=c.endpoint,
                             operation=f"find {kind} {name}",
                             hint=f"create the {kind} first (an earlier step) or fix the name")
    return str(found.id)


def ensure_server(c: Calls, inputs: Mapping[str, Any]) -> dict[str, Any]:
    name = str(inputs.get("name") or "")
    server = c.call(f"find server {name}", c.proxy("compute").find_server, name,
                    ignore_missing=True)
    if _gone(server):
        networks = []
        for net in bodies.server_networks(inputs):
            if "port" in net:
                networks.append({"port": _resolve(c, "port", c.proxy("network").find_port,
                                                  net["port"])})
                continue
            entry = {"uuid": _resolve(c, "network", c.proxy("network").find_network,
                                      net["network"])}
            if net.get("fixed_ip"):
                entry["fixed_ip"] = net["fixed_ip"]
            networks.append(entry)
        body = bodies.server(
            inputs, networks=networks,
            image_id=_resolve(c, "image", c.proxy("image").find_image, str(inputs.get("image"))),
            flavor_id=_resolve(c, "flavor", c.proxy("compute").find_flavor,
                               str(inputs.get("flavor"))))
        server = c.call(f"create server {name}", c.proxy("compute").create_server, **body)
    server = poll(lambda: c.call(f"read server {name}", c.proxy("compute").get_server, server.id),
                  done=lambda s: s.status == "ACTIVE",
                  failed=lambda s: (f"server is ERROR: {(s.fault or {}).get('message', '')}"
                                    if s.status == "ERROR" else ""),
                  what=f"wait for server {name} ACTIVE", endpoint=c.endpoint,
                  deadline=c.deadline, interval=c.poll_interval, report=c.report,
                  cancelled=c.cancelled)
    addresses = {net: [a.get("addr") for a in addrs]
                 for net, addrs in (server.addresses or {}).items()}
    return {"id": server.id, "name": name, "status": server.status, "addresses": addresses}


def _gone(server: Any) -> bool:
    """No server, or one Nova keeps only as a record (an admin still reads a deleted server
    by its id, with status DELETED)."""
    return server is None or server.status in ("DELETED", "SOFT_DELETED")


def _flavor_name(server: Any) -> str:
    """The server's flavor name (microversion 2.47+ embeds it; older ones give its id)."""
    flavor = server.flavor
    for key in ("original_name", "name", "id"):
        value = flavor.get(key) if isinstance(flavor, Mapping) else getattr(flavor, key, None)
        if value:
            return str(value)
    return ""


def observe_server(c: Calls, key: str, inputs: Mapping[str, Any]
                   ) -> tuple[bool, dict[str, str], dict[str, Any]]:
    """(exists, drift, outputs seen) of the step's server: drift when it is no longer ACTIVE
    or runs another flavor than the step's (resized outside orch)."""
    server = c.call(f"find server {key}", c.proxy("compute").find_server, key,
                    ignore_missing=True)
    if _gone(server):
        return False, {}, {}
    server = c.call(f"read server {key}", c.proxy("compute").get_server, server.id)
    if _gone(server):
        return False, {}, {}
    drift: dict[str, str] = {}
    if server.status != "ACTIVE":
        drift["status"] = f"server is {server.status}, the step left it ACTIVE"
    want, have = str(inputs.get("flavor") or ""), _flavor_name(server)
    if want and have and have != want:
        drift["flavor"] = f"server runs flavor {have}, the step wants {want}"
    return True, drift, {"status": server.status}


def delete_server(c: Calls, name_or_id: str) -> None:
    server = c.call(f"find server {name_or_id}", c.proxy("compute").find_server, name_or_id,
                    ignore_missing=True)
    if _gone(server):
        return
    c.call(f"delete server {name_or_id}", c.proxy("compute").delete_server, server,
           ignore_missing=True)
    poll(lambda: c.call(f"read server {name_or_id}", c.proxy("compute").find_server, server.id,
                        ignore_missing=True),
         done=_gone, failed=lambda _s: "",
         what=f"wait for server {name_or_id} to go", endpoint=c.endpoint, deadline=c.deadline,
         interval=c.poll_interval, report=c.report, cancelled=c.cancelled)
