"""The OpenStack driver: one handler per step kind, each idempotent by resource name.

Handlers find their resource by name before creating it, so a retried or repeated step picks
up where it stopped; outputs record the resource's id, which delete and read use first. One
attempt per call: transient failures are classified and left to the executor's retry policy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from drivers.openstack import compute, image, ironic, network
from drivers.openstack.bodies import InputError
from drivers.openstack.calls import Calls
from drivers.openstack.connection import Cloud, CloudRef, cloud_key, open_cloud
from drivers.openstack.settings import OpenStackSettings
from orchestrator.driver import ApplyRequest, ApplyResult, Driver, Observed
from orchestrator.errors import NotSupportedError, PermanentError
from orchestrator.plan import Action
from orchestrator.secrets import resolve_inputs
from orchestrator.step import Step

Ensure = Callable[[Calls, Mapping[str, Any]], dict[str, Any]]
Delete = Callable[[Calls, str], None]

#: step kind -> (service type, create-or-converge, delete by name or id)
HANDLERS: dict[str, tuple[str, Ensure, Delete]] = {
    "openstack.flavor": ("compute", compute.ensure_flavor, compute.delete_flavor),
    "openstack.server": ("compute", compute.ensure_server, compute.delete_server),
    "openstack.image": ("image", image.ensure_image, image.delete_image),
    "openstack.network": ("network", network.ensure_network, network.delete_network),
}
FINDERS = {"openstack.flavor": ("compute", "find_flavor"),
           "openstack.server": ("compute", "find_server"),
           "openstack.image": ("image", "find_image"),
           "openstack.network": ("network", "find_network")}


class OpenStackDriver(Driver):
    name = "openstack"
    description = ("OpenStack through openstacksdk: Ironic nodes (enroll, manage, inspect, "
                   "provide), Nova servers and flavors, Glance images, Neutron networks")
    step_kinds: ClassVar[Mapping[str, str]] = {
        "ironic.node": "enroll a node (redfish/ipmi driver_info), manage, inspect, provide",
        "openstack.server": "a Nova server, waited for until ACTIVE",
        "openstack.flavor": "a Nova flavor (recreated when its fields change)",
        "openstack.image": "a Glance image uploaded from a file or imported from a URL",
        "openstack.network": "a Neutron network and optional subnet",
    }
    settings_type = OpenStackSettings
    requires = ("openstack",)
    endpoint_concurrency = 4

    settings: OpenStackSettings

    def __init__(self, settings: OpenStackSettings | None = None) -> None:
        super().__init__(settings)
        self._clouds: dict[str, Cloud] = {}
        self._lock = threading.Lock()

    def cloud(self, name: CloudRef = "") -> Cloud:
        """The (cached) connection for a step's ``cloud`` (a clouds.yaml name, or a handed-over
        ``{name, clouds_yaml}``); "" is the settings' default."""
        key = cloud_key(name or self.settings.cloud)
        with self._lock:
            if key not in self._clouds:
                self._clouds[key] = open_cloud(self.settings, name)
            return self._clouds[key]

    def close(self) -> None:
        with self._lock:
            clouds, self._clouds = list(self._clouds.values()), {}
        for cloud in clouds:
            cloud.close()

    def _calls(self, service: str, inputs: Mapping[str, Any], deadline: float,
               report: Callable[[str], None] | None = None,
               cancelled: threading.Event | None = None, secrets: tuple[str, ...] = ()
               ) -> Calls:
        return Calls(self.cloud(_cloud_ref(inputs)), service, deadline,
                     self.settings.poll_interval, report or (lambda _t: None),
                     cancelled or threading.Event(), secrets)

    def apply(self, request: ApplyRequest) -> ApplyResult:
        step, inputs = request.step, request.inputs
        if step.kind == "ironic.node":
            return ApplyResult(self._ironic(request))
        if step.kind not in HANDLERS:
            raise NotSupportedError(f"unknown step kind {step.kind}", operation=step.kind,
                                    endpoint=step.endpoint or "-")
        service, ensure, delete = HANDLERS[step.kind]
        calls = self._calls(service, inputs, request.deadline, request.report,
                            request.cancelled)
        try:
            if request.action is Action.DELETE:
                delete(calls, str(request.prior_outputs.get("id") or inputs.get("name")))
                return ApplyResult({})
            outputs = ensure(calls, inputs)
        except InputError as exc:
            raise PermanentError(str(exc), endpoint=calls.endpoint, operation=step.kind) \
                from None
        request.log.info("openstack.applied", kind=step.kind, name=outputs.get("name"),
                         endpoint=calls.endpoint)
        return ApplyResult(outputs)

    def _ironic(self, request: ApplyRequest) -> dict[str, Any]:
        spec = ironic.NodeSpec.from_inputs(request.inputs)
        cloud = self.cloud(_cloud_ref(request.inputs))
        ops = ironic.NodeOps(cloud, ironic.SERVICE, request.deadline,
                             self.settings.poll_interval, request.report, request.cancelled,
                             spec.secrets())
        if request.action is Action.DELETE:
            ironic.remove(ops, str(request.prior_outputs.get("uuid") or spec.name))
            request.log.info("ironic.deleted", node=spec.name, endpoint=ops.endpoint)
            return {}
        outputs = ironic.enroll(ops, spec)
        request.log.info("ironic.enrolled", node=spec.name, state=outputs["provision_state"],
                         endpoint=ops.endpoint)
        return outputs

    def read(self, step: Step, outputs: Mapping[str, Any]) -> Observed:
        """Whether the resource exists; for nodes, drift in driver and provision state."""
        inputs = {**step.inputs, "cloud": resolve_inputs(step.inputs.get("cloud") or "")}
        key = str(outputs.get("uuid") or outputs.get("id") or inputs.get("name") or "")
        deadline = time.monotonic() + self.settings.api_timeout
        if step.kind == "ironic.node":
            ops = ironic.NodeOps(self.cloud(_cloud_ref(inputs)), ironic.SERVICE,
                                 deadline, self.settings.poll_interval)
            node = ops.find(key)
            if node is None:
                return Observed(exists=False, outputs=outputs)
            spec = ironic.NodeSpec.from_inputs(inputs)  # no secret is needed to compare
            drift = {}
            if node.driver != spec.driver:
                drift["driver"] = f"node uses {node.driver}, the step {spec.driver}"
            if node.provision_state not in (spec.target, "active"):
                drift["provision_state"] = f"node is {node.provision_state}, the step left " \
                                           f"it {spec.target}"
            return Observed(exists=True, drift=drift,
                            outputs={**outputs, "provision_state": node.provision_state})
        if step.kind not in FINDERS:
            raise NotSupportedError(f"unknown step kind {step.kind}", operation="read")
        service, finder = FINDERS[step.kind]
        calls = self._calls(service, inputs, deadline)
        if step.kind == "openstack.server":
            exists, drift, seen = compute.observe_server(calls, key, inputs)
            return Observed(exists=exists, drift=drift, outputs={**outputs, **seen})
        proxy = calls.proxy(service)
        found = calls.call(f"find {key}", getattr(proxy, finder), key, ignore_missing=True)
        return Observed(exists=found is not None, outputs=outputs)


def _cloud_ref(inputs: Mapping[str, Any]) -> CloudRef:
    cloud = inputs.get("cloud") or ""
    return cloud if isinstance(cloud, Mapping) else str(cloud)
