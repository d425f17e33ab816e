"""Objects built from step inputs: KubeVirt VMs, CDI DataVolumes, Multus networks, Kata
RuntimeClasses. Pure functions from inputs to one object each; nothing here talks to a
cluster. A bad input raises :class:`InputError` naming the input.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from typing import Any


class InputError(ValueError):
    """A step input that cannot be turned into an object."""


def _need(inputs: Mapping[str, Any], key: str) -> Any:
    value = inputs.get(key)
    if value in (None, "", [], {}):
        raise InputError(f"input `{key}` is required")
    return value


def _metadata(inputs: Mapping[str, Any], *, namespaced: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": str(_need(inputs, "name"))}
    if namespaced:
        meta["namespace"] = str(inputs.get("namespace") or "default")
    for key in ("labels", "annotations"):
        if inputs.get(key):
            meta[key] = dict(inputs[key])
    return meta


# -- kubevirt.vm -------------------------------------------------------------------------
def _vm_disk(disk: Any, name: str = "rootdisk") -> dict[str, Any]:
    """A volume: a PVC name, or {pvc|datavolume|dataVolume|image: NAME, name?}."""
    if isinstance(disk, str):
        disk = {"pvc": disk}
    if not isinstance(disk, Mapping):
        raise InputError("a disk is a PVC name or {pvc|datavolume|image: NAME}")
    name = str(disk.get("name") or name)
    if disk.get("pvc"):
        return {"name": name, "persistentVolumeClaim": {"claimName": str(disk["pvc"])}}
    dv = disk.get("datavolume") or disk.get("dataVolume")
    if dv:
        return {"name": name, "dataVolume": {"name": str(dv)}}
    if disk.get("image"):
        return {"name": name, "containerDisk": {"image": str(disk["image"])}}
    raise InputError("a disk needs one of pvc, datavolume or image")


def _vm_volumes(inputs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`disk` (the root disk) and/or `disks` (more, or all of them; the first boots)."""
    volumes = [_vm_disk(inputs["disk"])] if inputs.get("disk") else []
    for index, disk in enumerate(inputs.get("disks") or (), start=len(volumes)):
        volumes.append(_vm_disk(disk, "rootdisk" if index == 0 else f"disk{index}"))
    if not volumes:
        raise InputError("input `disk` is required")
    return volumes


def _vm_networks(inputs: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(interfaces, networks): the pod network unless `pod_network: false`, then each Multus
    network by NetworkAttachmentDefinition name (``ns/name`` or ``name``)."""
    interfaces: list[dict[str, Any]] = []
    networks: list[dict[str, Any]] = []
    if inputs.get("pod_network", True):
        interfaces.append({"name": "default", "masquerade": {}})
        networks.append({"name": "default", "pod": {}})
    for index, net in enumerate(inputs.get("networks") or (), start=1):
        if isinstance(net, str):
            net = {"nad": net}
        if not isinstance(net, Mapping) or not net.get("nad"):
            raise InputError("each of `networks` is a NAD name or {nad, name, binding, mac}")
        name = str(net.get("name") or f"net{index}")
        binding = str(net.get("binding") or "bridge")
        if binding not in ("bridge", "sriov", "masquerade"):
            raise InputError(f"network binding {binding!r} is not bridge, sriov or masquerade")
        iface: dict[str, Any] = {"name": name, binding: {}}
        if net.get("mac"):
            iface["macAddress"] = str(net["mac"])
        interfaces.append(iface)
        networks.append({"name": name, "multus": {"networkName": str(net["nad"])}})
    return interfaces, networks


def virtual_machine(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """A ``kubevirt.io/v1`` VirtualMachine from name, cpu, memory, disk, networks, running."""
    meta = _metadata(inputs)
    cpu = inputs.get("cpu", 1)
    if not isinstance(cpu, int) or cpu < 1:
        raise InputError("input `cpu` is a whole number of cores, at least 1")
    memory = str(inputs.get("memory") or "1Gi")
    volumes = _vm_volumes(inputs)
    disks: list[dict[str, Any]] = [{"name": v["name"], "disk": {"bus": "virtio"}}
                                   for v in volumes]
    if inputs.get("cloud_init"):
        volumes.append({"name": "cloudinit",
                        "cloudInitNoCloud": {"userData": str(inputs["cloud_init"])}})
        disks.append({"name": "cloudinit", "disk": {"bus": "virtio"}})
    interfaces, networks = _vm_networks(inputs)
    domain: dict[str, Any] = {
        "cpu": {"cores": cpu},
        "memory": {"guest": memory},
        "devices": {"disks": disks, "interfaces": interfaces},
    }
    if inputs.get("firmware") == "uefi":
        domain["firmware"] = {"bootloader": {"efi": {"secureBoot": False}}}
    return {
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": meta,
        "spec": {
            "runStrategy": "Always" if inputs.get("running", True) else "Halted",
            "template": {
                "metadata": {"labels": {"kubevirt.io/vm": meta["name"]}},
                "spec": {"domain": domain, "networks": networks, "volumes": volumes},
            },
        },
    }


# -- kubevirt.datavolume -----------------------------------------------------------------
def _dv_source(source: Any) -> dict[str, Any]:
    """CDI source from a URL string (http(s):// or docker://) or {http|registry|pvc|vddk}."""
    if isinstance(source, str):
        if source.startswith(("http://", "https://")):
            return {"http": {"url": source}}
        if source.startswith("docker://"):
            return {"registry": {"url": source}}
        raise InputError("a `source` string is an http(s):// or docker:// URL")
    if not isinstance(source, Mapping) or len(source) != 1:
        raise InputError("input `source` has exactly one of http, registry, pvc, vddk, blank")
    (kind, value), = source.items()
    if kind in ("http", "registry"):
        return {kind: {"url": value} if isinstance(value, str) else dict(value)}
    if kind == "pvc":
        pvc = {"name": value} if isinstance(value, str) else dict(value)
        if not pvc.get("name"):
            raise InputError("source pvc needs a name (and a namespace, default the DV's)")
        return {"pvc": pvc}
    if kind == "vddk":
        vddk = dict(value)
        missing = [k for k in ("url", "uuid", "backingFile", "secretRef") if not vddk.get(k)]
        if missing:
            raise InputError(f"source vddk needs {', '.join(missing)}")
        return {"vddk": vddk}
    if kind == "blank":
        return {"blank": {}}
    raise InputError(f"unknown DataVolume source {kind!r}")


def data_volume(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """A ``cdi.kubevirt.io/v1beta1`` DataVolume from name, source, size, storage_class (or
    CDI's own ``storage`` block)."""
    # CDI's own form, as given (a deep copy: the size below must not change the inputs)
    storage: dict[str, Any] = copy.deepcopy(dict(inputs.get("storage") or {}))
    if inputs.get("size") or not storage:
        storage.setdefault("resources", {}).setdefault("requests", {})["storage"] = \
            str(_need(inputs, "size"))
    if inputs.get("storage_class"):
        storage["storageClassName"] = str(inputs["storage_class"])
    if inputs.get("access_modes"):
        storage["accessModes"] = list(inputs["access_modes"])
    if inputs.get("volume_mode"):
        storage["volumeMode"] = str(inputs["volume_mode"])
    return {
        "apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
        "metadata": _metadata(inputs),
        "spec": {"source": _dv_source(_need(inputs, "source")), "storage": storage},
    }


# -- multus.network ----------------------------------------------------------------------
CNI_TYPES = ("bridge", "macvlan", "ipvlan", "sriov", "host-device", "ovs", "vlan")


def network_attachment(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """A ``k8s.cni.cncf.io/v1`` NetworkAttachmentDefinition from name and a CNI ``config``."""
    meta = _metadata(inputs)
    config = _need(inputs, "config")
    if not isinstance(config, Mapping) or not config.get("type"):
        raise InputError(f"input `config` is a CNI config with a `type` ({', '.join(CNI_TYPES)})")
    cni = {"cniVersion": "0.3.1", "name": meta["name"], **dict(config)}
    resource = inputs.get("resource_name") or inputs.get("resource")
    if resource:  # SR-IOV: the device plugin resource the pod requests
        meta.setdefault("annotations", {})["k8s.v1.cni.cncf.io/resourceName"] = str(resource)
    return {
        "apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
        "metadata": meta, "spec": {"config": json.dumps(cni, sort_keys=True)},
    }


# -- kata.runtimeclass -------------------------------------------------------------------
def runtime_class(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """A ``node.k8s.io/v1`` RuntimeClass: handler, pod overhead and node scheduling."""
    obj: dict[str, Any] = {
        "apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
        "metadata": _metadata(inputs, namespaced=False),
        "handler": str(inputs.get("handler") or inputs["name"]),
    }
    if inputs.get("overhead"):
        obj["overhead"] = {"podFixed": {k: str(v) for k, v in dict(inputs["overhead"]).items()}}
    scheduling = dict(inputs.get("scheduling") or {})
    if scheduling:
        out: dict[str, Any] = {}
        if scheduling.get("node_selector"):
            out["nodeSelector"] = dict(scheduling["node_selector"])
        if scheduling.get("tolerations"):
            out["tolerations"] = list(scheduling["tolerations"])
        obj["scheduling"] = out
    return obj


BUILDERS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "kubevirt.vm": virtual_machine,
    "kubevirt.datavolume": data_volume,
    "multus.network": network_attachment,
    "kata.runtimeclass": runtime_class,
}
