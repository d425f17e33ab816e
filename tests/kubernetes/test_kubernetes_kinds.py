"""kubevirt.vm, kubevirt.datavolume, multus.network and kata.runtimeclass against the real
kube-apiserver loaded with the genuine KubeVirt, CDI and Multus CRDs: each kind created,
re-applied as a no-op, updated, read for drift and deleted; waits on the status a controller
would report (the test plays that controller). On ORCH_TEST_KUBECONFIG's cluster, kinds it
does not serve are skipped."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from kube_harness import Cluster, run_step, served, step_of, unique

from drivers.kubernetes import KubernetesDriver
from drivers.kubernetes.builders import (
    InputError,
    data_volume,
    network_attachment,
    runtime_class,
    virtual_machine,
)
from drivers.kubernetes.objects import get_object
from orchestrator.errors import PermanentError, StepTimeoutError
from orchestrator.plan import Action


def edit(driver: KubernetesDriver, ref: dict[str, str], body: dict[str, Any],
         subresource: str = "") -> None:
    """Someone else (manager kubectl-edit) merge-patches the object or its /status."""
    dyn = driver.cluster().dynamic
    resource = dyn.resources.get(api_version=ref["apiVersion"], kind=ref["kind"])
    if subresource:
        resource = getattr(resource, subresource)
    resource.patch(body=body, name=ref["name"], namespace=ref.get("namespace"),
                   content_type="application/merge-patch+json", field_manager="kubectl-edit")


def lifecycle(driver: KubernetesDriver, kind: str, inputs: dict[str, Any],
              updated: dict[str, Any], drift_patch: dict[str, Any],
              drift_path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """create, no-op re-apply, update, drift read, delete; returns (created, updated) objects."""
    cluster = driver.cluster()
    result = run_step(driver, kind, inputs)
    [ref] = result.outputs["objects"]
    created = get_object(cluster, ref)
    assert created is not None
    assert driver.read(step_of(kind, inputs), result.outputs) == \
        driver.read(step_of(kind, inputs), result.outputs)
    observed = driver.read(step_of(kind, inputs), result.outputs)
    assert observed.exists and not observed.drift

    # the same inputs again: a no-op for the server (same uid, same resourceVersion)
    again = run_step(driver, kind, inputs, action=Action.UPDATE, prior=result.outputs)
    same = get_object(cluster, ref)
    assert again.outputs["objects"][0]["uid"] == ref["uid"]
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]  # type: ignore[index]

    # changed inputs: an update in place
    changed = run_step(driver, kind, updated, action=Action.UPDATE, prior=again.outputs)
    after = get_object(cluster, ref)
    assert changed.outputs["objects"][0]["uid"] == ref["uid"]
    assert after["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]  # type: ignore[index]
    assert not driver.read(step_of(kind, updated), changed.outputs).drift

    # someone edits a field orch set: drift, naming the field
    edit(driver, ref, drift_patch)
    drifted = driver.read(step_of(kind, updated), changed.outputs)
    [(_what, text)] = drifted.drift.items()
    assert text.startswith(f"{drift_path}: live"), text

    run_step(driver, kind, updated, action=Action.DELETE, prior=changed.outputs, timeout=60)
    assert get_object(cluster, ref) is None
    assert not driver.read(step_of(kind, updated), changed.outputs).exists
    return created, after  # type: ignore[return-value]


# -- built objects: create, re-apply, update, drift, delete ---------------------------------
def test_a_kubevirt_vm_with_a_multus_network(driver: KubernetesDriver, cluster: Cluster) -> None:
    served(driver, "kubevirt.io/v1", "VirtualMachine")
    name = unique("vm")
    inputs = {"name": name, "namespace": cluster.namespace, "cpu": 2, "memory": "2Gi",
              "disk": {"datavolume": f"{name}-root"}, "networks": ["lab/br-prov"],
              "running": False}
    vm, after = lifecycle(
        driver, "kubevirt.vm", inputs, {**inputs, "cpu": 4},
        {"spec": {"template": {"spec": {"domain": {"cpu": {"cores": 8}}}}}},
        "spec.template.spec.domain.cpu.cores")
    spec = vm["spec"]
    assert spec["runStrategy"] == "Halted"
    template = spec["template"]["spec"]
    assert template["domain"]["cpu"] == {"cores": 2}
    assert {"name": "net1", "multus": {"networkName": "lab/br-prov"}} in template["networks"]
    assert template["volumes"][0]["dataVolume"] == {"name": f"{name}-root"}
    assert after["spec"]["template"]["spec"]["domain"]["cpu"] == {"cores": 4}


def test_a_datavolume_imports_over_http_into_the_storage_class(
        driver: KubernetesDriver, cluster: Cluster) -> None:
    served(driver, "cdi.kubevirt.io/v1beta1", "DataVolume")
    inputs = {"name": unique("dv"), "namespace": cluster.namespace, "size": "5Gi",
              "source": "http://images.example/debian-12.qcow2", "storage_class": "local"}
    dv, after = lifecycle(driver, "kubevirt.datavolume", inputs, {**inputs, "size": "6Gi"},
                          {"spec": {"storage": {"storageClassName": "ceph"}}},
                          "spec.storage.storageClassName")
    assert dv["spec"]["source"] == {"http": {"url": "http://images.example/debian-12.qcow2"}}
    assert dv["spec"]["storage"]["storageClassName"] == "local"
    assert after["spec"]["storage"]["resources"]["requests"]["storage"] == "6Gi"


def test_a_multus_network_carries_its_cni_config_as_json(
        driver: KubernetesDriver, cluster: Cluster) -> None:
    served(driver, "k8s.cni.cncf.io/v1", "NetworkAttachmentDefinition")
    name = unique("br")
    inputs = {"name": name, "namespace": cluster.namespace,
              "config": {"type": "bridge", "bridge": "br-prov", "ipam": {}}}
    nad, after = lifecycle(driver, "multus.network", inputs,
                           {**inputs, "config": {"type": "bridge", "bridge": "br-ext"}},
                           {"spec": {"config": "{}"}}, "spec.config")
    config = json.loads(nad["spec"]["config"])
    assert config == {"cniVersion": "0.3.1", "name": name, "type": "bridge",
                      "bridge": "br-prov", "ipam": {}}
    assert json.loads(after["spec"]["config"])["bridge"] == "br-ext"


def test_a_kata_runtimeclass_is_cluster_scoped_with_overhead_and_scheduling(
        driver: KubernetesDriver, cluster: Cluster) -> None:
    inputs = {"name": unique("kata"), "handler": "kata-qemu", "namespace": cluster.namespace,
              "overhead": {"cpu": "250m", "memory": "160Mi"},
              "scheduling": {"node_selector": {"katacontainers.io/kata-runtime": "true"}}}
    rc, after = lifecycle(driver, "kata.runtimeclass", inputs,
                          {**inputs, "overhead": {"cpu": "500m", "memory": "160Mi"}},
                          {"overhead": {"podFixed": {"memory": "1Gi"}}},
                          "overhead.podFixed.memory")
    assert "namespace" not in rc["metadata"]  # cluster-scoped: the namespace input is ignored
    assert rc["handler"] == "kata-qemu"
    assert rc["overhead"] == {"podFixed": {"cpu": "250m", "memory": "160Mi"}}
    assert rc["scheduling"]["nodeSelector"] == {"katacontainers.io/kata-runtime": "true"}
    assert after["overhead"]["podFixed"]["cpu"] == "500m"


def test_a_runtimeclass_handler_change_is_refused_as_immutable(
        driver: KubernetesDriver, cluster: Cluster) -> None:
    inputs = {"name": unique("kata"), "handler": "kata-qemu"}
    outputs = run_step(driver, "kata.runtimeclass", inputs).outputs
    with pytest.raises(PermanentError, match=r"HTTP 422.*immutable") as info:
        run_step(driver, "kata.runtimeclass", {**inputs, "handler": "kata-clh"},
                 action=Action.UPDATE, prior=outputs)
    assert "handler" in info.value.hint
    run_step(driver, "kata.runtimeclass", inputs, action=Action.DELETE, prior=outputs)


# -- waits on what a controller would report (the test plays the controller) ----------------
def test_wait_for_a_vm_to_become_ready(driver: KubernetesDriver, cluster: Cluster) -> None:
    """PLAYS virt-controller: after a second, the VM's /status says Ready."""
    served(driver, "kubevirt.io/v1", "VirtualMachine")
    name = unique("vm")
    outputs = run_step(driver, "kubevirt.vm", {"name": name, "namespace": cluster.namespace,
                                               "disk": "root-pvc"}).outputs
    [ref] = outputs["objects"]
    wait = {"kind": "VirtualMachine", "name": name, "namespace": cluster.namespace,
            "condition": "Ready", "timeout": 60}
    with pytest.raises(StepTimeoutError, match="no Ready condition yet"):
        run_step(driver, "kubernetes.wait", {**wait, "timeout": 0.5})
    status = {"status": {"ready": True, "printableStatus": "Running", "conditions": [
        {"type": "Ready", "status": "True", "reason": "played by the test"}]}}
    timer = threading.Timer(1.0, edit, args=(driver, ref, status, "status"))
    timer.start()
    result = run_step(driver, "kubernetes.wait", wait)
    timer.join()
    assert result.outputs["state"] == "Ready=True (played by the test)"
    assert result.outputs["waited"] >= 0.5


def test_wait_for_a_datavolume_import_to_succeed(driver: KubernetesDriver,
                                                 cluster: Cluster) -> None:
    """PLAYS the CDI controller: the DataVolume's /status goes ImportInProgress, Succeeded."""
    served(driver, "cdi.kubevirt.io/v1beta1", "DataVolume")
    name = unique("dv")
    outputs = run_step(driver, "kubevirt.datavolume", {
        "name": name, "namespace": cluster.namespace, "size": "1Gi",
        "source": "https://images.example/disk.img"}).outputs
    [ref] = outputs["objects"]
    edit(driver, ref, {"status": {"phase": "ImportInProgress", "progress": "10.0%"}}, "status")
    timer = threading.Timer(1.0, edit, args=(
        driver, ref, {"status": {"phase": "Succeeded", "progress": "100.0%"}}, "status"))
    timer.start()
    result = run_step(driver, "kubernetes.wait", {
        "kind": "DataVolume", "name": name, "namespace": cluster.namespace,
        "field": "status.phase", "value": "Succeeded", "timeout": 60})
    timer.join()
    assert result.outputs["state"] == "status.phase='Succeeded'"


def test_bad_inputs_are_permanent_before_anything_is_sent(
        driver: KubernetesDriver, cluster: Cluster) -> None:
    with pytest.raises(PermanentError, match="input `disk` is required"):
        run_step(driver, "kubevirt.vm", {"name": "x", "namespace": cluster.namespace})


# -- the builders alone --------------------------------------------------------------------
def test_vm_has_the_pod_network_first_and_sriov_bindings_when_asked() -> None:
    vm = virtual_machine({"name": "v", "disk": "root-pvc",
                          "networks": [{"nad": "sriov-a", "binding": "sriov",
                                        "mac": "52:54:00:00:00:01"}],
                          "cloud_init": "#cloud-config\n"})
    domain = vm["spec"]["template"]["spec"]["domain"]
    assert [i["name"] for i in domain["devices"]["interfaces"]] == ["default", "net1"]
    assert domain["devices"]["interfaces"][1] == {"name": "net1", "sriov": {},
                                                  "macAddress": "52:54:00:00:00:01"}
    volumes = vm["spec"]["template"]["spec"]["volumes"]
    assert volumes[0]["persistentVolumeClaim"] == {"claimName": "root-pvc"}
    assert volumes[1]["cloudInitNoCloud"] == {"userData": "#cloud-config\n"}
    assert vm["spec"]["runStrategy"] == "Always"


@pytest.mark.parametrize(("inputs", "message"), [
    ({"name": "v", "disk": "d", "cpu": 0}, "cpu"),
    ({"name": "v", "disk": {"nfs": "x"}}, "disk"),
    ({"name": "v", "disk": "d", "networks": [{"nad": "n", "binding": "tap"}]}, "binding"),
])
def test_vm_input_errors_name_the_input(inputs: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        virtual_machine(inputs)


def test_datavolume_sources() -> None:
    def source(value: Any) -> Any:
        return data_volume({"name": "d", "size": "1Gi", "source": value})["spec"]["source"]

    assert source("docker://quay.io/containerdisks/fedora") == {
        "registry": {"url": "docker://quay.io/containerdisks/fedora"}}
    assert source({"pvc": "golden"}) == {"pvc": {"name": "golden"}}
    with pytest.raises(InputError, match="vddk needs"):
        source({"vddk": {"url": "https://vcenter"}})
    with pytest.raises(InputError, match="http"):
        source("ftp://x")


def test_multus_sriov_network_names_the_device_plugin_resource() -> None:
    nad = network_attachment({"name": "sriov-a", "config": {"type": "sriov", "vlan": 100},
                              "resource_name": "intel.com/sriov_netdevice"})
    assert nad["metadata"]["annotations"] == {
        "k8s.v1.cni.cncf.io/resourceName": "intel.com/sriov_netdevice"}
    with pytest.raises(InputError, match="type"):
        network_attachment({"name": "n", "config": {"bridge": "br0"}})


def test_runtimeclass_handler_defaults_to_the_name() -> None:
    assert runtime_class({"name": "kata"})["handler"] == "kata"


def test_vm_disks_list_and_datavolume_storage_block_as_profiles_write_them() -> None:
    vm = virtual_machine({"name": "v", "disks": [{"name": "root", "dataVolume": "app-disk"},
                                                  "scratch-pvc"]})
    volumes = vm["spec"]["template"]["spec"]["volumes"]
    assert volumes == [{"name": "root", "dataVolume": {"name": "app-disk"}},
                       {"name": "disk1", "persistentVolumeClaim": {"claimName": "scratch-pvc"}}]
    dv = data_volume({"name": "d", "source": "https://x/img",
                      "storage": {"storageClassName": "ceph-rbd",
                                  "resources": {"requests": {"storage": "30Gi"}}}})
    assert dv["spec"]["storage"] == {"storageClassName": "ceph-rbd",
                                     "resources": {"requests": {"storage": "30Gi"}}}
    nad = network_attachment({"name": "n", "config": {"type": "sriov"},
                              "resource": "intel.com/pci_sriov_net_datanet"})
    assert nad["metadata"]["annotations"]["k8s.v1.cni.cncf.io/resourceName"] == \
        "intel.com/pci_sriov_net_datanet"
