"""The profile and inventory model (``apiVersion: orch/v1``), validated with msgspec.

A **profile** describes one layered stack, bottom to top: roles of nodes (count, hardware
shape, BMC kind), parameters, static preflight checks, and layers of components. A
**component** names a registered component type, the roles it runs on, what it comes after,
and its parameters (``with:``). A **inventory** binds the profile's roles to hosts: addresses,
SSH access, BMC endpoints and secret references.

Structs here are plain data; cross-field rules (references between components, roles that
exist, parameter types) are checked in :mod:`orchestrator.loader`, which knows the source map
and reports each problem with file, line and column.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct, field

API_VERSION = "orch/v1"

Name = Annotated[str, Meta(pattern=r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$", max_length=63)]
#: a component, layer or role name: part of step ids (``pve-2/ceph.osd[sdb]``), so no ``/``,
#: brackets or glob characters (``--target`` patterns would match it wrongly)
StepName = Annotated[str, Meta(pattern=r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$",
                               max_length=100)]
#: seconds: positive and finite (``inf`` and ``nan`` are refused; a year at most)
MAX_SECONDS = 366 * 24 * 3600.0
Duration = Annotated[float, Meta(gt=0, le=MAX_SECONDS)]
#: nodes in one role, items of a ``foreach``: bounded so a typo cannot exhaust memory
MAX_COUNT = 10_000
Count = Annotated[int, Meta(ge=0, le=MAX_COUNT)]
Scalar = str | int | float | bool


class _Strict(Struct, forbid_unknown_fields=True, omit_defaults=True):
    pass


# -- values that come from parameters --------------------------------------------------
class FromParam(_Strict):
    """``{param: mode, map: {aio-sx: 1, standard: 2}}`` — a value chosen by a parameter."""

    param: str
    map: dict[str, Any] | None = None


IntOrParam = Count | FromParam


class Condition(_Strict):
    """``when:`` — the component is part of the stack only if the parameter matches."""

    param: str
    equals: Scalar | None = None
    in_: list[Scalar] | None = field(default=None, name="in")
    not_in: list[Scalar] | None = None


# -- roles and hardware ----------------------------------------------------------------
class Disk(_Strict):
    name: str
    size_gib: int = 0
    kind: Literal["nvme", "ssd", "hdd", "virtual"] = "ssd"
    role: Literal["os", "osd", "data", "journal", "cache", "spare"] = "data"
    count: Annotated[int, Meta(ge=1, le=MAX_COUNT)] = 1


class Nic(_Strict):
    name: str
    speed: str = "1G"
    purpose: str = ""
    sriov_vfs: int = 0
    count: Annotated[int, Meta(ge=1, le=MAX_COUNT)] = 1


class Hardware(_Strict):
    cpu: int = 1
    memory_gib: int = 1
    arch: Literal["x86_64", "aarch64", "s390x", "riscv64"] = "x86_64"
    disks: list[Disk] = []
    nics: list[Nic] = []
    #: CPU or platform features the stack needs: vt-x, amd-v, iommu, sriov, ecc, tpm, ...
    features: list[str] = []
    gpus: int = 0
    notes: str = ""


class Role(_Strict):
    count: IntOrParam = 1
    min: int = 0
    max: int | None = None
    hardware: Hardware = field(default_factory=Hardware)
    bmc: Literal["redfish", "ipmi", "none", "external"] = "redfish"
    description: str = ""


class Parameter(_Strict):
    """A profile parameter. ``type: secret`` holds a reference (``env:NAME``/``file:PATH``),
    never a value: it is read when a step that uses it runs."""

    type: Literal["str", "int", "bool", "float", "secret"] = "str"
    default: Scalar | None = None
    choices: list[Scalar] | None = None
    description: str = ""


# -- components ------------------------------------------------------------------------
class After(_Strict):
    """A dependency on another component, with which of its instances count.

    ``nodes: same`` pairs instances node by node, ``all`` waits for every instance,
    ``first`` for the first ``count`` nodes (``auto``: same when both run per node on the
    same role, else all).
    """

    component: str
    nodes: Literal["auto", "same", "all", "first"] = "auto"
    count: Annotated[int, Meta(ge=1, le=MAX_COUNT)] = 1


class Check(_Strict):
    """A check: static ones are decided at plan time, the others run as steps."""

    type: str
    name: str = ""
    why: str = ""
    with_: dict[str, Any] = field(default_factory=dict, name="with")


class Component(_Strict):
    name: StepName
    type: str
    on: str | list[str] | None = None
    #: which nodes of the roles: every node, the first one, or the first N
    select: Literal["each", "first", "rest"] | Annotated[int, Meta(ge=1)] = "each"
    #: one step per item: ``disks:osd`` (the role's disks of that role), ``nics:<purpose>``,
    #: ``nodes:ROLE`` (another role's nodes: name, address, host, index, bmc), a list, or
    #: ``param:NAME`` (a list parameter or an int count)
    foreach: str | list[Scalar] | None = None
    after: list[str | After] = []
    when: Condition | None = None
    with_: dict[str, Any] = field(default_factory=dict, name="with")
    driver: str | None = None
    reason: str = ""
    description: str = ""
    verify: list[dict[str, Any]] = []
    timeout: Duration | None = None
    #: one instance at a time, in node order (a rolling operation: upgrade, reboot, drain)
    serial: bool = False


class Layer(_Strict):
    name: StepName
    components: list[Component]
    description: str = ""
    #: the whole layer is part of the stack only if the parameter matches (e.g. a layer that
    #: builds what a site may already have); its components' `after:` edges pass through it
    when: Condition | None = None


class Metadata(_Strict):
    name: Name
    title: str = ""
    deployment: int | None = None
    description: str = ""
    use_case: str = ""
    lab: bool = True
    labels: dict[str, str] = {}


class Moved(_Strict):
    """A rename state follows, as Terraform's ``moved`` block: ``from`` a recorded step id or
    component name, ``to`` its new one. Planned as no change; written to state by the next
    apply. Keep the entry until every state of the profile has been applied once."""

    from_: str = field(name="from")
    to: str


class Profile(_Strict):
    apiVersion: str
    kind: Literal["Profile"]
    metadata: Metadata
    roles: dict[StepName, Role]
    layers: Annotated[list[Layer], Meta(min_length=1)]
    parameters: dict[str, Parameter] = {}
    preflight: list[Check] = []
    drivers: dict[str, dict[str, Any]] = {}
    moved: list[Moved] = []


# -- inventory -------------------------------------------------------------------------
class SshAccess(_Strict):
    user: str = "root"
    port: int = 22
    private_key: str | None = None
    password: str | None = None


class BmcAccess(_Strict):
    kind: Literal["redfish", "ipmi"] = "redfish"
    endpoint: str = ""
    system: str | None = None
    username: str | None = None
    password: str | None = None
    verify_tls: bool = True
    ca_bundle: str | None = None


class LibvirtAccess(_Strict):
    uri: str = "qemu:///system"
    domain: str | None = None


class Host(_Strict):
    name: str
    address: str
    ssh: SshAccess | None = None
    bmc: BmcAccess | None = None
    libvirt: LibvirtAccess | None = None
    labels: dict[str, str] = {}
    roles: list[str] = []
    hardware: Hardware | None = None


class InventoryDefaults(_Strict):
    ssh: SshAccess = field(default_factory=SshAccess)
    bmc: BmcAccess | None = None


class InventoryMetadata(_Strict):
    name: Name
    description: str = ""


class Inventory(_Strict):
    apiVersion: str
    kind: Literal["Inventory"]
    metadata: InventoryMetadata
    hosts: list[Host]
    #: explicit bindings: role -> host names (unbound roles draw from the pool in order)
    roles: dict[str, list[str]] = {}
    defaults: InventoryDefaults = field(default_factory=InventoryDefaults)
    drivers: dict[str, dict[str, Any]] = {}


def convert(data: Any, typ: type[Any]) -> Any:
    """msgspec conversion that keeps string/number strictness but accepts ints for floats."""
    return msgspec.convert(data, typ, strict=False)
