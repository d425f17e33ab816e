"""orch's own component types.

Each type documents its ``with:`` parameters (a msgspec Struct with descriptions) and expands
into steps for one driver. BMC types choose the Redfish or IPMI driver from the node's BMC
kind; ``external`` marks work nothing here can carry, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from orchestrator.components import (
    ComponentType,
    ExpandError,
    Instance,
    StepDraft,
    argspec,
    registry,
)
from orchestrator.model import MAX_SECONDS, Duration
from orchestrator.secrets import is_ref_value
from orchestrator.step import EXTERNAL

D = Meta  # short alias: D(description=...)


class _P(msgspec.Struct, forbid_unknown_fields=True):
    """Component parameters; validated values reach the step with their defaults filled."""
    pass


def _params(inst: Instance) -> dict[str, Any]:
    return dict(inst.with_)


def _host(inst: Instance) -> dict[str, Any]:
    assert inst.node is not None
    return inst.node.host_inputs()


def _ssh_endpoint(inst: Instance) -> str:
    assert inst.node is not None
    h = inst.node.host
    return f"ssh://{h.address or inst.node.name}"


def _bmc(inst: Instance, need: str = "") -> tuple[str, str]:
    """(driver, endpoint) for the node's BMC."""
    node = inst.node
    assert node is not None
    role = inst.loaded.profile.roles[node.role]
    kind = node.host.bmc.kind if node.host.bmc is not None else role.bmc
    if role.bmc == "none":
        raise ExpandError(f"role {node.role!r} has no BMC (bmc: none)",
                          hint="set the role's bmc to redfish or ipmi, or drop this component")
    if kind not in ("redfish", "ipmi"):
        kind = "redfish"
    if need and kind != need:
        raise ExpandError(f"{inst.component.type} needs a {need} BMC; node {node.name} "
                          f"has {kind}", hint="bind the role to hosts with a Redfish BMC")
    endpoint = node.host.bmc.endpoint if node.host.bmc is not None and node.host.bmc.endpoint \
        else f"bmc:{node.name}"
    if node.host.bmc is not None and node.host.bmc.system:
        # one concurrency slot per managed system: an emulator (or a chassis manager) serves
        # several systems behind one URL, a real server's BMC serves one
        endpoint = f"{endpoint}#{node.host.bmc.system}"
    return kind, endpoint


Expander = Callable[[Instance], list[StepDraft]]


def _register(name: str, description: str, params: type[msgspec.Struct] | None,
              placement: str, drivers: tuple[str, ...],
              open_params: bool = False) -> Callable[[Expander], Expander]:
    def deco(fn: Expander) -> Expander:
        registry.register(ComponentType(name, description, fn, params, placement, drivers,
                                        open_params))
        return fn
    return deco


# -- external --------------------------------------------------------------------------
class ExternalParams(_P):
    system: Annotated[str, D(description="the system that does this step (vCenter, z/VM)")] = ""
    runbook: Annotated[str, D(description="what an operator does by hand")] = ""


@_register("external", "Work no driver here can carry; apply stops before it with the reason",
           ExternalParams, "any", (EXTERNAL,))
def _external(inst: Instance) -> list[StepDraft]:
    reason = inst.component.reason
    if not reason:
        raise ExpandError("an external component needs a one-line `reason:`",
                          field_path=("reason",), expected="reason: why no driver can do it")
    inputs = _params(inst)
    if inst.node is not None:
        inputs["node"] = inst.node.name
    return [StepDraft("external", EXTERNAL, inputs, external_reason=reason,
                      endpoint=inputs.get("system") or None)]


# -- BMC -------------------------------------------------------------------------------
class PowerParams(_P):
    state: Annotated[Literal["on", "off", "graceful-off", "restart"],
                     D(description="desired power state")] = "on"
    passing: Annotated[bool, D(description="a state on the way (before an install), not one "
                                           "to keep: later plans report no drift for it")] \
        = False


@_register("bmc.power", "Power a node on or off through its BMC, confirmed by reading back",
           PowerParams, "node", ("redfish", "ipmi"))
def _bmc_power(inst: Instance) -> list[StepDraft]:
    driver, endpoint = _bmc(inst)
    return [StepDraft(f"{driver}.power", driver, {"host": _host(inst), **_params(inst)},
                      endpoint=endpoint)]


class BootParams(_P):
    device: Annotated[Literal["pxe", "disk", "cd"], D(description="boot source")] = "disk"
    once: Annotated[bool, D(description="boot from it once, then fall back")] = False
    mode: Annotated[Literal["uefi", "legacy", ""],
                    D(description="firmware boot mode, if the BMC advertises it")] = ""


@_register("bmc.boot_device", "Set a node's boot device (only values the BMC advertises)",
           BootParams, "node", ("redfish", "ipmi"))
def _bmc_boot(inst: Instance) -> list[StepDraft]:
    driver, endpoint = _bmc(inst)
    return [StepDraft(f"{driver}.boot_device", driver, {"host": _host(inst), **_params(inst)},
                      endpoint=endpoint)]


class MediaParams(_P):
    image: Annotated[str, D(description="URL of the ISO the BMC inserts")] = ""
    eject: Annotated[bool, D(description="eject instead of insert")] = False


@_register("bmc.virtual_media", "Insert (or eject) virtual media through Redfish",
           MediaParams, "node", ("redfish",))
def _bmc_media(inst: Instance) -> list[StepDraft]:
    driver, endpoint = _bmc(inst, need="redfish")
    p = _params(inst)
    return [StepDraft("redfish.virtual_media", driver,
                      {"host": _host(inst), "action": "eject" if p.get("eject") else "insert",
                       "image": p.get("image", "")}, endpoint=endpoint)]


@_register("bmc.inventory", "Read CPU, memory and NIC MACs and check them against the role",
           None, "node", ("redfish",))
def _bmc_inventory(inst: Instance) -> list[StepDraft]:
    driver, endpoint = _bmc(inst, need="redfish")
    return [StepDraft("redfish.inventory", driver, {"host": _host(inst)}, endpoint=endpoint)]


class BiosParams(_P):
    attributes: Annotated[dict[str, Any], D(description="BIOS attributes to set")] = {}


@_register("bmc.bios", "Set BIOS attributes (VT-x, SR-IOV, ...) where the BMC supports it",
           BiosParams, "node", ("redfish",))
def _bmc_bios(inst: Instance) -> list[StepDraft]:
    driver, endpoint = _bmc(inst, need="redfish")
    return [StepDraft("redfish.bios", driver, {"host": _host(inst), **_params(inst)},
                      endpoint=endpoint)]


class InstallParams(_P):
    image: Annotated[str, D(description="installer ISO URL (virtual-media) or PXE image")] = ""
    method: Annotated[Literal["virtual-media", "pxe"], D(description="how the installer boots")] \
        = "virtual-media"
    os: Annotated[str, D(description="operating system installed (for the plan)")] = ""
    install_timeout: Annotated[Duration, D(description="seconds for the installer to "
                                                       "finish")] = 1800.0
    ssh_timeout: Annotated[Duration, D(description="seconds to wait for SSH afterwards")] = 600.0
    wait: Annotated[str, D(description="what proves the OS is up: ssh, none (Talos, "
                                       "appliances), or tcp:PORT")] = "ssh"


@_register("os.install",
           "Install an OS the way Ironic and Metal3 do: boot an installer once, wait for it to "
           "power the node off, boot from disk, wait for SSH", InstallParams, "node",
           ("redfish", "ipmi", "ssh"))
def _os_install(inst: Instance) -> list[StepDraft]:
    driver, endpoint = _bmc(inst)
    p = msgspec.convert(dict(inst.with_), InstallParams)
    host = _host(inst)
    if p.method == "virtual-media" and driver != "redfish":
        raise ExpandError("virtual-media install needs a Redfish BMC",
                          field_path=("with", "method"), expected="method: pxe for IPMI nodes")

    def bmc(suffix: str, kind: str, step_timeout: float | None = None,
            **inputs: Any) -> StepDraft:
        return StepDraft(f"{driver}.{kind}", driver, {"host": host, **inputs}, suffix=suffix,
                         endpoint=endpoint, timeout=step_timeout)

    # the power-off and installer power-on are states on the way, not ones to keep
    drafts = [bmc("power-off", "power", state="off", passing=True)]
    if p.method == "virtual-media":
        drafts += [bmc("insert-media", "virtual_media", action="insert", image=p.image),
                   bmc("boot-cd", "boot_device", device="cd", once=True)]
    else:
        drafts.append(bmc("boot-pxe", "boot_device", device="pxe", once=True))
    drafts += [bmc("power-on-installer", "power", state="on", passing=True),
               bmc("wait-installer", "wait_power", p.install_timeout, state="off",
                   timeout=p.install_timeout)]
    if p.method == "virtual-media":
        drafts.append(bmc("eject-media", "virtual_media", action="eject"))
    drafts += [bmc("boot-disk", "boot_device", device="disk", once=False),
               bmc("power-on", "power", state="on")]
    if p.wait == "ssh":
        drafts.append(StepDraft("ssh.wait", "ssh", {"host": host}, suffix="wait-ssh",
                                endpoint=_ssh_endpoint(inst), timeout=p.ssh_timeout))
    elif p.wait.startswith("tcp:") and p.wait[4:].isdigit():
        drafts.append(StepDraft("ssh.wait_port", "ssh", {"host": host, "port": int(p.wait[4:])},
                                suffix="wait-port", endpoint=_ssh_endpoint(inst),
                                timeout=p.ssh_timeout))
    elif p.wait != "none":
        raise ExpandError(f"os.install wait: {p.wait!r} is not understood",
                          field_path=("with", "wait"), expected="ssh, none or tcp:PORT")
    return drafts


# -- SSH -------------------------------------------------------------------------------
class WaitParams(_P):
    timeout: Annotated[Duration, D(description="seconds to wait for a login")] = 600.0


@_register("ssh.wait", "Wait until a node accepts an SSH login", WaitParams, "node", ("ssh",))
def _ssh_wait(inst: Instance) -> list[StepDraft]:
    p = _params(inst)
    return [StepDraft("ssh.wait", "ssh", {"host": _host(inst)}, endpoint=_ssh_endpoint(inst),
                      timeout=float(p.get("timeout", 600.0)))]


class CommandParams(_P):
    command: Annotated[str | list[str], D(description="shell command(s) run in order")]
    creates: Annotated[str, D(description="skip when this path exists on the host")] = ""
    unless: Annotated[str, D(description="skip when this command succeeds")] = ""
    sudo: Annotated[bool, D(description="run through sudo")] = False
    env: Annotated[dict[str, Any], D(
        description="environment for the commands and `unless`; values may be secret "
                    "references, sent over the session's stdin, never on a command line")] = {}


@_register("ssh.command", "Run commands on a node over SSH (guarded for idempotence)",
           CommandParams, "node", ("ssh",))
def _ssh_command(inst: Instance) -> list[StepDraft]:
    return [StepDraft("ssh.command", "ssh", {"host": _host(inst), **_params(inst)},
                      endpoint=_ssh_endpoint(inst))]


for _check, _desc in {
    "kernel_cmdline": "Check the running kernel's command line contains parameters",
    "cpu_flags": "Check CPU flags (vmx/svm, ...) on the node",
    "kvm_nested": "Check that nested virtualization is enabled in kvm_intel/kvm_amd",
    "sysctl": "Check kernel sysctl values",
    "hugepages": "Check hugepages are reserved",
}.items():
    def _mk(kind: str) -> Any:
        def _expand(inst: Instance) -> list[StepDraft]:
            return [StepDraft(f"check.{kind}", "ssh", {"host": _host(inst), **_params(inst)},
                              endpoint=_ssh_endpoint(inst))]
        return _expand
    registry.register(ComponentType(f"check.{_check}", f"Preflight: {_desc}", _mk(_check),
                                    None, "node", ("ssh",), open_params=True))


# -- Ansible ---------------------------------------------------------------------------
class PlaybookParams(_P):
    playbook: Annotated[str, D(description="path under playbooks/")]
    vars: Annotated[dict[str, Any], D(description="extra variables")] = {}
    tags: Annotated[list[str], D(description="only run tasks with these tags")] = []
    once: Annotated[bool, D(description="one run for all the component's nodes")] = False


def playbook_root(inst: Instance) -> Path:
    return Path(inst.loaded.profile_path).resolve().parent.parent / "playbooks"


def _check_playbook(inst: Instance, playbook: str) -> None:
    if not (playbook_root(inst) / playbook).is_file():
        raise ExpandError(f"playbook {playbook!r} does not exist under playbooks/",
                          field_path=("with", "playbook"),
                          expected="a playbook file in playbooks/",
                          hint="write the playbook, or mark the component `type: external` "
                               "with a reason until it exists")


def _check_vars(inst: Instance, playbook: str, given: dict[str, Any]) -> None:
    """The vars against the playbook's declared interface (:mod:`.argspec`)."""
    options = argspec.load_options(playbook_root(inst) / playbook)
    if options is None:
        return
    try:
        argspec.check(options, given, playbook)
    except argspec.SpecProblem as exc:
        where: tuple[str, ...] = ("with", "vars", exc.key) if exc.key else \
            (("with", "vars") if given else ("with",))
        raise ExpandError(str(exc), field_path=where, expected=exc.expected,
                          hint=exc.hint) from None


@_register("ansible.playbook", "Run a playbook from playbooks/ against the component's nodes",
           PlaybookParams, "any", ("ansible",))
def _playbook(inst: Instance) -> list[StepDraft]:
    p = _params(inst)
    _check_playbook(inst, p["playbook"])
    _check_vars(inst, p["playbook"], p.get("vars") or {})
    nodes = inst.group or ((inst.node,) if inst.node is not None else ())
    hosts = [n.host_inputs() for n in nodes if n is not None]
    inputs: dict[str, Any] = {"playbook": p["playbook"], "hosts": hosts}
    if p.get("vars"):
        inputs["vars"] = p["vars"]
    if p.get("tags"):
        inputs["tags"] = p["tags"]
    endpoint = f"ssh://{hosts[0]['address'] or hosts[0]['node']}" if len(hosts) == 1 else None
    return [StepDraft("ansible.playbook", "ansible", inputs, endpoint=endpoint)]


class HelmParams(_P):
    chart: Annotated[str, D(description="chart reference (repo/name or OCI URL)")]
    release: Annotated[str, D(description="release name")] = ""
    namespace: Annotated[str, D(description="namespace")] = "default"
    repo: Annotated[str, D(description="chart repository URL")] = ""
    version: Annotated[str, D(description="chart version")] = ""
    values: Annotated[dict[str, Any], D(description="chart values")] = {}


#: what a plan cannot know about a chart before apply (said on every helm.release step)
HELM_NOT_CHECKED = ("not checked before apply: that the chart version exists, its templates "
                    "and required values, the objects it creates (the catalog's tests check "
                    "values against the chart's documented values.yaml)")


@_register("helm.release",
           "Install a Helm chart (kubernetes.core.helm, run by Ansible on a control-plane node)",
           HelmParams, "node", ("ansible",))
def _helm(inst: Instance) -> list[StepDraft]:
    p = _params(inst)
    _check_playbook(inst, "common/helm-release.yml")
    assert inst.node is not None
    description = "; ".join(filter(None, (inst.component.description, HELM_NOT_CHECKED)))
    return [StepDraft("ansible.playbook", "ansible",
                      {"playbook": "common/helm-release.yml", "hosts": [_host(inst)],
                       # `namespace` is reserved in Ansible: the playbook takes helm_namespace
                      "vars": {"release": p.get("release") or inst.component.name.split(".")[-1],
                               **{("helm_namespace" if k == "namespace" else k): v
                                  for k, v in p.items() if k != "release"}}},
                      endpoint=_ssh_endpoint(inst), description=description)]


# -- libvirt ---------------------------------------------------------------------------
def _libvirt(kind: str) -> Any:
    def expand(inst: Instance) -> list[StepDraft]:
        inputs = _params(inst)
        uri = inputs.pop("uri", None)
        if uri is None and inst.node is not None:
            h = inst.node.host
            if h.libvirt is not None and h.libvirt.uri:
                uri = h.libvirt.uri
            else:
                user = h.ssh.user if h.ssh else "root"
                uri = f"qemu+ssh://{user}@{h.address or inst.node.name}/system"
        inputs["uri"] = uri or "qemu:///system"
        if inst.node is not None:
            inputs["host"] = _host(inst)
        return [StepDraft(f"libvirt.{kind}", "libvirt", inputs, endpoint=inputs["uri"],
                          replace_on=("name",))]
    return expand


for _kind, _desc in {
    "network": "A libvirt network (isolated or NAT, fixed DHCP leases)",
    "pool": "A libvirt storage pool",
    "volume": "A volume: a qcow2 overlay on a base image (linked clone) or a blank disk",
    "domain": "A KVM/QEMU guest (CPU, memory, disks, NICs, console log, boot order)",
}.items():
    registry.register(ComponentType(f"libvirt.{_kind}", _desc, _libvirt(_kind), None, "any",
                                    ("libvirt",), open_params=True))


# -- Kubernetes and OpenStack (cluster-wide API objects) -------------------------------
def _manifest_digest(inst: Instance, name: str) -> str | None:
    """A manifest file's content hash, so that editing the file plans an update."""
    import hashlib
    root = Path(inst.loaded.profile_path).resolve().parent.parent
    for candidate in (Path(name), root / "manifests" / name, root / name):
        if candidate.is_file():
            return hashlib.sha256(candidate.read_bytes()).hexdigest()[:16]
    return None


def _published_name(value: Any) -> str:
    """``k8s:NAME`` for a ``{$secret: published:NAME}`` kubeconfig: one endpoint per cluster."""
    text = str(value["$secret"]) if is_ref_value(value) else value
    if isinstance(text, str) and text.startswith("published:"):
        return "k8s:" + text.partition(":")[2]
    return ""


def _cloud_name(value: Any) -> str:
    """``cloud:NAME`` for a handed-over ``cloud: {name, clouds_yaml}`` (one endpoint per
    cloud, never the mapping), the name itself for a clouds.yaml name."""
    if isinstance(value, dict):
        return f"cloud:{value.get('name') or ''}"
    return str(value or "")


def _api(driver: str, kind: str, default_endpoint: str) -> Any:
    def expand(inst: Instance) -> list[StepDraft]:
        inputs = _params(inst)
        if isinstance(inputs.get("file"), str):
            digest = _manifest_digest(inst, inputs["file"])
            if digest:
                inputs["file_sha256"] = digest
        endpoint = str(inputs.get("cluster") or _cloud_name(inputs.get("cloud"))
                       or _published_name(inputs.get("kubeconfig"))
                       or f"{default_endpoint}:{inst.loaded.profile.metadata.name}")
        return [StepDraft(kind, driver, inputs, endpoint=endpoint)]
    return expand


for _kind, _desc in {
    "kubernetes.manifest": "Apply Kubernetes objects (server-side apply) from a file or inline",
    "kubernetes.wait": "Wait for a Kubernetes condition (rollout, Ready, CRD established)",
    "kubevirt.vm": "A KubeVirt VirtualMachine",
    "kubevirt.datavolume": "A CDI DataVolume (import a disk image into a PVC)",
    "multus.network": "A Multus NetworkAttachmentDefinition",
    "kata.runtimeclass": "A RuntimeClass for a Kata Containers handler",
}.items():
    registry.register(ComponentType(_kind, _desc, _api("kubernetes", _kind, "k8s"), None,
                                    "cluster", ("kubernetes",), open_params=True))

for _kind, _desc in {
    "openstack.server": "A Nova server",
    "openstack.network": "A Neutron network and subnet",
    "openstack.image": "A Glance image",
    "openstack.flavor": "A Nova flavor",
    "ironic.node": "An Ironic bare-metal node (enroll, manage, provide)",
}.items():
    registry.register(ComponentType(_kind, _desc, _api("openstack", _kind, "openstack"), None,
                                    "cluster", ("openstack",), open_params=True))


# -- the fake driver -------------------------------------------------------------------
class FakeParams(_P):
    duration: Annotated[float, D(ge=0, le=MAX_SECONDS, description="seconds the step "
                                                                   "sleeps")] = 0.0
    fail: Annotated[str, D(description="'transient:N' or 'permanent'")] = ""
    endpoint: Annotated[str, D(description="endpoint key for concurrency limits")] = ""
    track: Annotated[bool, D(description="record concurrency per endpoint")] = False
    value: Annotated[Any, D(description="any value (changing it changes the step)")] = None
    secret: Annotated[Any, D(description="a secret reference the step receives")] = ""
    leak: Annotated[bool, D(description="echo the secret in a failure (redaction tests)")] \
        = False


@_register("fake.step", "A simulated step (tests and benchmarks)", FakeParams, "any", ("fake",))
def _fake(inst: Instance) -> list[StepDraft]:
    p = _params(inst)
    if inst.node is not None and inst.node.host.address:
        p.setdefault("address", inst.node.host.address)
    return [StepDraft("fake.step", "fake", p, endpoint=p.get("endpoint") or None)]
