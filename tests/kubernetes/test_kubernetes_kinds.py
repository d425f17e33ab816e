"""kubevirt.vm, kubevirt.datavolume, multus.network and kata.runtimeclass: objects built from
inputs and applied; on a real cluster, kinds it does not serve are skipped."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kube_harness import Cluster, run_step, step_of, unique

from drivers.kubernetes import KubernetesDriver
from drivers.kubernetes.builders import (
    InputError,
    data_volume,
    network_attachment,
    runtime_class,
    virtual_machine,
)
from drivers.kubernetes.objects import get_object
from orchestrator.errors import PermanentError
from orchestrator.plan import Action


def served(driver: KubernetesDriver, api_version: str, kind: str) -> None:
    from kubernetes.dynamic.exceptions import ResourceNotFoundError

    try:
        driver.cluster().dynamic.resources.get(api_version=api_version, kind=kind)
    except ResourceNotFoundError:
        pytest.skip(f"the cluster does not serve {kind} ({api_version})")


def applied(driver: KubernetesDriver, kind: str, inputs: dict[str, Any]) -> dict[str, Any]:
    result = run_step(driver, kind, inputs)
    [ref] = result.outputs["objects"]
    obj = get_object(driver.cluster(), ref)
    assert obj is not None
    observed = driver.read(step_of(kind, inputs), result.outputs)
    assert observed.exists and not observed.drift
    run_step(driver, kind, inputs, action=Action.DELETE, prior=result.outputs)
    assert get_object(driver.cluster(), ref) is None
    return obj


# -- built objects, applied ----------------------------------------------------------------
def test_a_kubevirt_vm_with_a_multus_network_is_applied_halted(
        driver: KubernetesDriver, cluster: Cluster) -> None:
    served(driver, "kubevirt.io/v1", "VirtualMachine")
    name = unique("vm")
    vm = applied(driver, "kubevirt.vm", {
        "name": name, "namespace": cluster.namespace, "cpu": 2, "memory": "2Gi",
        "disk": {"datavolume": f"{name}-root"}, "networks": ["lab/br-prov"], "running": False})
    spec = vm["spec"]
    assert spec["runStrategy"] == "Halted"
    template = spec["template"]["spec"]
    assert template["domain"]["cpu"] == {"cores": 2}
    assert {"name": "net1", "multus": {"networkName": "lab/br-prov"}} in template["networks"]
    assert template["volumes"][0]["dataVolume"] == {"name": f"{name}-root"}


def test_a_datavolume_imports_over_http_into_the_storage_class(
        driver: KubernetesDriver, cluster: Cluster) -> None:
    served(driver, "cdi.kubevirt.io/v1beta1", "DataVolume")
    dv = applied(driver, "kubevirt.datavolume", {
        "name": unique("dv"), "namespace": cluster.namespace, "size": "5Gi",
        "source": "http://images.example/debian-12.qcow2", "storage_class": "local"})
    assert dv["spec"]["source"] == {"http": {"url": "http://images.example/debian-12.qcow2"}}
    assert dv["spec"]["storage"]["storageClassName"] == "local"


def test_a_multus_network_carries_its_cni_config_as_json(
        driver: KubernetesDriver, cluster: Cluster) -> None:
    served(driver, "k8s.cni.cncf.io/v1", "NetworkAttachmentDefinition")
    name = unique("br")
    nad = applied(driver, "multus.network", {
        "name": name, "namespace": cluster.namespace,
        "config": {"type": "bridge", "bridge": "br-prov", "ipam": {}}})
    config = json.loads(nad["spec"]["config"])
    assert config == {"cniVersion": "0.3.1", "name": name, "type": "bridge",
                      "bridge": "br-prov", "ipam": {}}


def test_a_kata_runtimeclass_is_cluster_scoped_with_overhead_and_scheduling(
        driver: KubernetesDriver, cluster: Cluster) -> None:
    name = unique("kata")
    rc = applied(driver, "kata.runtimeclass", {
        "name": name, "handler": "kata-qemu", "namespace": cluster.namespace,
        "overhead": {"cpu": "250m", "memory": "160Mi"},
        "scheduling": {"node_selector": {"katacontainers.io/kata-runtime": "true"}}})
    assert "namespace" not in rc["metadata"]  # cluster-scoped: the namespace input is ignored
    assert rc["handler"] == "kata-qemu"
    assert rc["overhead"] == {"podFixed": {"cpu": "250m", "memory": "160Mi"}}
    assert rc["scheduling"]["nodeSelector"] == {"katacontainers.io/kata-runtime": "true"}


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
