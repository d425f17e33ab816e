"""Every Kubernetes object in the catalog, sent to a genuine kube-apiserver (issue 9, item 3).

For each of the 40 profiles, planned with each inventory, every object its Kubernetes steps
would create (:mod:`catalog_objects`: inline manifests, manifest files, the objects the typed
kinds build) goes to the test server -- kube-apiserver v1.20.2 loaded with the genuine upstream
CRDs (../shared/k8s/crds, SOURCES.md) -- as a server-side apply with ``dryRun=All``, exactly
as the driver sends it (field manager ``orch``, ``force=true``). A rejection fails the test
with the server's message.

What a bare API server cannot do is done here explicitly, never by skipping an object:

* **Namespaces**: each namespace an object lives in is created first (a real create, not a
  dry run); the ones no step of the profile creates are printed (they are the profile's to
  create, or an operator's, or a chart's).
* **Controllers**: without kube-controller-manager no namespace gets its ``default``
  ServiceAccount and token Secret, which 1.20's admission requires for a Pod; the test then
  creates them, as the service-account and token controllers would.
* **Webhooks**: CAPI's mutating webhook fills a MachineDeployment's ``spec.selector`` (and
  the template's matching labels) from its name and cluster; :data:`WEBHOOK_DEFAULTS` does the
  same before the dry run, and says so.
* **Kinds with no public CRD** (SOURCES.md, "Not available") cannot be checked: they are
  printed and must be exactly :data:`NO_PUBLIC_CRD`.
* **Manifests fetched from a URL** (release artifacts; no Internet here) are printed as not
  checked; any other object the driver refuses to build fails the test.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from catalog_objects import Catalog, CatalogObject, collect

pytestmark = pytest.mark.slow

#: kinds the profiles create whose CRD the test server does not have, each unverified here:
#: TanzuKubernetesCluster's CRD is not public (../shared/k8s/crds/SOURCES.md); OpenFaaS's
#: Profile (103, 110: runtime classes per function, OpenFaaS Standard) has a public CRD in
#: openfaas/faas-netes (artifacts/crds/openfaas.com_profiles.yaml) that ../shared/k8s/crds
#: does not carry yet, so its two objects are not checked against a schema; kapp-controller's
#: PackageRepository (91: TAP's package bundle) has a public CRD in carvel-dev/kapp-controller
#: (config/config/crds.yml) that ../shared/k8s/crds does not carry yet (only PackageInstall);
#: OLM's CatalogSource, OperatorGroup and Subscription (108: Forklift through OLM) have public
#: CRDs in operator-framework/api (crds/) that ../shared/k8s/crds does not carry yet.
NO_PUBLIC_CRD = frozenset({"run.tanzu.vmware.com/v1alpha3 TanzuKubernetesCluster",
                           "openfaas.com/v1alpha1 Profile",
                           "packaging.carvel.dev/v1alpha1 PackageRepository",
                           "operators.coreos.com/v1alpha1 CatalogSource",
                           "operators.coreos.com/v1 OperatorGroup",
                           "operators.coreos.com/v1alpha1 Subscription"})


def _capi_machine_deployment(obj: dict[str, Any]) -> dict[str, Any]:
    """What CAPI v1.7's MachineDeployment defaulting webhook adds (selector and the
    template's labels: the deployment name when no selector is given, and the cluster
    name), which the CRD's schema then requires."""
    obj = copy.deepcopy(obj)
    spec = obj.setdefault("spec", {})
    selector = spec.setdefault("selector", {})
    labels = spec.setdefault("template", {}).setdefault("metadata", {}).setdefault("labels", {})
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        selector.setdefault("matchLabels", {})["cluster.x-k8s.io/deployment-name"] = \
            obj["metadata"]["name"]
        labels["cluster.x-k8s.io/deployment-name"] = obj["metadata"]["name"]
    if spec.get("clusterName"):
        selector.setdefault("matchLabels", {})["cluster.x-k8s.io/cluster-name"] = \
            spec["clusterName"]
        labels["cluster.x-k8s.io/cluster-name"] = spec["clusterName"]
    return obj


#: (apiVersion kind) -> what an admission webhook the bare server lacks would do
WEBHOOK_DEFAULTS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "cluster.x-k8s.io/v1beta1 MachineDeployment": _capi_machine_deployment,
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return collect()


@pytest.fixture(scope="module")
def dynamic(kube_server: Any) -> Iterator[Any]:
    from kubernetes.dynamic import DynamicClient

    api = kube_server.api_client()
    yield DynamicClient(api)
    api.close()


def _resource(dynamic: Any, obj: dict[str, Any]) -> Any:
    from kubernetes.dynamic.exceptions import ResourceNotFoundError

    try:
        return dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    except ResourceNotFoundError:
        return None


def _create(dynamic: Any, kind: str, body: dict[str, Any], namespace: str | None) -> Any:
    from kubernetes.client.exceptions import ApiException

    resource = dynamic.resources.get(api_version="v1", kind=kind)
    try:
        return dynamic.create(resource, body=body, namespace=namespace)
    except ApiException as exc:
        if exc.status != 409:  # already there
            raise
        return dynamic.get(resource, name=body["metadata"]["name"], namespace=namespace)


def _ensure_namespace(dynamic: Any, name: str, controllers: bool) -> None:
    """The namespace, and -- unless kube-controller-manager runs -- what its service-account
    and token controllers would add: the ``default`` ServiceAccount and its token Secret,
    which 1.20's ServiceAccount admission requires before it admits a Pod."""
    _create(dynamic, "Namespace", {"metadata": {"name": name}}, None)
    if controllers:
        return
    sa = _create(dynamic, "ServiceAccount", {"metadata": {"name": "default"}}, name)
    if sa.secrets:
        return
    token = f"default-token-{sa.metadata.uid[:5]}"
    _create(dynamic, "Secret", {
        "metadata": {"name": token, "annotations": {
            "kubernetes.io/service-account.name": "default",
            "kubernetes.io/service-account.uid": sa.metadata.uid}},
        "type": "kubernetes.io/service-account-token",
        "data": {"token": "cGxheWVkLWJ5LXRoZS10ZXN0", "ca.crt": "", "namespace": ""}}, name)
    resource = dynamic.resources.get(api_version="v1", kind="ServiceAccount")
    dynamic.patch(resource, name="default", namespace=name,
                  body={"secrets": [{"name": token}]},
                  content_type="application/merge-patch+json")


def _dry_run(dynamic: Any, resource: Any, entry: CatalogObject) -> str:
    """The server's rejection of ``entry`` as a dry-run server-side apply ("" if accepted)."""
    from kubernetes.client.exceptions import ApiException

    from drivers.kubernetes.errors import status_message

    obj = copy.deepcopy(entry.obj)
    fix = WEBHOOK_DEFAULTS.get(f"{obj['apiVersion']} {obj['kind']}")
    if fix is not None:
        obj = fix(obj)
    meta = obj.setdefault("metadata", {})
    namespace = None
    if resource.namespaced:
        namespace = meta.get("namespace") or entry.namespace or "default"
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    try:
        dynamic.server_side_apply(resource, body=obj, name=meta["name"], namespace=namespace,
                                  field_manager="orch", force_conflicts=True, dry_run="All")
    except ApiException as exc:
        reason, message = status_message(exc.body)
        return f"HTTP {exc.status} {reason}: {message}"
    return ""


def test_every_catalog_object_is_accepted_by_the_real_server(
        catalog: Catalog, dynamic: Any, kube_server: Any) -> None:
    controllers = bool(getattr(kube_server, "controllers", False))
    no_crd: dict[str, list[str]] = {}
    rejected: list[str] = []
    checked = 0
    namespaces = sorted({ns for used in catalog.namespaces_used.values() for ns in used})
    for ns in namespaces:
        _ensure_namespace(dynamic, ns, controllers)
    for entry in catalog.objects:
        resource = _resource(dynamic, entry.obj)
        if resource is None:
            no_crd.setdefault(entry.kind, []).append(entry.name)
            continue
        checked += 1
        problem = _dry_run(dynamic, resource, entry)
        if problem:
            rejected.append(f"{entry.name} ({', '.join(sorted(entry.steps))}): {problem}")
    print(f"\n{checked} catalog objects checked by dry-run server-side apply "
          f"({len(catalog.objects)} built from {catalog.steps} steps); "
          f"{len(namespaces)} namespaces created first"
          + ("" if controllers else "; default ServiceAccounts and their tokens created as "
                                    "the service-account and token controllers would"))
    for kind, names in sorted(no_crd.items()):
        print(f"  not checked, no public CRD: {kind}: {', '.join(names)}")
    for nb in catalog.not_built:
        print(f"  not checked: {nb.profile} {nb.step}: {nb.reason}")
    for kind in sorted(WEBHOOK_DEFAULTS):
        print(f"  webhook defaults applied before the dry run: {kind}")
    for profile, used in sorted(catalog.namespaces_used.items()):
        missing = used - catalog.namespaces_created.get(profile, set()) - {"default"}
        if missing:  # a helm release, a URL manifest or a command may create them
            print(f"  namespaces {profile} uses that none of its kubernetes steps creates: "
                  f"{', '.join(sorted(missing))}")
    assert not rejected, "the server rejected:\n" + "\n".join(rejected)
    assert set(no_crd) == NO_PUBLIC_CRD, \
        f"kinds the server does not serve: {sorted(no_crd)}; expected {sorted(NO_PUBLIC_CRD)}"
    assert checked >= 40, f"only {checked} objects checked: the collection lost objects"


def test_objects_not_built_are_only_url_manifests(catalog: Catalog) -> None:
    """The driver builds every object a step gives inline or as a file; only release
    manifests fetched from a URL are left unchecked (and listed)."""
    refused = [f"{nb.profile} {nb.step}: {nb.reason}" for nb in catalog.not_built
               if not nb.reason.startswith("manifest fetched from a URL")]
    assert not refused, "\n".join(refused)


def test_every_wait_names_a_kind_the_server_serves(catalog: Catalog, dynamic: Any) -> None:
    """A ``kubernetes.wait`` resolves its kind to an apiVersion (its own, or the driver's
    default for well-known kinds, else ``v1``); a kind the server does not serve at that
    version would wait in vain. Kinds with no public CRD are listed, as above."""
    wrong = []
    for profile, step, ref in catalog.waits:
        kind = f"{ref['apiVersion']} {ref['kind']}"
        if kind in NO_PUBLIC_CRD:
            print(f"  not checked, no public CRD: {profile} {step} waits for {kind}")
            continue
        if _resource(dynamic, dict(ref)) is None:
            wrong.append(f"{profile} {step}: {kind}")
    print(f"\n{len(catalog.waits)} waits checked")
    assert not wrong, "waits for kinds the server does not serve at that apiVersion:\n" + \
        "\n".join(wrong)
