"""kubernetes.manifest and kubernetes.wait through the real client against the real
kube-apiserver (or ORCH_TEST_KUBECONFIG's cluster): server-side apply, no-op re-apply,
drift, field-manager conflicts, pruning, deletion with finalizers and namespaces, waits.

Where a controller would act and the local server runs none for it, the test plays that
controller by patching ``/status`` (a Deployment rolled out) or removing the finalizer (the
garbage collector, the namespace controller when kube-controller-manager was not built),
and says so."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from kube_harness import (
    Cluster,
    ListLog,
    configmap,
    deployment,
    run_step,
    step_of,
    unique,
)

from drivers.kubernetes import KubernetesDriver
from drivers.kubernetes.objects import get_object
from orchestrator.errors import PermanentError, StepTimeoutError
from orchestrator.plan import Action


def live(driver: KubernetesDriver, kind: str, name: str, namespace: str = "",
         api_version: str = "v1") -> dict[str, Any] | None:
    ref = {"apiVersion": api_version, "kind": kind, "name": name}
    if namespace:
        ref["namespace"] = namespace
    return get_object(driver.cluster(), ref)


def test_manifest_is_server_side_applied_with_our_field_manager(
        driver: KubernetesDriver, cluster: Cluster) -> None:
    name = unique("cm")
    result = run_step(driver, "kubernetes.manifest",
                      {"manifest": configmap(name, cluster.namespace, colour="blue")})

    [ref] = result.outputs["objects"]
    assert ref["kind"] == "ConfigMap" and ref["name"] == name and ref["uid"]
    obj = live(driver, "ConfigMap", name, cluster.namespace)
    assert obj is not None and obj["data"] == {"colour": "blue"}
    managers = {(m["manager"], m["operation"]) for m in obj["metadata"]["managedFields"]}
    assert ("orch", "Apply") in managers


def test_the_apply_request_is_a_forced_server_side_apply(
        proxy_driver: KubernetesDriver, cluster: Cluster, proxy: Any) -> None:
    """The request itself, as the fault proxy (passing everything through) saw it."""
    name = unique("cm")
    run_step(proxy_driver, "kubernetes.manifest",
             {"manifest": configmap(name, cluster.namespace, colour="red")})
    patch = [r for r in proxy.requests
             if r["method"] == "PATCH" and r["path"].endswith(f"/configmaps/{name}")][-1]
    assert patch["content_type"] == "application/apply-patch+yaml"
    assert patch["query"] in ({"fieldManager": "orch", "force": "True"},
                              {"fieldManager": "orch", "force": "true"})


def test_applying_twice_changes_nothing_and_read_sees_no_drift(
        driver: KubernetesDriver, cluster: Cluster) -> None:
    inputs = {"manifest": configmap(unique("cm"), cluster.namespace, a="1")}
    first = run_step(driver, "kubernetes.manifest", inputs)
    second = run_step(driver, "kubernetes.manifest", inputs, action=Action.UPDATE,
                      prior=first.outputs)

    assert second.outputs["objects"][0]["uid"] == first.outputs["objects"][0]["uid"]
    name = inputs["manifest"]["metadata"]["name"]
    before = live(driver, "ConfigMap", name, cluster.namespace)
    run_step(driver, "kubernetes.manifest", inputs, action=Action.UPDATE, prior=second.outputs)
    after = live(driver, "ConfigMap", name, cluster.namespace)
    # the server stored nothing new: a no-op apply does not even bump the resourceVersion
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]  # type: ignore[index]
    observed = driver.read(step_of("kubernetes.manifest", inputs), second.outputs)
    assert observed.exists and not observed.drift


def test_a_deployment_applied_twice_reads_back_without_drift(
        driver: KubernetesDriver, cluster: Cluster) -> None:
    """The server defaults fields inside the pod template's lists (a container's
    terminationMessagePath, a port's protocol): none of that is drift (found by the lab's
    two-node cluster, whose re-plan showed its Deployment changed)."""
    name = unique("web")
    inputs = {"manifest": deployment(name, cluster.namespace, name="web", image="web:v1",
                                     ports=[{"containerPort": 8080}])}
    outputs = run_step(driver, "kubernetes.manifest", inputs).outputs
    served = live(driver, "Deployment", name, cluster.namespace)
    container = served["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
    assert container["ports"][0]["protocol"] == "TCP"  # the server did add defaults
    assert not driver.read(step_of("kubernetes.manifest", inputs), outputs).drift
    dyn = driver.cluster().dynamic
    resource = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    dyn.patch(resource, name=name, namespace=cluster.namespace,
              body={"spec": {"template": {"spec": {"containers": [
                  {"name": "web", "image": "web:v2"}]}}}},
              content_type="application/strategic-merge-patch+json",
              field_manager="kubectl-edit")
    [(_, text)] = driver.read(step_of("kubernetes.manifest", inputs), outputs).drift.items()
    assert "spec.template.spec.containers.0.image: live 'web:v2', applied 'web:v1'" in text


def test_a_field_changed_by_another_manager_is_drift_and_apply_takes_it_back(
        driver: KubernetesDriver, cluster: Cluster) -> None:
    name = unique("cm")
    inputs = {"manifest": configmap(name, cluster.namespace, size="small")}
    outputs = run_step(driver, "kubernetes.manifest", inputs).outputs
    dyn = driver.cluster().dynamic
    resource = dyn.resources.get(api_version="v1", kind="ConfigMap")
    dyn.patch(resource, body={"data": {"size": "large"}}, name=name,
              namespace=cluster.namespace, content_type="application/merge-patch+json",
              field_manager="kubectl-edit")

    observed = driver.read(step_of("kubernetes.manifest", inputs), outputs)
    assert observed.exists
    [(what, text)] = observed.drift.items()
    assert what == f"ConfigMap {cluster.namespace}/{name}"
    assert "data.size: live 'large', applied 'small'" in text

    run_step(driver, "kubernetes.manifest", inputs, action=Action.UPDATE, prior=outputs)
    assert live(driver, "ConfigMap", name, cluster.namespace)["data"]["size"] == "small"  # type: ignore[index]
    assert not driver.read(step_of("kubernetes.manifest", inputs), outputs).drift


def test_apply_without_force_conflicts_with_another_manager(
        driver: KubernetesDriver, cluster: Cluster) -> None:
    """What force=true protects against: the API server's 409 for a field someone else owns."""
    from kubernetes.dynamic.exceptions import ConflictError

    name = unique("cm")
    run_step(driver, "kubernetes.manifest",
             {"manifest": configmap(name, cluster.namespace, owner="orch")})
    dyn = driver.cluster().dynamic
    resource = dyn.resources.get(api_version="v1", kind="ConfigMap")
    with pytest.raises(ConflictError) as info:
        dyn.server_side_apply(resource, body=configmap(name, cluster.namespace, owner="other"),
                              field_manager="someone-else", force_conflicts=False)
    assert "conflict" in str(info.value.body).lower()


def test_update_prunes_objects_the_manifest_no_longer_has(
        driver: KubernetesDriver, cluster: Cluster) -> None:
    keep, drop = unique("keep"), unique("drop")
    both = {"manifest": [configmap(keep, cluster.namespace), configmap(drop, cluster.namespace)]}
    outputs = run_step(driver, "kubernetes.manifest", both).outputs
    run_step(driver, "kubernetes.manifest", {"manifest": [configmap(keep, cluster.namespace)]},
             action=Action.UPDATE, prior=outputs)

    assert live(driver, "ConfigMap", keep, cluster.namespace) is not None
    assert live(driver, "ConfigMap", drop, cluster.namespace) is None


def test_file_manifests_are_read_from_the_manifests_dir(
        cluster: Cluster, tmp_path: Path) -> None:
    a, b = unique("file-a"), unique("file-b")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "two.yaml").write_text(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {a}}}\ndata: {{k: v}}\n---\n"
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {b}}}\n", encoding="utf-8")
    driver = KubernetesDriver(cluster.settings(manifests_dir=str(tmp_path)))
    try:
        result = run_step(driver, "kubernetes.manifest",
                          {"file": "app/two.yaml", "namespace": cluster.namespace})
        assert [o["name"] for o in result.outputs["objects"]] == [a, b]
        assert all(o["namespace"] == cluster.namespace for o in result.outputs["objects"])
        assert live(driver, "ConfigMap", b, cluster.namespace) is not None
    finally:
        driver.close()


def test_a_missing_file_is_permanent_and_names_the_path(driver: KubernetesDriver) -> None:
    with pytest.raises(PermanentError, match=r"no-such\.yaml"):
        run_step(driver, "kubernetes.manifest", {"file": "no-such.yaml"})


def test_delete_removes_the_objects_and_read_then_says_gone(
        driver: KubernetesDriver, cluster: Cluster) -> None:
    name = unique("cm")
    inputs = {"manifest": configmap(name, cluster.namespace)}
    outputs = run_step(driver, "kubernetes.manifest", inputs).outputs
    run_step(driver, "kubernetes.manifest", inputs, action=Action.DELETE, prior=outputs)

    assert live(driver, "ConfigMap", name, cluster.namespace) is None
    assert not driver.read(step_of("kubernetes.manifest", inputs), outputs).exists
    # deleting again is not an error: the step is idempotent
    run_step(driver, "kubernetes.manifest", inputs, action=Action.DELETE, prior=outputs)


def test_delete_waits_for_finalizers_until_the_deadline(
        driver: KubernetesDriver, cluster: Cluster) -> None:
    name = unique("cm")
    cm = configmap(name, cluster.namespace)
    cm["metadata"]["finalizers"] = ["example.com/hold"]
    outputs = run_step(driver, "kubernetes.manifest", {"manifest": cm}).outputs
    started = time.monotonic()
    with pytest.raises(StepTimeoutError, match=f"still present.*{name}.*example.com/hold"):
        run_step(driver, "kubernetes.manifest", {"manifest": cm}, action=Action.DELETE,
                 prior=outputs, timeout=1.0)
    assert time.monotonic() - started < 1.0 + driver.settings.poll_interval + 5
    # release the finalizer: the object goes
    dyn = driver.cluster().dynamic
    resource = dyn.resources.get(api_version="v1", kind="ConfigMap")
    dyn.patch(resource, body={"metadata": {"finalizers": None}}, name=name,
              namespace=cluster.namespace, content_type="application/merge-patch+json")
    run_step(driver, "kubernetes.manifest", {"manifest": cm}, action=Action.DELETE,
             prior=outputs, timeout=30)
    assert live(driver, "ConfigMap", name, cluster.namespace) is None


def test_wait_for_a_deployment_rollout_and_its_available_condition(
        driver: KubernetesDriver, cluster: Cluster) -> None:
    name = unique("web")
    run_step(driver, "kubernetes.manifest", {"manifest": deployment(
        name, cluster.namespace, name="pause", image="registry.k8s.io/pause:3.9")})
    target = {"kind": "Deployment", "name": name, "namespace": cluster.namespace}
    if cluster.local:  # no deployment controller (nor node) here: the test plays it
        play_deployment_controller(driver, name, cluster.namespace, delay=1.0)

    rolled = run_step(driver, "kubernetes.wait", {**target, "rollout": True}, timeout=180)
    assert rolled.outputs["state"] == "1/1 updated, 1/1 available"
    assert rolled.outputs["waited"] >= 0.5  # it did wait for the (played) controller
    available = run_step(driver, "kubernetes.wait", {**target, "condition": "Available"},
                         timeout=30)
    assert available.outputs["state"].startswith("Available=True")


def play_deployment_controller(driver: KubernetesDriver, name: str, namespace: str,
                               delay: float) -> None:
    """PLAYS the deployment controller: after ``delay`` s, report one replica rolled out and
    Available through the /status subresource."""
    import threading

    def roll_out() -> None:
        time.sleep(delay)
        dyn = driver.cluster().dynamic
        resource = dyn.resources.get(api_version="apps/v1", kind="Deployment")
        generation = dyn.get(resource, name=name, namespace=namespace).metadata.generation
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        status = {"observedGeneration": generation, "replicas": 1, "updatedReplicas": 1,
                  "readyReplicas": 1, "availableReplicas": 1,
                  "conditions": [{"type": "Available", "status": "True",
                                  "reason": "MinimumReplicasAvailable", "message": "played",
                                  "lastTransitionTime": now, "lastUpdateTime": now}]}
        resource.status.patch(body={"status": status}, name=name, namespace=namespace,
                              content_type="application/merge-patch+json")
    threading.Thread(target=roll_out, daemon=True).start()


def test_wait_gives_up_at_the_deadline_telling_the_last_state(
        driver: KubernetesDriver, cluster: Cluster) -> None:
    name = unique("cm")
    run_step(driver, "kubernetes.manifest", {"manifest": configmap(name, cluster.namespace)})
    started = time.monotonic()
    with pytest.raises(StepTimeoutError, match="no Ready condition yet"):
        run_step(driver, "kubernetes.wait", {"kind": "ConfigMap", "name": name,
                                             "namespace": cluster.namespace,
                                             "condition": "Ready"}, timeout=1.0)
    assert time.monotonic() - started < 1.0 + driver.settings.poll_interval + 5


def test_an_unknown_kind_is_permanent_with_a_hint_to_install_the_crd(
        driver: KubernetesDriver, cluster: Cluster) -> None:
    widget = {"apiVersion": "example.com/v1", "kind": "Widget",
              "metadata": {"name": "w", "namespace": cluster.namespace}}
    with pytest.raises(PermanentError) as info:
        run_step(driver, "kubernetes.manifest", {"manifest": widget})
    assert info.value.operation == f"apply Widget {cluster.namespace}/w"
    assert "CRD" in info.value.hint


def test_log_names_each_applied_object_and_the_endpoint(
        driver: KubernetesDriver, cluster: Cluster) -> None:
    log = ListLog()
    name = unique("cm")
    run_step(driver, "kubernetes.manifest", {"manifest": configmap(name, cluster.namespace)},
             log=log)
    [event] = log.events
    assert name in event and driver.cluster().endpoint in event


def test_wait_for_all_objects_matching_a_selector(driver: KubernetesDriver,
                                                  cluster: Cluster) -> None:
    group = unique("grp")
    cms = [configmap(unique("cm"), cluster.namespace, ready="yes") for _ in range(2)]
    late = configmap(unique("cm"), cluster.namespace, ready="no")
    for cm in [*cms, late]:
        cm["metadata"]["labels"] = {"group": group}
    run_step(driver, "kubernetes.manifest", {"manifest": [*cms, late]})
    wait = {"kind": "ConfigMap", "all": True, "selector": f"group={group}",
            "namespace": cluster.namespace, "field": "data.ready", "value": "yes"}

    with pytest.raises(StepTimeoutError, match="1 of 3 not ready"):
        run_step(driver, "kubernetes.wait", {**wait, "timeout": 0.5})
    late["data"]["ready"] = "yes"
    run_step(driver, "kubernetes.manifest", {"manifest": late})
    assert run_step(driver, "kubernetes.wait", wait).outputs["state"] == "all 3 ready"


def test_manifests_from_several_urls_are_applied_in_order(
        driver: KubernetesDriver, cluster: Cluster, tmp_path: Path) -> None:
    import functools
    import http.server
    import threading

    names = [unique("url-a"), unique("url-b")]
    for name in names:
        (tmp_path / f"{name}.yaml").write_text(
            f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\n", encoding="utf-8")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        result = run_step(driver, "kubernetes.manifest",
                          {"urls": [f"{base}/{n}.yaml" for n in names],
                           "namespace": cluster.namespace})
        assert [o["name"] for o in result.outputs["objects"]] == names
        with pytest.raises(PermanentError, match="HTTP 404"):
            run_step(driver, "kubernetes.manifest", {"url": f"{base}/missing.yaml"})
    finally:
        server.shutdown()
        server.server_close()


def needs_controllers(cluster: Cluster) -> None:
    """The local server runs kube-controller-manager (garbage collector, namespace
    controller); a server without it could not finish these deletions at all."""
    if cluster.server is not None:
        assert cluster.server.controllers, "kube-controller-manager is not running"


def test_foreground_deletion_waits_for_the_garbage_collector_to_remove_dependents(
        driver: KubernetesDriver, cluster: Cluster) -> None:
    """The driver deletes with propagationPolicy=Foreground: the owner goes only after the
    garbage collector (the real one, in kube-controller-manager) deleted its dependents."""
    needs_controllers(cluster)
    parent = unique("owner")
    outputs = run_step(driver, "kubernetes.manifest",
                       {"manifest": configmap(parent, cluster.namespace)}).outputs
    child = configmap(unique("dependent"), cluster.namespace)
    child["metadata"]["ownerReferences"] = [{
        "apiVersion": "v1", "kind": "ConfigMap", "name": parent,
        "uid": outputs["objects"][0]["uid"], "blockOwnerDeletion": True}]
    dyn = driver.cluster().dynamic
    dyn.resources.get(api_version="v1", kind="ConfigMap").create(
        body=child, namespace=cluster.namespace)

    run_step(driver, "kubernetes.manifest", {"manifest": configmap(parent, cluster.namespace)},
             action=Action.DELETE, prior=outputs, timeout=60)
    assert live(driver, "ConfigMap", parent, cluster.namespace) is None
    assert live(driver, "ConfigMap", child["metadata"]["name"], cluster.namespace) is None


def test_deleting_a_namespace_waits_until_its_contents_are_gone(
        driver: KubernetesDriver, cluster: Cluster) -> None:
    """The namespace stays Terminating (finalizer `kubernetes`) until the namespace controller
    (the real one) deleted what is in it, including objects orch never made."""
    needs_controllers(cluster)
    ns = unique("orch-ns")
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
    outputs = run_step(driver, "kubernetes.manifest",
                       {"manifest": [namespace, configmap("inside", ns, a="1")]}).outputs
    dyn = driver.cluster().dynamic
    dyn.resources.get(api_version="v1", kind="ConfigMap").create(
        body=configmap("made-by-hand", ns), namespace=ns)
    vm = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
          "metadata": {"name": "vm", "namespace": ns, "finalizers": ["example.com/hold"]},
          "spec": {"template": {"spec": {"domain": {"devices": {}}}}}}
    if cluster.local:
        run_step(driver, "kubernetes.manifest", {"manifest": vm})

    # a custom resource holding a finalizer keeps the namespace, and the step says why
    delete = {"manifest": [namespace]}
    if cluster.local:
        with pytest.raises(StepTimeoutError, match=f"Namespace {ns} .finalizers: kubernetes"):
            run_step(driver, "kubernetes.manifest", delete, action=Action.DELETE,
                     prior={"objects": outputs["objects"][:1]}, timeout=5)
        deadline = time.monotonic() + 60  # the namespace controller deletes what is inside
        while time.monotonic() < deadline:
            held = live(driver, "VirtualMachine", "vm", ns, api_version="kubevirt.io/v1")
            assert held is not None  # its finalizer holds it
            if held["metadata"].get("deletionTimestamp"):
                break
            time.sleep(0.5)
        assert held["metadata"].get("deletionTimestamp")
        assert live(driver, "Namespace", ns) is not None
        resource = dyn.resources.get(api_version="kubevirt.io/v1", kind="VirtualMachine")
        dyn.patch(resource, body={"metadata": {"finalizers": None}}, name="vm", namespace=ns,
                  content_type="application/merge-patch+json")
    run_step(driver, "kubernetes.manifest", delete, action=Action.DELETE,
             prior={"objects": outputs["objects"][:1]}, timeout=120)
    assert live(driver, "Namespace", ns) is None
    assert live(driver, "ConfigMap", "made-by-hand", ns) is None
