"""``kubernetes.wait``: poll one object until a condition holds, bounded by the step deadline.

What is awaited (one of):

* ``condition: NAME`` (``status``, default ``"True"``) in ``status.conditions`` -- Available,
  Ready, Established, Succeeded;
* ``rollout: true`` -- a Deployment, StatefulSet or DaemonSet fully rolled out, judged as
  ``kubectl rollout status`` does;
* ``field: status.phase`` with ``value: Succeeded`` -- a dotted path equal to a value;
* nothing of these -- the object merely exists.

With ``all: true`` (and an optional label ``selector``) instead of ``name``, every object of
the kind must pass, and there must be at least one -- e.g. ``{kind: Node, all: true,
condition: Ready}``. A ``timeout`` input (seconds) shortens the step's deadline.

A transient read error while waiting is remembered and the wait goes on; a permanent one
ends it. Past the deadline, :class:`~orchestrator.errors.StepTimeoutError` tells the last
state seen.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from drivers.kubernetes.connection import Cluster
from drivers.kubernetes.objects import describe, get_object, list_objects
from orchestrator.errors import PermanentError, StepTimeoutError, TransientError

#: apiVersion of kinds a wait names without one
DEFAULT_API_VERSIONS = {
    "Deployment": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1",
    "ReplicaSet": "apps/v1", "Job": "batch/v1",
    "CustomResourceDefinition": "apiextensions.k8s.io/v1",
    "VirtualMachine": "kubevirt.io/v1", "VirtualMachineInstance": "kubevirt.io/v1",
    "DataVolume": "cdi.kubevirt.io/v1beta1",
    "NetworkAttachmentDefinition": "k8s.cni.cncf.io/v1", "RuntimeClass": "node.k8s.io/v1",
}


def target(inputs: Mapping[str, Any]) -> dict[str, str]:
    """The reference of the awaited object; raises PermanentError when it is incomplete."""
    kind = str(inputs.get("kind") or "")
    name = str(inputs.get("name") or "")
    if not kind or not (name or inputs.get("all")):
        raise PermanentError("kubernetes.wait needs `kind` and `name` (or `all: true`)",
                             operation="wait")
    api_version = str(inputs.get("apiVersion") or inputs.get("api_version")
                      or DEFAULT_API_VERSIONS.get(kind, "v1"))
    ref = {"apiVersion": api_version, "kind": kind, "name": name or "*"}
    if inputs.get("namespace"):
        ref["namespace"] = str(inputs["namespace"])
    return ref


def _condition(obj: Mapping[str, Any], name: str, wanted: str) -> tuple[bool, str]:
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond.get("type") == name:
            status = str(cond.get("status"))
            why = cond.get("message") or cond.get("reason") or ""
            return status == wanted, f"{name}={status}" + (f" ({why})" if why else "")
    return False, f"no {name} condition yet"


def _rollout(obj: Mapping[str, Any]) -> tuple[bool, str]:
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    status = obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation", 0)
    if status.get("observedGeneration", 0) < generation:
        return False, "the controller has not seen the latest spec yet"
    if kind == "DaemonSet":
        want = status.get("desiredNumberScheduled", 0)
        updated, available = status.get("updatedNumberScheduled", 0), \
            status.get("numberAvailable", 0)
    else:
        want = spec.get("replicas", 1)
        updated = status.get("updatedReplicas", 0)
        available = status.get("availableReplicas" if kind != "StatefulSet"
                               else "readyReplicas", 0)
        if kind == "Deployment" and status.get("replicas", 0) > updated:
            return False, f"{status.get('replicas', 0) - updated} old replica(s) pending removal"
    text = f"{updated}/{want} updated, {available}/{want} available"
    return updated >= want and available >= want, text


def _field(obj: Mapping[str, Any], path: str, value: Any) -> tuple[bool, str]:
    cur: Any = obj
    for key in path.split("."):
        cur = cur.get(key) if isinstance(cur, Mapping) else None
    return cur == value, f"{path}={cur!r}"


def check(obj: Mapping[str, Any], inputs: Mapping[str, Any]) -> tuple[bool, str]:
    """(done?, short state text) for ``obj`` against what the inputs ask."""
    if inputs.get("condition"):
        return _condition(obj, str(inputs["condition"]), str(inputs.get("status", "True")))
    if inputs.get("rollout"):
        return _rollout(obj)
    if inputs.get("field"):
        return _field(obj, str(inputs["field"]), inputs.get("value"))
    return True, "exists"


def _check_one(cluster: Cluster, ref: dict[str, str],
               inputs: Mapping[str, Any]) -> tuple[bool, str]:
    obj = get_object(cluster, ref)
    return (False, "does not exist yet") if obj is None else check(obj, inputs)


def _check_all(cluster: Cluster, ref: dict[str, str],
               inputs: Mapping[str, Any]) -> tuple[bool, str]:
    items = list_objects(cluster, ref["apiVersion"], ref["kind"],
                         namespace=ref.get("namespace", ""),
                         selector=str(inputs.get("selector") or ""))
    if not items:
        return False, f"no {ref['kind']} yet"
    waiting = [f"{(o.get('metadata') or {}).get('name')}: {text}"
               for o in items for ok, text in [check(o, inputs)] if not ok]
    if waiting:
        return False, f"{len(waiting)} of {len(items)} not ready ({waiting[0]})"
    return True, f"all {len(items)} ready"


def wait_for(cluster: Cluster, inputs: Mapping[str, Any], *, deadline: float,
             poll_interval: float, report: Callable[[str], None],
             cancelled: threading.Event) -> dict[str, Any]:
    """Poll until :func:`check` passes; outputs say how long it took and what was seen."""
    ref = target(inputs)
    started = time.monotonic()
    if inputs.get("timeout"):
        deadline = min(deadline, started + float(inputs["timeout"]))
    state = "not read yet"
    while True:
        try:
            done, state = (_check_all(cluster, ref, inputs) if inputs.get("all")
                           else _check_one(cluster, ref, inputs))
        except TransientError as exc:
            done, state = False, f"last read failed: {exc}"
        if done:
            return {"object": ref, "state": state,
                    "waited": round(time.monotonic() - started, 1)}
        remaining = deadline - time.monotonic()
        if remaining <= 0 or cancelled.is_set():
            raise StepTimeoutError(f"{describe(ref)} not ready by the step deadline: {state}",
                                   endpoint=cluster.endpoint, operation="wait",
                                   hint="raise the step's timeout, or look at the object's "
                                        "events (kubectl describe)")
        report(f"{describe(ref)}: {state}, {time.monotonic() - started:.0f} s")
        cancelled.wait(min(poll_interval, remaining))
