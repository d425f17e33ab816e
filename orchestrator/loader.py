"""Loading a profile and an inventory: YAML → validated model → parameters → bound nodes.

Every problem is reported as a :class:`~orchestrator.errors.SourceError` naming the file,
line and column, what was expected and what was found; problems that can be found together
(unknown references, bad parameter values) are reported together.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from orchestrator import model
from orchestrator.errors import Location, SourceError, SourceErrors
from orchestrator.secrets import check_reference, ref
from orchestrator.source import (
    DICT_KEY,
    Document,
    Path_,
    SourceMap,
    load_yaml,
    split_msgspec_error,
)


@dataclass(frozen=True)
class Node:
    """One machine of the profile (``pve-2``), bound to an inventory host."""

    name: str
    role: str
    index: int  # 1-based within the role
    host: model.Host
    hardware: model.Hardware

    def host_inputs(self) -> dict[str, Any]:
        """The ``inputs["host"]`` every per-node step carries (secrets as references)."""
        h = self.host
        d: dict[str, Any] = {"name": h.name, "node": self.name, "role": self.role,
                             "address": h.address}
        if h.ssh is not None:
            d["ssh"] = _with_refs(msgspec.to_builtins(h.ssh), ("private_key", "password"))
        if h.bmc is not None:
            d["bmc"] = _with_refs(msgspec.to_builtins(h.bmc), ("password", "username"))
        if h.libvirt is not None:
            d["libvirt"] = msgspec.to_builtins(h.libvirt)
        if h.labels:
            d["labels"] = dict(h.labels)
        d["hardware"] = msgspec.to_builtins(self.hardware)
        return d


def _with_refs(d: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    out = dict(d)
    for k in keys:
        v = out.get(k)
        if isinstance(v, str) and check_reference(v) is None:
            out[k] = ref(v)
    return out


@dataclass
class Loaded:
    """A profile with its parameters resolved and its nodes bound to inventory hosts."""

    profile: model.Profile
    profile_source: SourceMap
    inventory: model.Inventory | None
    inventory_source: SourceMap | None
    parameters: dict[str, Any]
    nodes: dict[str, list[Node]] = field(default_factory=dict)  # role -> nodes
    profile_path: str = ""
    inventory_path: str = ""
    profile_text_hash: str = ""
    inventory_text_hash: str = ""

    def all_nodes(self) -> list[Node]:
        return [n for nodes in self.nodes.values() for n in nodes]


# -- structure -------------------------------------------------------------------------
_UNKNOWN_FIELD = re.compile(r"Object contains unknown field `([^`]+)`")
_MISSING_FIELD = re.compile(r"Object missing required field `([^`]+)`")


def structured(doc: Document, typ: type[Any], what: str) -> Any:
    """Convert a loaded document into ``typ``; a mismatch becomes a located SourceError."""
    data = doc.data
    if not isinstance(data, dict):
        raise SourceError(f"a {what} must be a mapping", location=doc.source.locate(()),
                          expected="a mapping with apiVersion, kind, metadata",
                          found=type(data).__name__)
    if data.get("apiVersion") != model.API_VERSION:
        raise SourceError("unsupported apiVersion",
                          location=doc.source.locate(("apiVersion",)),
                          expected=f"apiVersion: {model.API_VERSION}",
                          found=repr(data.get("apiVersion")),
                          hint=f"set apiVersion: {model.API_VERSION}")
    _check_kind(doc, typ, what)
    try:
        return model.convert(data, typ)
    except msgspec.ValidationError as exc:
        raise _located(str(exc), doc.source, data, typ) from None


#: which argument takes which kind of document, for "a profile given as the inventory"
_WHERE = {"Profile": "the first argument (PROFILE)", "Inventory": "-i INVENTORY"}


def _check_kind(doc: Document, typ: type[Any], what: str) -> None:
    kind, want = doc.data.get("kind"), typ.__name__
    if want not in _WHERE or kind == want:
        return
    where = doc.source.locate(("kind",))
    if kind in _WHERE:
        def a(word: str) -> str:
            return f"an {word}" if word[0] in "AEIOU" else f"a {word}"
        raise SourceError(f"this file is {a(kind)}, not {a(want)}",
                          location=where, expected=f"kind: {want}", found=f"kind: {kind}",
                          hint=f"give {a(kind)} as {_WHERE[kind]} and {a(want)} as "
                               f"{_WHERE[want]}")
    from orchestrator.suggest import did_you_mean
    raise SourceError(f"unknown kind {kind!r}", location=where, expected=f"kind: {want}",
                      found=repr(kind), hint=did_you_mean(str(kind), _WHERE))


def _located(text: str, smap: SourceMap, data: Any, typ: Any = None) -> SourceError:
    message, path = split_msgspec_error(text)
    if DICT_KEY in path and typ is not None:
        path = _name_dict_keys(path, data, typ)
    expected = found = hint = ""
    m = _UNKNOWN_FIELD.match(message)
    if m:
        from orchestrator.suggest import hint_with, struct_fields_at
        accepted = struct_fields_at(typ, path) if typ is not None else []
        path = (*path, m.group(1))
        found = f"field {m.group(1)!r}"
        expected = ("one of: " + ", ".join(accepted)) if accepted else \
            "one of the fields this object accepts"
        hint = hint_with(m.group(1), accepted,
                         "check the spelling; `orch components` lists component parameters")
        message = "unknown field"
    elif (m := _MISSING_FIELD.match(message)):
        expected = f"field {m.group(1)!r}"
        found = "nothing"
        message = "missing required field"
    elif message.startswith("Expected"):
        parts = re.match(r"Expected (.+?), got (.+)$", message)
        if parts:
            expected, found = parts.group(1).replace("`", ""), parts.group(2).replace("`", "")
            found = f"{found} {_value_at(data, path)!r}" if _value_at(data, path) is not None \
                else found
            message = "wrong type"
    where = ".".join(str(p) for p in path)
    return SourceError(f"{message} at {where or 'top level'}", location=smap.locate(path),
                       expected=expected, found=found, hint=hint)


def _name_dict_keys(path: Path_, data: Any, typ: Any) -> Path_:
    """msgspec writes ``[...]`` for mapping keys; find the key whose value fails to convert."""
    out: list[str | int] = []
    for seg in path:
        typ = _unwrap(typ, data)
        if seg == DICT_KEY and isinstance(data, dict):
            value_type = typing.get_args(typ)[1] if typing.get_args(typ) else Any
            bad = next((k for k, v in data.items() if not _converts(v, value_type)), None)
            if bad is None:
                return tuple(out)
            out.append(bad)
            data, typ = data[bad], value_type
        elif isinstance(seg, int) and isinstance(data, list) and seg < len(data):
            out.append(seg)
            args = typing.get_args(typ)
            data, typ = data[seg], (args[0] if args else Any)
        elif isinstance(seg, str) and isinstance(data, dict):
            out.append(seg)
            fields = {f.encode_name: f.type for f in msgspec.structs.fields(typ)} \
                if isinstance(typ, type) and issubclass(typ, msgspec.Struct) else {}
            data, typ = data.get(seg), fields.get(seg, Any)
        else:
            return tuple(out)
    return tuple(out)


def _unwrap(typ: Any, data: Any) -> Any:
    """From ``X | None`` or ``str | Struct`` pick the member that fits the data's shape."""
    if typing.get_origin(typ) in (typing.Union, types.UnionType):
        for member in typing.get_args(typ):
            if isinstance(data, dict) and (typing.get_origin(member) is dict or (
                    isinstance(member, type) and issubclass(member, msgspec.Struct))):
                return member
            if isinstance(data, list) and typing.get_origin(member) is list:
                return member
    return typ


def _converts(value: Any, typ: Any) -> bool:
    try:
        model.convert(value, typ)
    except (msgspec.ValidationError, TypeError):
        return False
    return True


def _value_at(data: Any, path: Path_) -> Any:
    for p in path:
        try:
            data = data[p]
        except (KeyError, IndexError, TypeError):
            return None
    return data


# -- parameters ------------------------------------------------------------------------
_CASTS = {"str": str, "int": int, "float": float}


def _cast(raw: Any, typ: str) -> Any:
    if typ == "bool":
        if isinstance(raw, bool):
            return raw
        low = str(raw).lower()
        if low in ("true", "yes", "1", "on"):
            return True
        if low in ("false", "no", "0", "off"):
            return False
        raise ValueError(raw)
    if typ == "int" and isinstance(raw, float | bool):
        raise ValueError(raw)
    return _CASTS[typ](raw)


def resolve_parameters(profile: model.Profile, smap: SourceMap,
                       overrides: Mapping[str, str]) -> dict[str, Any]:
    errors: list[SourceError] = []
    values: dict[str, Any] = {}
    for name in overrides:
        if name not in profile.parameters:
            known = ", ".join(sorted(profile.parameters)) or "none"
            from orchestrator.suggest import did_you_mean
            errors.append(SourceError(
                f"-p {name}=...: the profile has no parameter {name!r}",
                location=smap.locate(("parameters",)), expected=f"one of: {known}",
                found=name, hint=did_you_mean(name, profile.parameters)))
    for name, spec in profile.parameters.items():
        raw = overrides.get(name, spec.default)
        where = smap.locate(("parameters", name))
        if raw is None:
            errors.append(SourceError(f"parameter {name!r} has no value", location=where,
                                      hint=f"give it a default or pass -p {name}=VALUE"))
            continue
        if spec.type == "secret":
            problem = check_reference(str(raw))
            if problem:
                src = "-p override" if name in overrides else "default"
                errors.append(SourceError(
                    f"secret parameter {name!r} ({src}) must be a reference", location=where,
                    expected="env:NAME or file:PATH", found="a literal value (not shown)",
                    hint="the value is read from the reference only when a step runs"))
                continue
            values[name] = ref(str(raw))
            continue
        try:
            value = _cast(raw, spec.type)
        except (TypeError, ValueError):
            src = "-p override" if name in overrides else "default"
            errors.append(SourceError(f"parameter {name!r} ({src}) is not a {spec.type}",
                                      location=where, expected=spec.type, found=repr(raw)))
            continue
        if spec.choices is not None and value not in spec.choices:
            errors.append(SourceError(
                f"parameter {name!r} must be one of its choices", location=where,
                expected=", ".join(map(str, spec.choices)), found=repr(value)))
            continue
        values[name] = value
    if errors:
        raise SourceErrors(errors)
    return values


def param_value(value: Any, params: Mapping[str, Any], smap: SourceMap, path: Path_) -> Any:
    """Resolve a :class:`~orchestrator.model.FromParam` (or return a plain value as is)."""
    if not isinstance(value, model.FromParam):
        return value
    if value.param not in params:
        raise SourceError(f"unknown parameter {value.param!r}", location=smap.locate(path),
                          expected="a parameter declared under parameters:")
    chosen = params[value.param]
    if value.map is None:
        return chosen
    key = str(chosen).lower() if isinstance(chosen, bool) else str(chosen)
    if key not in value.map:
        raise SourceError(f"no value for {value.param}={chosen!r} in map",
                          location=smap.locate(path),
                          expected=", ".join(map(str, value.map)), found=repr(chosen))
    return value.map[key]


def condition_holds(cond: model.Condition | None, params: Mapping[str, Any]) -> bool:
    if cond is None:
        return True
    value = params.get(cond.param)
    if cond.equals is not None and value != cond.equals:
        return False
    if cond.in_ is not None and value not in cond.in_:
        return False
    return not (cond.not_in is not None and value in cond.not_in)


# -- binding ---------------------------------------------------------------------------
def role_counts(profile: model.Profile, smap: SourceMap,
                params: Mapping[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    errors: list[SourceError] = []
    for name, role in profile.roles.items():
        path = ("roles", name, "count")
        try:
            count = param_value(role.count, params, smap, path)
        except SourceError as exc:
            errors.append(exc)
            continue
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            errors.append(SourceError(f"role {name!r}: count must be a whole number",
                                      location=smap.locate(path), expected="an int ≥ 0",
                                      found=repr(count)))
            continue
        if count < role.min or (role.max is not None and count > role.max):
            bound = (f"at least {role.min}" if role.max is None else
                     f"at most {role.max}" if count > role.max and not role.min else
                     f"between {role.min} and {role.max}")
            param = role.count.param if isinstance(role.count, model.FromParam) else None
            errors.append(SourceError(
                f"role {name!r} needs {bound} nodes, got {count}"
                + (f" (parameter {param})" if param else ""), location=smap.locate(path),
                expected=f"{bound} nodes", found=str(count),
                hint=(f"pass -p {param}={role.min if count < role.min else role.max}"
                      if param else "change the role's count")))
            continue
        counts[name] = count
    if errors:
        raise SourceErrors(errors)
    return counts


def bind_nodes(profile: model.Profile, counts: Mapping[str, int],
               inventory: model.Inventory | None,
               inv_map: SourceMap | None) -> dict[str, list[Node]]:
    """Give every node of every role a host: explicit bindings first, then the pool."""
    nodes: dict[str, list[Node]] = {}
    if inventory is None:
        for role, count in counts.items():
            hw = profile.roles[role].hardware
            nodes[role] = [Node(f"{role}-{i}", role, i, model.Host(f"{role}-{i}", ""), hw)
                           for i in range(1, count + 1)]
        return nodes
    assert inv_map is not None
    by_name = {h.name: h for h in inventory.hosts}
    errors: list[SourceError] = []
    used: set[str] = set()
    for role, names in inventory.roles.items():
        for i, hname in enumerate(names):
            if hname not in by_name:
                errors.append(SourceError(
                    f"role binding {role!r} names unknown host {hname!r}",
                    location=inv_map.locate(("roles", role, i)),
                    expected="a host listed under hosts:", found=hname))
    if errors:
        raise SourceErrors(errors)
    reserved = {n for names in inventory.roles.values() for n in names}
    default_kind = inventory.defaults.bmc.kind if inventory.defaults.bmc is not None else None

    def bmc_kind(h: model.Host) -> str | None:
        return h.bmc.kind if h.bmc is not None and h.bmc.kind else default_kind

    for role, count in counts.items():
        # a role that names its BMC kind takes hosts with that kind first, then any
        want = profile.roles[role].bmc
        pool = sorted(inventory.hosts, key=lambda h: 0 if bmc_kind(h) == want else 1) \
            if want in ("redfish", "ipmi") else list(inventory.hosts)
        explicit = [by_name[n] for n in inventory.roles.get(role, ())][:count]
        chosen = [h for h in explicit if h.name not in used]
        used.update(h.name for h in chosen)
        for h in pool:
            if len(chosen) >= count:
                break
            if h.name in used or (h.roles and role not in h.roles):
                continue
            if h.name in reserved:
                continue  # reserved by an explicit binding
            chosen.append(h)
            used.add(h.name)
        if len(chosen) < count:
            errors.append(SourceError(
                f"not enough hosts for role {role!r}: the profile needs {count}, "
                f"the inventory has {len(chosen)} free",
                location=inv_map.locate(("hosts",)),
                expected=f"{count} hosts usable for {role!r}", found=str(len(chosen)),
                hint="add hosts to the inventory, or lower the role's count parameter"))
            continue
        hw = profile.roles[role].hardware
        nodes[role] = [Node(f"{role}-{i}", role, i, _with_defaults(h, inventory), hw)
                       for i, h in enumerate(chosen, start=1)]
    if errors:
        raise SourceErrors(errors)
    return nodes


def _with_defaults(host: model.Host, inv: model.Inventory) -> model.Host:
    ssh = host.ssh or inv.defaults.ssh
    bmc = host.bmc
    if inv.defaults.bmc is not None:
        base = msgspec.to_builtins(inv.defaults.bmc)
        if bmc is not None:
            base.update(msgspec.to_builtins(bmc))
        bmc = msgspec.convert(base, model.BmcAccess)
    return msgspec.structs.replace(host, ssh=ssh, bmc=bmc)


def check_inventory_secrets(inv: model.Inventory, smap: SourceMap) -> None:
    """Passwords and keys must be references, never values written in the file."""
    errors: list[SourceError] = []

    def check(value: str | None, path: Path_) -> None:
        if value is None:
            return
        problem = check_reference(value)
        if problem:
            errors.append(SourceError(
                "secrets must be references, not values", location=smap.locate(path),
                expected="env:NAME or file:PATH", found="a literal value (not shown)",
                hint="move the secret into an environment variable or a file and "
                     "reference it"))

    for key in ("private_key", "password"):
        check(getattr(inv.defaults.ssh, key), ("defaults", "ssh", key))
    if inv.defaults.bmc is not None:
        check(inv.defaults.bmc.password, ("defaults", "bmc", "password"))
    for i, h in enumerate(inv.hosts):
        if h.ssh is not None:
            for key in ("private_key", "password"):
                check(getattr(h.ssh, key), ("hosts", i, "ssh", key))
        if h.bmc is not None:
            check(h.bmc.password, ("hosts", i, "bmc", "password"))
    seen: dict[str, int] = {}
    for i, h in enumerate(inv.hosts):
        if h.name in seen:
            errors.append(SourceError(f"duplicate host name {h.name!r}",
                                      location=smap.locate(("hosts", i, "name")),
                                      hint=f"first defined as hosts[{seen[h.name]}]"))
        seen[h.name] = i
    if errors:
        raise SourceErrors(errors)


# -- entry point -----------------------------------------------------------------------
def _text_hash(path: str | Path) -> str:
    import hashlib
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load(profile_path: str | Path, inventory_path: str | Path | None = None,
         overrides: Mapping[str, str] | None = None) -> Loaded:
    """Load, validate and bind. Raises SourceError / SourceErrors with locations."""
    pdoc = load_yaml(profile_path)
    profile: model.Profile = structured(pdoc, model.Profile, "profile")
    params = resolve_parameters(profile, pdoc.source, overrides or {})
    counts = role_counts(profile, pdoc.source, params)
    inventory = inv_map = None
    if inventory_path is not None:
        idoc = load_yaml(inventory_path)
        inventory = structured(idoc, model.Inventory, "inventory")
        inv_map = idoc.source
        check_inventory_secrets(inventory, inv_map)
    nodes = bind_nodes(profile, counts, inventory, inv_map)
    return Loaded(profile, pdoc.source, inventory, inv_map, params, nodes,
                  profile_path=str(profile_path),
                  inventory_path=str(inventory_path or ""),
                  profile_text_hash=_text_hash(profile_path),
                  inventory_text_hash=_text_hash(inventory_path) if inventory_path else "")


def location_of(loaded: Loaded, path: Path_) -> Location:
    return loaded.profile_source.locate(path)
