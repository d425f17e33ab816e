"""Component types: what a profile's ``type:`` names, and how it becomes steps.

A :class:`ComponentType` has a name (``bmc.power``), a description, the parameters it
accepts in ``with:`` (a msgspec Struct, so they are validated and listed by
``orch components``), and an ``expand`` function that turns one *instance* (a component on
one node, for one item) into one or more :class:`StepDraft` s. Drafts of one instance run in
order. Types are registered in this module's registry; plug-ins add theirs through the
``orch.components`` entry-point group.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from orchestrator.loader import Loaded, Node
    from orchestrator.model import Component

ENTRY_POINT_GROUP = "orch.components"


class StepDraft(msgspec.Struct, frozen=True):
    """One step an instance expands into; the expander fills what only it knows."""

    kind: str
    driver: str
    inputs: dict[str, Any]
    #: appended to the instance id: "" for the only step, "power-off" → ``…/os.install/power-off``
    suffix: str = ""
    endpoint: str | None = None
    description: str = ""
    external_reason: str = ""
    replace_on: tuple[str, ...] = ()
    timeout: float | None = None


class Instance(msgspec.Struct, frozen=True):
    """A component on one node (None: cluster-wide) for one item (None: no foreach)."""

    component: Component
    layer: str
    node: Node | None
    item: Any
    params: Mapping[str, Any]  # the profile's resolved parameters
    with_: Mapping[str, Any]  # the component's ``with:`` after interpolation and validation
    loaded: Loaded
    #: nodes the instance covers when it runs once for several (e.g. one playbook run)
    group: tuple[Any, ...] = ()

    @property
    def is_per_node(self) -> bool:
        return self.node is not None


class ExpandError(Exception):
    """Raised by an expander; the planner turns it into a located SourceError."""

    def __init__(self, message: str, *, field_path: tuple[str | int, ...] = (),
                 expected: str = "", hint: str = "") -> None:
        super().__init__(message)
        self.field_path = field_path
        self.expected = expected
        self.hint = hint


@dataclass(frozen=True)
class ComponentType:
    name: str
    description: str
    expand: Callable[[Instance], list[StepDraft]]
    params: type[msgspec.Struct] | None = None
    #: "node": must run on roles; "cluster": must not; "any": either
    placement: str = "any"
    #: for ``orch components``: the drivers this type may produce steps for
    drivers: tuple[str, ...] = ()
    #: whether ``with:`` values may be anything (params is None and open)
    open_params: bool = False
    examples: tuple[str, ...] = field(default_factory=tuple)


class Registry:
    def __init__(self) -> None:
        self._types: dict[str, ComponentType] = {}
        self._plugins_loaded = False
        #: entry point name -> why it failed to load ("ModuleNotFoundError: ...")
        self.load_errors: dict[str, str] = {}

    def register(self, ctype: ComponentType) -> ComponentType:
        if ctype.name in self._types:
            raise ValueError(f"component type {ctype.name!r} registered twice")
        self._types[ctype.name] = ctype
        return ctype

    def get(self, name: str) -> ComponentType | None:
        if name not in self._types and not self._plugins_loaded:
            self._load_plugins()
        return self._types.get(name)

    def all(self) -> Mapping[str, ComponentType]:
        self._load_plugins()
        return dict(sorted(self._types.items()))

    def loaded(self) -> Mapping[str, ComponentType]:
        """The types registered so far, without looking for plug-ins."""
        return dict(sorted(self._types.items()))

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        from importlib import metadata  # only when a type is not built in (~15 ms)
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                ep.load()  # the module registers its types on import
            except Exception as exc:  # reported, not fatal: one broken plug-in spares the rest
                self.load_errors[f"{ep.name} ({ep.value})"] = f"{type(exc).__name__}: {exc}"


registry = Registry()


def builtin_registry() -> Registry:
    """The registry with orch's own component types loaded."""
    from orchestrator.components import builtin  # noqa: F401 - registers on import
    return registry
