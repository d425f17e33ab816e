"""The libvirt driver class: settings, step kinds, and dispatch to one module per kind."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from drivers.libvirt import accel, domain, network, pool, volume, xml
from drivers.libvirt.accel import Accel, Verdict
from drivers.libvirt.connection import Connections
from orchestrator.driver import ApplyRequest, ApplyResult, Driver, Observed
from orchestrator.errors import PermanentError
from orchestrator.plan import Action, Finding, FindingStatus
from orchestrator.step import Step

S = TypeVar("S", bound=msgspec.Struct)
#: Input keys every step may carry besides its kind's own (see drivers/README.md).
_COMMON = ("host", "uri")


class LibvirtSettings(msgspec.Struct, forbid_unknown_fields=True):
    uri: Annotated[str, msgspec.Meta(
        description="libvirt URI (qemu:///system, or qemu+ssh://root@l1/system for a "
                    "libvirt inside a guest)")] = "qemu:///system"
    accelerator: Annotated[Literal["auto", "kvm", "tcg"], msgspec.Meta(
        description="auto: boot a probe guest to decide (ORCH_ACCEL overrides); kvm or tcg "
                    "force it")] = "auto"
    tb_cache_mib: Annotated[int, msgspec.Meta(
        description="TCG translation cache per guest in MiB (bounds a guest's RSS); 0: "
                    "QEMU's default", ge=0)] = 128
    image_dir: Annotated[str, msgspec.Meta(
        description="where relative volume `source` paths are found (empty: the lab image "
                    "cache, ~/.cache/orch/images)")] = ""


class LibvirtDriver(Driver):
    name = "libvirt"
    description = "Virtual networks, storage pools, volumes and guests through libvirt"
    step_kinds = {
        "libvirt.network": "a virtual network (isolated or NAT) with fixed DHCP leases",
        "libvirt.pool": "a directory storage pool",
        "libvirt.volume": "a qcow2 volume: uploaded from a file, a linked clone, or blank",
        "libvirt.domain": "a guest, running or stopped, on KVM or TCG as the preflight says",
    }
    settings_type = LibvirtSettings
    requires = ("libvirt",)
    # libvirtd serialises per-object jobs itself; more than a few parallel defines and
    # starts on one host only make TCG boots slower for everyone.
    endpoint_concurrency = 4

    settings: LibvirtSettings

    def __init__(self, settings: LibvirtSettings | None = None) -> None:
        super().__init__(settings)
        self._conns = Connections()
        self._verdicts: dict[tuple[str, str], Verdict] = {}
        self._verdict_lock = threading.Lock()

    # -- the contract --------------------------------------------------------------------
    def apply(self, request: ApplyRequest) -> ApplyResult:
        """Create, update, replace or delete one step; idempotent (existing = adopted,
        already gone = deleted). Raises TransientError / PermanentError."""
        step, inputs = request.step, request.inputs
        uri = self._uri(inputs)
        conn = self._conns.get(uri)
        if request.action is Action.NOOP:
            return ApplyResult(dict(request.prior_outputs))
        if request.action in (Action.DELETE, Action.REPLACE):
            self._delete(conn, step, inputs, uri)
            if request.action is Action.DELETE:
                return ApplyResult({})
        return ApplyResult(self._ensure(conn, step, inputs, uri, request.deadline))

    def read(self, step: Step, outputs: Mapping[str, Any]) -> Observed:
        """What exists for ``step`` (its recorded inputs), with drift; changes nothing."""
        inputs = step.inputs
        uri = self._uri(inputs)
        conn = self._conns.get(uri)
        if step.kind == "libvirt.network":
            return network.observe(conn, _spec(xml.NetworkSpec, inputs, step), uri)
        if step.kind == "libvirt.pool":
            return pool.observe(conn, _spec(xml.PoolSpec, inputs, step), uri)
        if step.kind == "libvirt.volume":
            return volume.observe(conn, _spec(xml.VolumeSpec, inputs, step), uri)
        if step.kind == "libvirt.domain":
            spec = _spec(xml.DomainSpec, inputs, step)
            chosen = self.accelerator(uri, spec.accelerator)
            return domain.observe(conn, spec, uri, accel=chosen.accel.value,
                                  tb_cache_mib=self.settings.tb_cache_mib)
        raise _unknown(step, uri)

    def facts(self, steps: Sequence[Step]) -> Sequence[Finding]:
        """One accelerator finding per libvirt URI the domain steps use (or the default)."""
        wanted = {(self._uri(s.inputs), str(s.inputs.get("accelerator", "auto")))
                  for s in steps if s.kind == "libvirt.domain"} or {(self.settings.uri, "auto")}
        out = []
        for uri, choice in sorted(wanted):
            v = self.accelerator(uri, choice)
            status = FindingStatus.OK if v.accel is Accel.KVM else FindingStatus.WARN
            out.append(Finding("accelerator", status, f"{uri}: {v.finding}", source="libvirt"))
        return out

    def close(self) -> None:
        self._conns.close()

    # -- helpers -------------------------------------------------------------------------
    def accelerator(self, uri: str, choice: str = "auto") -> Verdict:
        """The accelerator verdict for domains at ``uri``; ``choice`` (a domain's own
        input) beats the ``accelerator`` setting, which beats ``ORCH_ACCEL``."""
        if choice == "auto":
            choice = self.settings.accelerator
        with self._verdict_lock:
            key = (uri, choice)
            if key not in self._verdicts:
                conn = None if accel.is_local(uri) else self._conns.get(uri)
                self._verdicts[key] = accel.verdict_for(uri, choice, conn)
            return self._verdicts[key]

    def _uri(self, inputs: Mapping[str, Any]) -> str:
        return str(inputs.get("uri") or self.settings.uri)

    def _ensure(self, conn: Any, step: Step, inputs: Mapping[str, Any], uri: str,
                deadline: float) -> dict[str, Any]:
        if step.kind == "libvirt.network":
            return network.ensure(conn, _spec(xml.NetworkSpec, inputs, step), uri)
        if step.kind == "libvirt.pool":
            return pool.ensure(conn, _spec(xml.PoolSpec, inputs, step), uri)
        if step.kind == "libvirt.volume":
            spec = _spec(xml.VolumeSpec, inputs, step)
            return volume.ensure(conn, spec, uri, self._source(spec, uri))
        if step.kind == "libvirt.domain":
            dspec = _spec(xml.DomainSpec, inputs, step)
            chosen = self.accelerator(uri, dspec.accelerator)
            out = domain.ensure(conn, dspec, uri, accel=chosen.accel.value,
                                tb_cache_mib=self.settings.tb_cache_mib, deadline=deadline)
            return {**out, "accel_reason": chosen.reason}
        raise _unknown(step, uri)

    def _delete(self, conn: Any, step: Step, inputs: Mapping[str, Any], uri: str) -> None:
        if step.kind == "libvirt.network":
            network.delete(conn, _spec(xml.NetworkSpec, inputs, step).name, uri)
        elif step.kind == "libvirt.pool":
            pool.delete(conn, _spec(xml.PoolSpec, inputs, step).name, uri)
        elif step.kind == "libvirt.volume":
            spec = _spec(xml.VolumeSpec, inputs, step)
            volume.delete(conn, spec.pool, spec.name, uri)
        elif step.kind == "libvirt.domain":
            dspec = _spec(xml.DomainSpec, inputs, step)
            log = domain.console_log_path(dspec) if accel.is_local(uri) else ""
            domain.delete(conn, dspec.name, uri, local_log=log)
        else:
            raise _unknown(step, uri)

    def _source(self, spec: xml.VolumeSpec, uri: str) -> Path | None:
        """The local file a volume is uploaded from: a path, relative to ``image_dir``."""
        if not spec.source:
            return None
        base = Path(self.settings.image_dir) if self.settings.image_dir else None
        if base is None:
            from orchestrator.cachedir import cache_dir

            base = cache_dir("images")
        path = base / Path(spec.source).expanduser()
        hint = ("check the volume's `source` and the driver's `image_dir` setting (the "
                "lab's images are built by `orch image build`)")
        if not path.is_file():
            raise PermanentError(f"volume source {path} does not exist", endpoint=uri,
                                 operation="libvirt.volume", hint=hint)
        return path


def _spec(kind: type[S], inputs: Mapping[str, Any], step: Step) -> S:
    """The step's inputs as ``kind``; raises PermanentError naming the bad input."""
    raw = {k: v for k, v in inputs.items() if k not in _COMMON}
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as exc:
        raise PermanentError(f"inputs of {step.id}: {exc}", operation=step.kind,
                             endpoint=step.endpoint or "-") from None


def _unknown(step: Step, uri: str) -> PermanentError:
    return PermanentError(f"unknown step kind {step.kind!r}", endpoint=uri,
                          operation=step.kind, hint=f"known: {', '.join(LibvirtDriver.step_kinds)}")
