"""What ``kubernetes.manifest``'s read reports as drift: the fields orch applied, compared
with the live object as a subset (no server needed; the real-server side is in
test_kubernetes_apply.py)."""

from __future__ import annotations

import copy

from drivers.kubernetes.objects import drift

APPLIED = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "hello", "namespace": "default", "labels": {"app.kubernetes.io/x": "1"}},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "hello"}},
             "template": {"metadata": {"labels": {"app": "hello"}},
                          "spec": {"runtimeClassName": "docker",
                                   "containers": [{"name": "hello", "image": "hello:v1",
                                                   "ports": [{"containerPort": 8080}]}]}}},
}


def _as_served() -> dict:
    """APPLIED as kube-apiserver stores it: defaults added inside the list items too."""
    live = copy.deepcopy(APPLIED)
    live["metadata"].update(uid="u", resourceVersion="7")
    spec = live["spec"]
    spec.update(strategy={"type": "RollingUpdate"}, revisionHistoryLimit=10)
    pod = spec["template"]["spec"]
    pod.update(restartPolicy="Always", dnsPolicy="ClusterFirst")
    container = pod["containers"][0]
    container.update(terminationMessagePath="/dev/termination-log", resources={},
                     imagePullPolicy="IfNotPresent")
    container["ports"][0]["protocol"] = "TCP"
    return live


def test_fields_the_server_defaults_inside_list_items_are_not_drift() -> None:
    assert drift(APPLIED, _as_served()) == []


def test_a_changed_field_inside_a_list_item_is_drift_at_its_path() -> None:
    live = _as_served()
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "hello:v2"
    assert drift(APPLIED, live) == [
        "spec.template.spec.containers.0.image: live 'hello:v2', applied 'hello:v1'"]


def test_a_list_of_another_length_is_drift_as_a_whole() -> None:
    live = _as_served()
    sidecar = {"name": "proxy", "image": "proxy:1"}
    live["spec"]["template"]["spec"]["containers"].append(sidecar)
    [line] = drift(APPLIED, live)
    assert line.startswith("spec.template.spec.containers: live [")


def test_lists_of_plain_values_and_missing_fields() -> None:
    applied = {"spec": {"args": ["a", "b"], "only": {"here": 1}}}
    assert drift(applied, {"spec": {"args": ["b", "a"], "only": {}}}) == [
        "spec.args: live ['b', 'a'], applied ['a', 'b']",
        "spec.only.here: missing, applied 1"]
    assert drift(applied, {"spec": {"args": ["a", "b"], "only": {"here": 1, "x": 2}}}) == []


def test_namespace_kind_api_version_and_string_data_are_not_compared() -> None:
    applied = {"apiVersion": "v1", "kind": "Secret", "metadata": {"namespace": "a"},
               "stringData": {"k": "v"}}
    assert drift(applied, {"metadata": {}, "data": {"k": "dg=="}}) == []
