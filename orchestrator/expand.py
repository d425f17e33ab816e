"""From a loaded profile to the desired steps and their dependencies.

Each component becomes *instances* (one per selected node and ``foreach`` item, or one
cluster-wide), each instance one or more steps chained in order. ``after:`` entries then link
the last step of each instance depended on to the first step of each dependent instance.
Components whose ``when:`` does not hold, or whose roles have no nodes (count 0), are left
out, and whatever came after them inherits their own dependencies, so the runbook order
survives an optional layer being switched off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from orchestrator import model, secrets
from orchestrator.components import ExpandError, Instance, Registry, StepDraft
from orchestrator.components.interpolate import interpolate
from orchestrator.errors import Location, SourceError, SourceErrors
from orchestrator.graph import Graph
from orchestrator.loader import Loaded, Node, condition_holds
from orchestrator.step import Step
from orchestrator.suggest import did_you_mean, hint_with


@dataclass
class _Expanded:
    """The steps of one component, grouped by instance (node name or None)."""

    component: model.Component
    index: tuple[int, int]  # (layer, position) for locating errors
    # node name (or None) -> list of (first step id, last step id) per item
    by_node: dict[str | None, list[tuple[str, str]]] = field(default_factory=dict)

    def entries_exits(self, node: str | None) -> list[tuple[str, str]]:
        return self.by_node.get(node, [])

    def all_exits(self) -> list[str]:
        return [last for pairs in self.by_node.values() for _, last in pairs]


@dataclass
class Desired:
    steps: dict[str, Step]
    graph: Graph[str]
    layers: list[str]
    #: the steps in dependency order, ties in profile order (set by the planner's cycle check)
    order: list[str] = field(default_factory=list)
    #: where each component is written (its ``after:``), for errors about it
    locations: dict[str, Location] = field(default_factory=dict)


def _layers(profile: model.Profile) -> list[model.Layer]:
    return list(profile.layers)


def expand(loaded: Loaded, registry: Registry) -> Desired:
    profile = loaded.profile
    smap = loaded.profile_source
    errors: list[SourceError] = []
    comps: dict[str, tuple[model.Component, tuple[int, int], str]] = {}
    layer_off: set[str] = set()
    for li, lay in enumerate(_layers(profile)):
        if not condition_holds(lay.when, loaded.parameters):
            layer_off.update(c.name for c in lay.components)
        for ci, comp in enumerate(lay.components):
            path = ("layers", li, "components", ci)
            if comp.name in comps:
                errors.append(SourceError(f"duplicate component name {comp.name!r}",
                                          location=smap.locate((*path, "name")),
                                          hint="component names are unique in a profile"))
                continue
            comps[comp.name] = (comp, (li, ci), lay.name)
    if errors:
        raise SourceErrors(errors)

    active = {name for name, (c, _, _) in comps.items()
              if name not in layer_off and condition_holds(c.when, loaded.parameters)}
    drafts: dict[str, list[tuple[Instance, list[StepDraft]]]] = {}
    for name, (comp, (li, ci), layer_name) in comps.items():
        path = ("layers", li, "components", ci)
        for dep in comp.after:
            dep_name = dep if isinstance(dep, str) else dep.component
            if dep_name not in comps:
                j = comp.after.index(dep)
                errors.append(SourceError(
                    f"component {name!r} comes after unknown component {dep_name!r}",
                    location=smap.locate((*path, "after", j)),
                    expected="the name of a component in this profile", found=dep_name,
                    hint=did_you_mean(dep_name, comps)))
        if name not in active:
            continue
        try:
            drafts[name] = _instances(loaded, registry, comp, layer_name, path)
        except SourceError as exc:
            errors.append(exc)
        except SourceErrors as exc:
            errors.extend(exc.errors)
    if errors:
        raise SourceErrors(errors)

    # First the ids and each instance's chain, then the `after:` edges, then the Steps.
    pending: dict[str, tuple[StepDraft, model.Component, str, Instance, list[str]]] = {}
    expanded: dict[str, _Expanded] = {}
    graph: Graph[str] = Graph()
    for name, instances in drafts.items():
        comp, idx, layer = comps[name]
        exp = _Expanded(comp, idx)
        previous_exit: str | None = None
        for inst, step_drafts in instances:
            base = _instance_id(comp, inst)
            ids: list[str] = []
            for d in step_drafts:
                sid = f"{base}/{d.suffix}" if d.suffix else base
                if sid in pending:
                    path = ("layers", idx[0], "components", idx[1])
                    raise SourceError(f"two steps would both be named {sid!r}",
                                      location=smap.locate(path),
                                      hint="give the component a distinct name or foreach")
                deps = [ids[-1]] if ids else []
                pending[sid] = (d, comp, layer, inst, deps)
                graph.add_node(sid)
                if ids:
                    graph.add_edge(ids[-1], sid)
                ids.append(sid)
            if comp.serial and previous_exit is not None:
                pending[ids[0]][4].append(previous_exit)
                graph.add_edge(previous_exit, ids[0])
            previous_exit = ids[-1]
            node_key = inst.node.name if inst.node is not None else None
            exp.by_node.setdefault(node_key, []).append((ids[0], ids[-1]))
        expanded[name] = exp

    # A component with no steps (its or its layer's `when:` false, or its role has count 0)
    # passes its own `after:` on to whatever comes after it, so the ordering survives it.
    present = {name for name, exp in expanded.items() if exp.by_node}
    for exp in expanded.values():
        for dep in _effective_after(exp.component, comps, present):
            target = expanded.get(dep.component)
            if target is None:
                continue
            for node_key, pairs in exp.by_node.items():
                before = _dependency_exits(dep, target, node_key)
                for first, _ in pairs:
                    deps = pending[first][4]
                    for b in before:
                        if b not in deps:
                            deps.append(b)
                            graph.add_edge(b, first)

    steps: dict[str, Step] = {}
    for sid, (d, comp, layer, inst, deps) in pending.items():
        timeout = float(comp.timeout or d.timeout or 600.0)
        if not 0 < timeout <= model.MAX_SECONDS:  # also false for nan
            li, ci = comps[comp.name][1]
            raise SourceError(f"step {sid}: timeout must be a positive number of seconds",
                              location=smap.locate(("layers", li, "components", ci, "with")),
                              expected=f"0 < seconds <= {model.MAX_SECONDS:.0f}",
                              found=repr(timeout))
        steps[sid] = Step(
            id=sid, kind=d.kind, driver=comp.driver or d.driver, component=comp.name,
            layer=layer, inputs=d.inputs, depends_on=tuple(sorted(deps)),
            node=inst.node.name if inst.node is not None else None,
            endpoint=d.endpoint, description=d.description or comp.description,
            external_reason=d.external_reason, replace_on=d.replace_on,
            timeout=timeout)
    locations = {name: smap.locate(("layers", li, "components", ci, "after"))
                 for name, (_, (li, ci), _) in comps.items()}
    return Desired(steps, graph, [lay.name for lay in profile.layers], locations=locations)


def _effective_after(comp: model.Component,
                     comps: dict[str, tuple[model.Component, tuple[int, int], str]],
                     active: set[str], seen: frozenset[str] = frozenset()) -> list[model.After]:
    out: list[model.After] = []
    for dep in comp.after:
        after = model.After(dep) if isinstance(dep, str) else dep
        if after.component in active:
            out.append(after)
        elif after.component in comps and after.component not in seen:
            inherited = comps[after.component][0]
            out.extend(_effective_after(inherited, comps, active, seen | {after.component}))
    return out


def _dependency_exits(dep: model.After, target: _Expanded, node_key: str | None) -> list[str]:
    mode = dep.nodes
    if mode == "auto":
        mode = "same" if node_key is not None and node_key in target.by_node else "all"
    if mode == "same":
        return [last for _, last in target.entries_exits(node_key)] or target.all_exits()
    if mode == "first":
        keys = list(target.by_node)[: dep.count]
        return [last for k in keys for _, last in target.by_node[k]]
    return target.all_exits()


def _instance_id(comp: model.Component, inst: Instance) -> str:
    item = "" if inst.item is None else f"[{_item_label(inst.item)}]"
    if inst.node is not None:
        return f"{inst.node.name}/{comp.name}{item}"
    return f"{comp.name}{item}"


def _item_label(item: Any) -> str:
    if isinstance(item, dict):
        return str(item.get("name", item))
    if hasattr(item, "name"):
        return str(item.name)
    return str(item)


#: characters an item may not bring into a step id: ``/`` separates node and component,
#: brackets hold the item, and globs would make ``--target`` patterns match wrongly
_ID_UNSAFE = set("/[]*?")


def _check_item_label(item: Any) -> None:
    if item is None:
        return
    label = _item_label(item)
    if not label or _ID_UNSAFE & set(label):
        raise ExpandError(f"foreach item {label!r} cannot be part of a step id",
                          field_path=("foreach",),
                          expected="items without /, [, ], * or ? (and not empty)")


def _select(nodes: Sequence[Node], select: str | int) -> list[Node]:
    if select == "first":
        return list(nodes[:1])
    if select == "rest":
        return list(nodes[1:])
    if isinstance(select, int):
        return list(nodes[:select])
    return list(nodes)


def _items(comp: model.Component, node: Node | None, loaded: Loaded) -> list[Any]:
    fe = comp.foreach
    if fe is None:
        return [None]
    if isinstance(fe, list):
        return list(fe)
    kind, _, arg = fe.partition(":")
    if kind == "nodes":
        if arg not in loaded.nodes:
            raise ExpandError(f"foreach nodes:{arg}: no role {arg!r}", field_path=("foreach",),
                              expected=", ".join(loaded.nodes))
        return [{"name": n.name, "address": n.host.address, "host": n.host.name,
                 "index": n.index, "role": n.role,
                 "bmc": n.host.bmc.endpoint if n.host.bmc is not None else ""}
                for n in loaded.nodes[arg]]
    if kind == "param":
        value = loaded.parameters.get(arg)
        if isinstance(value, int) and not isinstance(value, bool):
            if not 0 <= value <= model.MAX_COUNT:
                raise ExpandError(f"foreach param:{arg} is {value}",
                                  field_path=("foreach",),
                                  expected=f"a count from 0 to {model.MAX_COUNT}")
            return list(range(1, value + 1))
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        raise ExpandError(f"foreach param:{arg} needs an int or a comma list parameter",
                          field_path=("foreach",))
    if node is None:
        raise ExpandError(f"foreach {fe!r} needs a component that runs on nodes",
                          field_path=("foreach",), hint="add `on: ROLE`")
    hw = node.hardware
    if kind == "disks":
        disks = [d for d in hw.disks if not arg or d.role == arg or d.kind == arg]
        out = []
        for d in disks:
            if d.count == 1:
                out.append({"name": d.name, "size_gib": d.size_gib, "kind": d.kind})
            else:
                out.extend({"name": f"{d.name}{i}", "size_gib": d.size_gib, "kind": d.kind}
                           for i in range(d.count))
        return out
    if kind == "nics":
        return [{"name": n.name, "speed": n.speed, "purpose": n.purpose,
                 "sriov_vfs": n.sriov_vfs}
                for n in hw.nics if not arg or n.purpose == arg]
    raise ExpandError(f"unknown foreach {fe!r}", field_path=("foreach",),
                      expected="disks:ROLE, nics:PURPOSE, nodes:ROLE, param:NAME or a list")


def _plugin_failures(registry: Registry) -> str:
    return "; ".join(f"plug-in {n} failed to load: {e}"
                     for n, e in sorted(registry.load_errors.items()))


def _instances(loaded: Loaded, registry: Registry, comp: model.Component, layer: str,
               path: tuple[Any, ...]) -> list[tuple[Instance, list[StepDraft]]]:
    smap = loaded.profile_source
    ctype = registry.get(comp.type)
    if ctype is None:
        known = ", ".join(registry.all())
        raise SourceError(f"unknown component type {comp.type!r}",
                          location=smap.locate((*path, "type")),
                          expected="a registered component type", found=comp.type,
                          hint=" — ".join(h for h in (did_you_mean(comp.type, registry.all()),
                                                      _plugin_failures(registry)) if h)
                          or f"`orch components` lists them: {known}")
    roles = [comp.on] if isinstance(comp.on, str) else list(comp.on or [])
    for i, role in enumerate(roles):
        if role not in loaded.profile.roles:
            where = (*path, "on") if isinstance(comp.on, str) else (*path, "on", i)
            raise SourceError(f"component {comp.name!r} runs on unknown role {role!r}",
                              location=smap.locate(where),
                              expected=", ".join(loaded.profile.roles), found=role,
                              hint=did_you_mean(role, loaded.profile.roles))
    if ctype.placement == "node" and not roles:
        raise SourceError(f"component type {comp.type} runs on nodes",
                          location=smap.locate(path), expected="on: ROLE")
    if ctype.placement == "cluster" and roles and comp.with_.get("once") is not True:
        roles = []  # API objects are cluster-wide; `on` only documents where they land
    nodes = [n for r in roles for n in _select(loaded.nodes.get(r, []), comp.select)]
    once = bool(comp.with_.get("once")) and ctype.name == "ansible.playbook"
    targets: list[tuple[Node | None, tuple[Node, ...]]]
    if once:
        targets = [(None, tuple(nodes))]
    elif roles:
        targets = [(n, ()) for n in nodes]
    else:
        targets = [(None, ())]
    out = []
    # `with:` that references nothing per node or item is checked once for the component
    static: dict[str, Any] | None = None
    if "${" not in repr(comp.with_):
        static = _checked_with(comp.with_, ctype, smap, path, comp)
    for node, group in targets:
        try:
            items = _items(comp, node, loaded)
            for item in items:
                _check_item_label(item)
        except ExpandError as exc:
            raise _located_expand(exc, smap, path) from None
        for item in items:
            try:
                if static is not None:
                    with_ = dict(static)
                else:
                    bare = Instance(comp, layer, node, item, loaded.parameters, {}, loaded,
                                    group)
                    with_ = _checked_with(interpolate(comp.with_, bare, ("with",)), ctype,
                                          smap, path, comp)
                inst = Instance(comp, layer, node, item, loaded.parameters, with_, loaded,
                                group)
                out.append((inst, ctype.expand(inst)))
            except ExpandError as exc:
                raise _located_expand(exc, smap, path) from None
    return out


def _checked_with(with_: dict[str, Any], ctype: Any, smap: Any, path: tuple[Any, ...],
                  comp: model.Component) -> dict[str, Any]:
    """``with:`` validated against the component type's parameters (located errors), with
    secrets as references only (:func:`orchestrator.secrets.guard`)."""
    checked = with_
    if ctype.params is not None:
        checked = _typed_with(with_, ctype, smap, path, comp)
    guarded, literals = secrets.guard(checked)
    if literals:
        raise SourceErrors([literal_secret_error(smap.locate((*path, "with", *lit)))
                            for lit in literals])
    return dict(guarded)


def literal_secret_error(where: Location) -> SourceError:
    return SourceError("secrets must be references, not values", location=where,
                       expected="env:NAME, file:PATH, or ${params.X} of a `type: secret` "
                                "parameter", found="a literal value (not shown)",
                       hint="move the secret into an environment variable or a file and "
                            "reference it; it is read only when the step runs")


def _typed_with(with_: dict[str, Any], ctype: Any, smap: Any, path: tuple[Any, ...],
                comp: model.Component) -> dict[str, Any]:
    from orchestrator.source import non_finite
    try:
        typed = dict(msgspec.to_builtins(msgspec.convert(with_, ctype.params, strict=False)))
        bad = non_finite(typed)
        if bad is None:
            return typed
        raise SourceError(f"{comp.type}: {'.'.join(map(str, bad))} is not a finite number",
                          location=smap.locate((*path, "with", *bad)),
                          expected="a finite number", found=repr(_at(typed, bad)))
    except msgspec.ValidationError as exc:
        from orchestrator.source import split_msgspec_error
        msg, sub = split_msgspec_error(str(exc))
        fields = [f.encode_name for f in msgspec.structs.fields(ctype.params)]
        unknown = msg.split("`")[1] if "unknown field" in msg and msg.count("`") >= 2 else ""
        raise SourceError(f"{comp.type}: {msg}", location=smap.locate((*path, "with", *sub)),
                          expected=f"parameters of {comp.type}: {', '.join(fields)}",
                          hint=hint_with(unknown, fields, f"`orch components {comp.type}` "
                                                      "documents them")) from None


def _at(data: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        data = data[p]
    return data


def _located_expand(exc: ExpandError, smap: Any, path: tuple[Any, ...]) -> SourceError:
    return SourceError(str(exc), location=smap.locate((*path, *exc.field_path)),
                       expected=exc.expected, hint=exc.hint)
