"""The Kubernetes driver: apply, wait for, read and delete cluster objects.

Every kind but ``kubernetes.wait`` comes down to a list of objects -- loaded from a manifest
or built from inputs (:mod:`drivers.kubernetes.builders`) -- that are server-side applied in
order and recorded as references in the step's outputs. An update prunes objects the step
recorded before but no longer produces; a delete removes the recorded objects in reverse
order and, by default, waits until they are gone. One attempt per call: transient failures
are classified and left to the executor's retry policy, and every step is safe to repeat.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from drivers.kubernetes.builders import BUILDERS, InputError
from drivers.kubernetes.connection import Cluster, kubeconfig_of, open_cluster
from drivers.kubernetes.manifests import load_objects
from drivers.kubernetes.objects import (
    apply_object,
    delete_object,
    describe,
    drift,
    get_object,
    ref_of,
)
from drivers.kubernetes.settings import KubernetesSettings
from drivers.kubernetes.wait import wait_for
from orchestrator.driver import ApplyRequest, ApplyResult, Driver, Observed
from orchestrator.errors import NotSupportedError, PermanentError, StepTimeoutError
from orchestrator.plan import Action
from orchestrator.secrets import reveal_all
from orchestrator.step import Step


class KubernetesDriver(Driver):
    name = "kubernetes"
    description = ("Kubernetes objects by server-side apply: manifests, KubeVirt VMs and "
                   "DataVolumes, Multus networks, Kata RuntimeClasses; condition waits")
    step_kinds: ClassVar[Mapping[str, str]] = {
        "kubernetes.manifest": "server-side apply objects from `manifest`, `file` or `url`",
        "kubernetes.wait": "wait for a condition, a rollout or a field value on one object",
        "kubevirt.vm": "a kubevirt.io/v1 VirtualMachine (cpu, memory, disk, networks, running)",
        "kubevirt.datavolume": "a CDI DataVolume importing a disk (http, registry, pvc, vddk)",
        "multus.network": "a NetworkAttachmentDefinition from a CNI config",
        "kata.runtimeclass": "a RuntimeClass: handler, pod overhead, node scheduling",
    }
    settings_type = KubernetesSettings
    requires = ("kubernetes",)
    endpoint_concurrency = 8

    settings: KubernetesSettings

    def __init__(self, settings: KubernetesSettings | None = None) -> None:
        super().__init__(settings)
        self._clusters: dict[str, Cluster] = {}
        self._lock = threading.Lock()

    # -- connections -------------------------------------------------------------------
    def cluster(self, context: str = "", kubeconfig: Any = None) -> Cluster:
        """The (cached) connection for a kubeconfig context ("" is the settings' default)
        through ``kubeconfig``: a step's ``kubeconfig`` input (a secret, a not yet resolved
        reference, a path) or, when None, the settings' kubeconfig."""
        config = kubeconfig_of(kubeconfig, self.settings)
        key = f"{config.key}#{context}"
        with self._lock:
            if key not in self._clusters:
                self._clusters[key] = open_cluster(self.settings, context, config)
            return self._clusters[key]

    def cluster_of(self, inputs: Mapping[str, Any]) -> Cluster:
        """The connection a step's inputs name (``kubeconfig`` and ``cluster``)."""
        return self.cluster(str(inputs.get("cluster") or ""), inputs.get("kubeconfig"))

    def close(self) -> None:
        with self._lock:
            clusters, self._clusters = list(self._clusters.values()), {}
        for cluster in clusters:
            cluster.close()

    # -- what a step means -------------------------------------------------------------
    def desired(self, kind: str, inputs: Mapping[str, Any], endpoint: str) -> list[dict[str, Any]]:
        """The objects a step applies. Raises PermanentError for bad inputs."""
        if kind == "kubernetes.manifest":
            return load_objects(inputs, manifests_dir=self.settings.manifests_dir,
                                timeout=self.settings.request_timeout)
        try:
            return [BUILDERS[kind](inputs)]
        except InputError as exc:
            raise PermanentError(str(exc), endpoint=endpoint, operation=kind) from None

    def apply(self, request: ApplyRequest) -> ApplyResult:
        step, inputs = request.step, request.inputs
        if step.kind not in self.step_kinds:
            raise NotSupportedError(f"unknown step kind {step.kind}", operation=step.kind,
                                    endpoint=step.endpoint or "-")
        cluster = self.cluster_of(inputs)
        if step.kind == "kubernetes.wait":
            if request.action is Action.DELETE:
                return ApplyResult({})
            return ApplyResult(wait_for(cluster, inputs, deadline=request.deadline,
                                        poll_interval=self.settings.poll_interval,
                                        report=request.report, cancelled=request.cancelled))
        recorded = list(request.prior_outputs.get("objects") or ())
        if request.action is Action.DELETE:
            refs = recorded or [ref_of(o) for o in self.desired(step.kind, inputs,
                                                                 cluster.endpoint)]
            self.remove(cluster, refs, request)
            return ApplyResult({})
        # secret references (a Secret's stringData) are revealed into the request body only
        objects = self.desired(step.kind, reveal_all(inputs), cluster.endpoint)
        namespace = str(inputs.get("namespace") or "")
        applied = []
        for obj in objects:
            applied.append(apply_object(cluster, obj, field_manager=self.settings.field_manager,
                                        default_namespace=namespace))
            request.log.info("kubernetes.applied", object=describe(applied[-1]),
                             endpoint=cluster.endpoint)
        keep = {_key(ref) for ref in applied}
        stale = [ref for ref in recorded if _key(ref) not in keep]
        if stale:
            self.remove(cluster, stale, request)
        return ApplyResult({"objects": applied, "endpoint": cluster.endpoint})

    def remove(self, cluster: Cluster, refs: Sequence[Mapping[str, str]],
               request: ApplyRequest) -> None:
        """Delete ``refs`` in reverse order; wait until gone unless the settings say not."""
        asked = [ref for ref in reversed(refs) if delete_object(cluster, ref)]
        for ref in asked:
            request.log.info("kubernetes.deleted", object=describe(ref),
                             endpoint=cluster.endpoint)
        if self.settings.wait_for_deletion:
            self._wait_gone(cluster, asked, request.deadline, request.report,
                            request.cancelled)

    def _wait_gone(self, cluster: Cluster, refs: Sequence[Mapping[str, str]], deadline: float,
                   report: Callable[[str], None], cancelled: threading.Event) -> None:
        pending = list(refs)
        while pending:
            held: dict[str, str] = {}
            for ref in pending:
                live = get_object(cluster, ref)
                if live is not None:
                    held[describe(ref)] = _holding(live)
            pending = [ref for ref in pending if describe(ref) in held]
            if not pending:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0 or cancelled.is_set():
                names = ", ".join(name + (f" ({why})" if why else "")
                                  for name, why in held.items())
                raise StepTimeoutError(f"still present at the step deadline: {names}",
                                       endpoint=cluster.endpoint, operation="delete",
                                       hint=_FINALIZER_HINT)
            report(f"waiting for {describe(pending[0])} to go")
            cancelled.wait(min(self.settings.poll_interval, remaining))

    # -- observed state ----------------------------------------------------------------
    def read(self, step: Step, outputs: Mapping[str, Any]) -> Observed:
        """Whether the step's objects exist, and fields orch applied that changed since."""
        if step.kind == "kubernetes.wait":
            return Observed(exists=True, outputs=outputs)
        cluster = self.cluster_of(step.inputs)
        try:
            wanted = {_key(ref_of(o)): o
                      for o in self.desired(step.kind, step.inputs, cluster.endpoint)}
        except PermanentError:
            wanted = {}  # a source that no longer loads: existence is all that can be told
        refs = list(outputs.get("objects") or ()) or [ref_of(o) for o in wanted.values()]
        found: dict[str, str] = {}
        missing = []
        for ref in refs:
            live = get_object(cluster, ref)
            if live is None:
                missing.append(describe(ref))
                continue
            key = _key(ref)
            applied = wanted.get(key) or wanted.get((*key[:2], "", key[3]))
            changed = drift(applied, live) if applied is not None else []
            if changed:
                found[describe(ref)] = "; ".join(changed)
        if refs and len(missing) == len(refs):
            return Observed(exists=False, outputs=outputs)
        for name in missing:
            found[name] = "deleted outside orch"
        return Observed(exists=True, drift=found, outputs=outputs)


def _holding(live: Mapping[str, Any]) -> str:
    """What keeps an object that was asked to go: its finalizers (a namespace's in its spec
    too) and, for a namespace, what its controller says remains."""
    finalizers = [*((live.get("metadata") or {}).get("finalizers") or ()),
                  *((live.get("spec") or {}).get("finalizers") or ())]
    text = f"finalizers: {', '.join(finalizers)}" if finalizers else ""
    for cond in (live.get("status") or {}).get("conditions") or ():
        if cond.get("type") in ("NamespaceContentRemaining", "NamespaceFinalizersRemaining") \
                and cond.get("status") == "True" and cond.get("message"):
            text += f"; {cond['message']}"
    return text


_FINALIZER_HINT = ("a finalizer's controller has not finished: foregroundDeletion is the "
                   "garbage collector's (kube-controller-manager), kubernetes the namespace "
                   "controller's, others their operator's")


def _key(ref: Mapping[str, str]) -> tuple[str, str, str, str]:
    group = ref["apiVersion"].rsplit("/", 1)[0] if "/" in ref["apiVersion"] else ""
    return group, ref["kind"], ref.get("namespace", ""), ref["name"]

