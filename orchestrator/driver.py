"""The driver contract and the registry that finds drivers by name.

A driver is a class registered in the ``orch.drivers`` entry-point group. It declares the
step kinds it carries, its settings (a ``msgspec.Struct``: types, defaults, and one-line
descriptions in ``Meta``), the Python modules it needs, and how many concurrent operations
one endpoint may receive. Its module must import its vendor library lazily (inside methods)
so that loading the class to validate settings never fails on a missing optional dependency.

The three calls, after Terraform's provider protocol:

* :meth:`Driver.read` -- what exists for a recorded step (drift detection);
* :meth:`Driver.apply` -- carry out a planned create, update, replace or delete;
* :meth:`Driver.facts` -- plan-time findings about the environment (e.g. "KVM usable: no").

Drivers raise :class:`~orchestrator.errors.TransientError` or
:class:`~orchestrator.errors.PermanentError` (vendor exceptions translated at the boundary),
never return failure values.
"""

from __future__ import annotations

import importlib.util
import threading
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from orchestrator.errors import DriverLoadError, NotSupportedError, OrchError
from orchestrator.plan import Action, Finding
from orchestrator.step import Step

if TYPE_CHECKING:
    from importlib import metadata

ENTRY_POINT_GROUP = "orch.drivers"


class NoSettings(msgspec.Struct, forbid_unknown_fields=True):
    """A driver that takes no settings."""


@dataclass(frozen=True)
class ApplyRequest:
    """What the executor hands a driver for one step."""

    step: Step
    action: Action
    #: The step's inputs with every secret reference resolved to a masked ``Secret``.
    inputs: Mapping[str, Any]
    #: Outputs recorded for this step by an earlier run (empty on create).
    prior_outputs: Mapping[str, Any]
    #: Outputs of the steps this one depends on, by step id.
    upstream: Mapping[str, Mapping[str, Any]]
    #: Monotonic time (``time.monotonic()``) by which the step must be done.
    deadline: float
    #: Structured logger bound to the step id; log through it, never print.
    log: Any
    #: Called with a short text to show progress (e.g. "waiting for SSH, 12 s").
    report: Callable[[str], None] = field(default=lambda _text: None)
    #: Set when the run is being cancelled; long waits should check it.
    cancelled: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class ApplyResult:
    """What a driver returns on success: outputs recorded in state for later steps and runs.

    Outputs must never contain a secret value.
    """

    outputs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Observed:
    """What a driver reads back for a recorded step."""

    exists: bool
    #: Input keys whose observed value differs from the recorded one, with a short text each.
    drift: Mapping[str, str] = field(default_factory=dict)
    outputs: Mapping[str, Any] = field(default_factory=dict)


class Driver(ABC):
    """Base class of every driver. Subclasses set the class attributes and implement apply."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    #: step kind -> one-line description
    step_kinds: ClassVar[Mapping[str, str]] = {}
    settings_type: ClassVar[type[msgspec.Struct]] = NoSettings
    #: Python modules the driver imports when it works (checked by ``orch drivers``).
    requires: ClassVar[tuple[str, ...]] = ()
    #: At most this many operations at once against one endpoint (None: no limit).
    endpoint_concurrency: int | None = None

    def __init__(self, settings: msgspec.Struct | None = None) -> None:
        self.settings = settings if settings is not None else self.settings_type()

    @abstractmethod
    def apply(self, request: ApplyRequest) -> ApplyResult:
        """Carry out ``request.action`` for ``request.step``; idempotent where it can be."""

    def read(self, step: Step, outputs: Mapping[str, Any]) -> Observed:
        """Read what exists for a step recorded with ``outputs``. Must not change anything."""
        raise NotSupportedError(f"driver {self.name} cannot read observed state",
                                operation="read", endpoint=step.endpoint or "-")

    def facts(self, steps: Sequence[Step]) -> Sequence[Finding]:
        """Findings about the environment for the plan; must not change anything."""
        return ()

    def close(self) -> None:
        """Release connections at the end of a run."""

    def can_read(self) -> bool:
        """Whether :meth:`read` tells anything (a driver may depend on its settings)."""
        return type(self).read is not Driver.read


@dataclass(frozen=True)
class DriverInfo:
    name: str
    target: str
    description: str
    step_kinds: Mapping[str, str]
    requires: tuple[str, ...]
    missing: tuple[str, ...]
    error: str = ""

    @property
    def available(self) -> bool:
        return not self.missing and not self.error


class DriverRegistry:
    """Finds driver classes by name in the entry-point group, loading each only when asked."""

    def __init__(self, extra: Mapping[str, type[Driver]] | None = None) -> None:
        self._extra = dict(extra or {})
        self._classes: dict[str, type[Driver]] = {}
        self._points: dict[str, metadata.EntryPoint] | None = None

    def _entry_points(self) -> dict[str, metadata.EntryPoint]:
        from importlib import metadata
        if self._points is None:
            self._points = {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
        return self._points

    def _own_entry_point(self, name: str) -> metadata.EntryPoint | None:
        """orch's own drivers, found without scanning every installed distribution (that
        scan costs ~20 ms with a few hundred packages installed)."""
        from importlib import metadata
        if self._points is not None:
            return self._points.get(name)
        from orchestrator import DISTRIBUTION
        for dist in (DISTRIBUTION, "orch"):  # "orch": an install made before the rename
            try:
                points = metadata.distribution(dist).entry_points
                break
            except metadata.PackageNotFoundError:
                continue
        else:
            return None
        for ep in points:
            if ep.group == ENTRY_POINT_GROUP and ep.name == name:
                return ep
        return None

    def names(self) -> list[str]:
        return sorted(set(self._entry_points()) | set(self._extra))

    def register(self, cls: type[Driver]) -> None:
        self._extra[cls.name] = cls

    def load(self, name: str) -> type[Driver]:
        if name in self._classes:
            return self._classes[name]
        if name in self._extra:
            cls = self._extra[name]
        else:
            point = self._own_entry_point(name) or self._entry_points().get(name)
            if point is None:
                from orchestrator.suggest import did_you_mean
                known = ", ".join(self.names()) or "none"
                raise DriverLoadError("no such driver", driver=name,
                                      hint=" ".join(h for h in (did_you_mean(name, self.names()),
                                                                f"known drivers: {known}") if h))
            try:
                cls = point.load()
            except Exception as exc:  # a broken plug-in must not take the CLI down
                raise DriverLoadError(f"{type(exc).__name__}: {exc}", driver=name) from None
            if not (isinstance(cls, type) and issubclass(cls, Driver)):
                raise DriverLoadError(f"{point.value} is not a Driver subclass", driver=name)
        self._classes[name] = cls
        return cls

    def settings(self, name: str, raw: Mapping[str, Any] | None) -> msgspec.Struct:
        """Validate ``raw`` against the driver's declared settings."""
        cls = self.load(name)
        try:
            return msgspec.convert(dict(raw or {}), cls.settings_type)
        except msgspec.ValidationError as exc:
            raise OrchError(f"settings for driver {name!r}: {exc}") from None

    def info(self, name: str) -> DriverInfo:
        target = self._extra[name].__module__ if name in self._extra else (
            self._entry_points()[name].value if name in self._entry_points() else "?")
        try:
            cls = self.load(name)
        except DriverLoadError as exc:
            return DriverInfo(name, target, "", {}, (), (), error=str(exc))
        missing = tuple(m for m in cls.requires if not _importable(m))
        return DriverInfo(name, target, cls.description, dict(cls.step_kinds), cls.requires,
                          missing)


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def settings_description(settings_type: type[msgspec.Struct]) -> list[tuple[str, str, str, str]]:
    """(name, type, default, description) for each declared setting, for ``orch drivers``."""
    out = []
    for f in msgspec.structs.fields(settings_type):
        meta = ""
        typ = f.type
        args = getattr(typ, "__metadata__", ())
        for a in args:
            if isinstance(a, msgspec.Meta) and a.description:
                meta = a.description
        base = typing.get_args(typ)[0] if typing.get_origin(typ) is typing.Annotated else typ
        if typing.get_origin(base) is typing.Literal:
            name = "|".join(str(a) for a in typing.get_args(base) if a != "")
        else:
            name = getattr(base, "__name__", str(base))
        default = "" if f.default is msgspec.NODEFAULT else repr(f.default)
        out.append((f.name, name, default, meta))
    return out
