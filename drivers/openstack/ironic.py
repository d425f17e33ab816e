"""``ironic.node``: enroll a bare-metal node and move it to ``available`` (or ``manageable``),
the way an operator does with ``baremetal node create / manage / inspect / provide``.

The node is found by name first, so a repeated step resumes where the last attempt stopped:
each pass reads the provision state and makes the one transition that leads on from it,
then polls until the node leaves the transitional state, all bounded by the step deadline.
Delete undeploys an ``active`` node (``deleted``), waits for it to settle, then deletes it.

BMC passwords arrive as :class:`~orchestrator.secrets.Secret` and are revealed only into the
request body; Ironic masks them when it answers, so they are never compared or recorded.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from drivers.openstack.calls import Calls
from orchestrator.errors import PermanentError, StepTimeoutError
from orchestrator.secrets import Secret

SERVICE = "baremetal"
#: provision state -> the verb that leads on from it towards available/manageable
NEXT = {"enroll": "manage", "clean failed": "manage", "inspect failed": "manage",
        "adopt failed": "manage"}
STABLE = {"enroll", "manageable", "available", "active", "clean failed", "inspect failed",
          "deploy failed", "error", "adopt failed", "rescue", "rescue failed",
          "unrescue failed", "service failed"}
INTERFACES = ("bios", "boot", "console", "deploy", "inspect", "management", "network",
              "power", "raid", "rescue", "storage", "vendor", "firmware")
BMC_KEYS = {
    "redfish": {"address": "redfish_address", "username": "redfish_username",
                "password": "redfish_password", "system_id": "redfish_system_id",
                "verify_ca": "redfish_verify_ca"},
    "ipmi": {"address": "ipmi_address", "username": "ipmi_username",
             "password": "ipmi_password", "port": "ipmi_port"},
}


@dataclass(frozen=True)
class NodeSpec:
    """What the step asks for, checked before any request."""

    name: str
    driver: str
    driver_info: Mapping[str, Any]
    properties: Mapping[str, Any]
    resource_class: str
    interfaces: Mapping[str, str]
    ports: tuple[str, ...]
    inspect: bool
    target: str  # "available" or "manageable"

    @classmethod
    def from_inputs(cls, inputs: Mapping[str, Any]) -> NodeSpec:
        name = str(inputs.get("name") or "")
        driver = str(inputs.get("driver") or "")
        if not name or not driver:
            raise PermanentError("ironic.node needs `name` and `driver` (redfish, ipmi, ...)",
                                 operation="ironic.node")
        info = dict(inputs.get("driver_info") or {})
        bmc = dict(inputs.get("bmc") or {})
        for key, value in bmc.items():
            mapped = BMC_KEYS.get(driver, {}).get(key)
            if mapped is None:
                raise PermanentError(f"bmc.{key} has no meaning for driver {driver}; use "
                                     "driver_info", operation="ironic.node")
            info.setdefault(mapped, value)
        target = "manageable" if inputs.get("provide") is False else "available"
        return cls(name, driver, info, dict(inputs.get("properties") or {}),
                   str(inputs.get("resource_class") or ""),
                   {f"{k}_interface": str(v) for k, v in dict(inputs.get("interfaces") or {}
                                                               ).items() if k in INTERFACES},
                   tuple(str(m).lower() for m in inputs.get("ports") or ()),
                   bool(inputs.get("inspect", False)), target)

    def secrets(self) -> tuple[str, ...]:
        return tuple(v.reveal() for v in self.driver_info.values() if isinstance(v, Secret))

    def revealed_info(self) -> dict[str, Any]:
        return {k: v.reveal() if isinstance(v, Secret) else v
                for k, v in self.driver_info.items()}


class NodeOps(Calls):
    """The Ironic calls one step makes, each translated at the boundary."""

    @property
    def bm(self) -> Any:
        return self.proxy("baremetal")

    def find(self, name_or_id: str) -> Any:
        return self.call(f"find node {name_or_id}", self.bm.find_node, name_or_id,
                         ignore_missing=True)

    def settle(self, node: Any, what: str) -> Any:
        """Poll ``node`` until its provision state is stable; StepTimeoutError past the
        deadline."""
        started = time.monotonic()
        while node.provision_state not in STABLE or node.target_provision_state:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0 or self.cancelled.is_set():
                raise StepTimeoutError(
                    f"node {node.name} still {node.provision_state} at the step deadline "
                    f"({what})", endpoint=self.endpoint, operation=what,
                    hint="raise the step's timeout; `baremetal node show` tells why")
            self.report(f"node {node.name}: {node.provision_state}, "
                        f"{time.monotonic() - started:.0f} s")
            self.cancelled.wait(min(self.poll_interval, remaining))
            node = self.call(f"read node {node.name}", self.bm.get_node, node.id)
        return node

    def transition(self, node: Any, verb: str) -> Any:
        self.report(f"node {node.name}: {verb}")
        before = node.provision_state
        self.call(f"{verb} node {node.name}", self.bm.set_node_provision_state, node, verb)
        node = self.settle(self.call(f"read node {node.name}", self.bm.get_node, node.id), verb)
        if node.provision_state == before and node.last_error:
            raise PermanentError(f"{verb} failed, node {node.name} is {before}: "
                                 f"{node.last_error}", endpoint=self.endpoint,
                                 operation=f"{verb} node {node.name}",
                                 hint="check the BMC address and credentials in driver_info")
        if node.provision_state.endswith("failed"):
            raise PermanentError(f"{verb} failed, node {node.name} is "
                                 f"{node.provision_state}: {node.last_error or 'no reason'}",
                                 endpoint=self.endpoint, operation=f"{verb} node {node.name}")
        return node


def enroll(ops: NodeOps, spec: NodeSpec) -> dict[str, Any]:
    """Create or update the node, add its ports, and drive it to ``spec.target``."""
    node = ops.find(spec.name)
    if node is None:
        fields: dict[str, Any] = {"name": spec.name, "driver": spec.driver,
                                  "driver_info": spec.revealed_info(),
                                  "properties": dict(spec.properties), **spec.interfaces}
        if spec.resource_class:
            fields["resource_class"] = spec.resource_class
        node = ops.call(f"create node {spec.name}", ops.bm.create_node, **fields)
    else:
        node = _update(ops, node, spec)
    _ports(ops, node, spec.ports)
    transitions: list[str] = []
    inspect_next = False  # inspection runs once, right after the node is first managed
    node = ops.settle(node, "wait for a stable state")
    while True:
        state = node.provision_state
        if state == "manageable" and inspect_next:
            verb, inspect_next = "inspect", False
        elif state in (spec.target, "active"):
            break  # active: deployed by someone; enrolment is done, nothing here undeploys it
        elif state == "manageable":
            verb = "provide"
        elif state == "available":
            verb = "manage"  # the step wants it manageable
        elif state in NEXT:
            verb = NEXT[state]
            inspect_next = spec.inspect and state == "enroll"
        else:
            raise PermanentError(f"node {spec.name} is {state}: {node.last_error or ''}",
                                 endpoint=ops.endpoint, operation=f"enroll node {spec.name}",
                                 hint="recover it by hand (`baremetal node` verbs), then "
                                      "apply again")
        node = ops.transition(node, verb)
        transitions.append(verb)
    return {**outputs(ops, node), "transitions": transitions}


def _update(ops: NodeOps, node: Any, spec: NodeSpec) -> Any:
    """Patch the fields the step owns when they differ (masked passwords are not compared)."""
    changes: dict[str, Any] = {}
    if node.driver != spec.driver:
        changes["driver"] = spec.driver
    info = spec.revealed_info()
    current = dict(node.driver_info or {})
    if any(current.get(k) != v for k, v in info.items()
           if not isinstance(spec.driver_info.get(k), Secret)) or changes:
        changes["driver_info"] = {**current, **info}
    if spec.properties and any((node.properties or {}).get(k) != v
                               for k, v in spec.properties.items()):
        changes["properties"] = {**(node.properties or {}), **spec.properties}
    for key, value in spec.interfaces.items():
        if getattr(node, key, None) != value:
            changes[key] = value
    if not changes:
        return node
    return ops.call(f"update node {spec.name}", ops.bm.update_node, node, **changes)


def _ports(ops: NodeOps, node: Any, macs: tuple[str, ...]) -> None:
    if not macs:
        return
    have = {p.address.lower() for p in ops.call(f"list ports of {node.name}", ops.bm.ports,
                                                 node_uuid=node.id)}
    for mac in macs:
        if mac not in have:
            ops.call(f"create port {mac}", ops.bm.create_port, node_uuid=node.id, address=mac)


def outputs(ops: NodeOps, node: Any) -> dict[str, Any]:
    return {"uuid": node.id, "name": node.name, "driver": node.driver,
            "provision_state": node.provision_state, "endpoint": ops.endpoint}


UNDEPLOYABLE = {"active", "deploy failed", "error", "wait call-back", "rescue",
                "rescue failed", "unrescue failed"}


def remove(ops: NodeOps, name_or_id: str) -> None:
    """Undeploy when needed, then delete the node; nothing to do when it is gone."""
    node = ops.find(name_or_id)
    if node is None:
        return
    node = ops.settle(node, f"wait before deleting {node.name}")
    if node.provision_state in UNDEPLOYABLE:
        node = ops.transition(node, "deleted")
    if node.provision_state == "clean failed" and not node.is_maintenance:
        ops.call(f"maintenance on {node.name}", ops.bm.set_node_maintenance, node,
                 reason="orch: deleting a node whose cleaning failed")
    ops.call(f"delete node {node.name}", ops.bm.delete_node, node, ignore_missing=True)
