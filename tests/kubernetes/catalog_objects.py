"""Every Kubernetes object the catalog's steps would create, as the driver would build it.

Each profile is planned against each inventory exactly as its golden plan is
(:func:`tests.plans.golden.make`); every step of the Kubernetes driver then yields its objects
through the driver's own code: ``kubernetes.manifest`` through
:func:`drivers.kubernetes.manifests.load_objects` (inline manifests and files), the typed
kinds through :data:`drivers.kubernetes.builders.BUILDERS`. Nothing here talks to a cluster.

What cannot be built here is returned beside the objects, never dropped: manifests fetched
from a ``url`` (no Internet where the tests run) and inputs a builder refuses.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "tests" / "plans") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests" / "plans"))

import golden  # noqa: E402  (tests/plans/golden.py)

from drivers.kubernetes.builders import BUILDERS, InputError  # noqa: E402
from drivers.kubernetes.manifests import load_objects  # noqa: E402
from drivers.kubernetes.wait import target  # noqa: E402
from orchestrator.errors import OrchError  # noqa: E402
from orchestrator.secrets import is_ref_value  # noqa: E402

#: what a secret reference becomes in a dry run: the server sees a string, as it would
PLACEHOLDER = "orch-dry-run-placeholder"


@dataclass
class CatalogObject:
    """One distinct object of one profile, with the steps (of any inventory) that make it."""

    profile: str
    obj: dict[str, Any]
    namespace: str            # the step's `namespace` input (the driver's default)
    steps: set[str] = field(default_factory=set)

    @property
    def kind(self) -> str:
        return f"{self.obj['apiVersion']} {self.obj['kind']}"

    @property
    def name(self) -> str:
        meta = self.obj.get("metadata") or {}
        ns = meta.get("namespace") or self.namespace
        return f"{self.profile} {self.obj['kind']} {ns + '/' if ns else ''}{meta['name']}"


@dataclass(frozen=True)
class NotBuilt:
    """A step whose objects cannot be built here, and why."""

    profile: str
    step: str
    reason: str


@dataclass
class Catalog:
    objects: list[CatalogObject]
    not_built: list[NotBuilt]
    #: per profile, the namespaces its objects live in and the ones its steps create
    namespaces_used: dict[str, set[str]]
    namespaces_created: dict[str, set[str]]
    steps: int
    #: every kubernetes.wait's target as the driver resolves it: (profile, step, ref)
    waits: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)


def _placeholders(value: Any) -> Any:
    if is_ref_value(value):
        return PLACEHOLDER
    if isinstance(value, Mapping):
        return {k: _placeholders(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_placeholders(v) for v in value]
    return value


def step_objects(kind: str, inputs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The objects the driver would apply for one step (url sources excluded by the caller).
    Raises :class:`InputError` or :class:`OrchError` as the driver would refuse them."""
    inputs = _placeholders(inputs)
    if kind == "kubernetes.manifest":
        return load_objects(inputs, manifests_dir=str(ROOT / "manifests"), timeout=5)
    return [BUILDERS[kind](inputs)]


def _kube_steps() -> Iterator[tuple[str, Any]]:
    for profile in golden.profiles():
        for inventory in golden.INVENTORIES:
            for planned in _plan(profile, inventory):
                if planned.step.driver == "kubernetes" or _is_helm(planned.step):
                    yield profile.stem, planned.step


def _is_helm(step: Any) -> bool:
    return step.kind == "ansible.playbook" and \
        step.inputs.get("playbook") == "common/helm-release.yml"


def helm_objects(values_of: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The custom resources a ``helm.release`` passes its values into verbatim, as far as the
    profile gives them (without the chart's defaults): rook-ceph-cluster's ``cephClusterSpec``
    becomes the CephCluster's spec (named ``clusterName``, default the release namespace),
    each of ``cephBlockPools``/``cephFileSystems``/``cephObjectStores`` a pool, file system
    or object store with its ``spec``."""
    if values_of.get("chart") != "rook-release/rook-ceph-cluster":
        return []
    values = dict(values_of.get("values") or {})
    namespace = str(values_of.get("helm_namespace") or "default")
    meta = {"namespace": namespace}
    out: list[dict[str, Any]] = []
    if values.get("cephClusterSpec"):
        out.append({"apiVersion": "ceph.rook.io/v1", "kind": "CephCluster",
                    "metadata": {"name": values.get("clusterName") or namespace, **meta},
                    "spec": values["cephClusterSpec"]})
    for key, kind in (("cephBlockPools", "CephBlockPool"),
                      ("cephFileSystems", "CephFilesystem"),
                      ("cephObjectStores", "CephObjectStore")):
        for item in values.get(key) or ():
            out.append({"apiVersion": "ceph.rook.io/v1", "kind": kind,
                        "metadata": {"name": item["name"], **meta},
                        "spec": item.get("spec") or {}})
    return out


def _plan(profile: Path, inventory: Path) -> Any:
    import os
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return golden.make(profile, inventory)
    finally:
        os.chdir(cwd)


def collect() -> Catalog:
    """Every object of every profile (distinct per profile), and what could not be built."""
    found: dict[tuple[str, str], CatalogObject] = {}
    not_built: dict[tuple[str, str], NotBuilt] = {}
    used: dict[str, set[str]] = {}
    created: dict[str, set[str]] = {}
    steps = 0
    waits: dict[tuple[str, str], dict[str, str]] = {}
    for profile, step in _kube_steps():
        if step.kind == "kubernetes.wait":
            waits[(profile, step.id)] = target(step.inputs)
            continue
        inputs = dict(step.inputs)
        if _is_helm(step):
            for obj in helm_objects(inputs.get("vars") or {}):
                key = (profile, json.dumps(obj, sort_keys=True))
                found.setdefault(key, CatalogObject(profile, obj, "")).steps.add(
                    f"{step.id} (helm values)")
                ns = obj["metadata"]["namespace"]  # the release's, which helm creates
                used.setdefault(profile, set()).add(ns)
                created.setdefault(profile, set()).add(ns)
            continue
        steps += 1
        if inputs.get("url") or inputs.get("urls"):
            not_built[(profile, step.id)] = NotBuilt(
                profile, step.id, "manifest fetched from a URL (no Internet here)")
            continue
        try:
            objects = step_objects(step.kind, inputs)
        except (InputError, OrchError) as exc:
            not_built[(profile, step.id)] = NotBuilt(profile, step.id,
                                                     f"refused by the driver: {exc}")
            continue
        default_ns = str(inputs.get("namespace") or "")
        for obj in objects:
            key = (profile, json.dumps(obj, sort_keys=True))
            entry = found.setdefault(key, CatalogObject(profile, obj, default_ns))
            entry.steps.add(step.id)
            meta = obj.get("metadata") or {}
            if obj.get("kind") == "Namespace" and obj.get("apiVersion") == "v1":
                created.setdefault(profile, set()).add(str(meta["name"]))
            ns = meta.get("namespace") or default_ns
            if ns:
                used.setdefault(profile, set()).add(str(ns))
    return Catalog(list(found.values()), sorted(not_built.values(),
                                                key=lambda n: (n.profile, n.step)),
                   used, created, steps, [(p, s, ref) for (p, s), ref in sorted(waits.items())])


if __name__ == "__main__":  # a quick look: python3 tests/kubernetes/catalog_objects.py
    catalog = collect()
    print(f"{len(catalog.objects)} objects from {catalog.steps} steps")
    for entry in catalog.objects:
        print(" ", entry.name, f"[{entry.kind}]")
    for nb in catalog.not_built:
        print("  not built:", nb.profile, nb.step, nb.reason)
