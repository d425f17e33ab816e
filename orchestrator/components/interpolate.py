"""``${...}`` references inside a component's ``with:`` values.

``${params.NAME}``, ``${node.name}`` / ``.address`` / ``.role`` / ``.index`` / ``.host`` /
``.bmc`` (the BMC endpoint), ``${item}`` (or ``${item.FIELD}``), ``${nodes.ROLE[I].address}``
(0-based; also ``.name``, ``.host``, ``.index``, ``.bmc``), ``${nodes.ROLE.addresses}`` (a
list), ``${nodes.ROLE.names}``, ``${nodes.ROLE.count}``.

A string that is exactly one reference keeps the referenced value's type. Inside a longer
string a list is joined with spaces, or with what ``|join(SEP)`` says
(``${nodes.mon.addresses|join(',')}``). ``$${`` stands for a literal ``${`` (shell variables in
commands: ``echo $${HOME}``). A ``type: secret`` parameter is a reference, so it can only be a
whole value (``env: {TOKEN: "${params.join_token}"}``), never part of a string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from orchestrator.components import ExpandError, Instance
from orchestrator.secrets import is_ref_value

_REF = re.compile(r"(?<!\$)\$\{([^}]+)\}")
_UNTERMINATED = re.compile(r"(?<!\$)\$\{[^}]*\Z")
_JOIN = re.compile(r"^(?P<ref>[^|]+)\|\s*join\((?P<q>['\"])(?P<sep>.*)(?P=q)\)$")


def interpolate(value: Any, inst: Instance, path: tuple[str | int, ...] = ()) -> Any:
    if isinstance(value, str):
        if "${" not in value:
            return value
        if _UNTERMINATED.search(value):
            raise ExpandError(f"unterminated reference in {value!r}", field_path=path,
                              expected="${...} closed with }",
                              hint="write $${ for a literal ${ (shell variables)")
        whole = _REF.fullmatch(value)
        if whole:
            return _resolve(whole.group(1).strip(), inst, path, in_text=False)
        text = _REF.sub(lambda m: str(_resolve(m.group(1).strip(), inst, path, in_text=True)),
                        value)
        return text.replace("$${", "${")
    if isinstance(value, Mapping):
        return {k: interpolate(v, inst, (*path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, inst, (*path, i)) for i, v in enumerate(value)]
    return value


def _resolve(ref: str, inst: Instance, path: tuple[str | int, ...], *, in_text: bool) -> Any:
    sep = " "
    m = _JOIN.match(ref)
    if m:
        ref, sep = m.group("ref").strip(), m.group("sep")
    value = _lookup(ref, inst, path)
    if in_text and is_ref_value(value):
        raise ExpandError(f"${{{ref}}} is a secret: it can only be a whole value",
                          field_path=path,
                          hint="pass it where the step reads it when it runs: `env:` of "
                               "ssh.command (then \"$NAME\" in the command), `vars:` of "
                               "ansible.playbook")
    if isinstance(value, list) and (in_text or m):
        return sep.join(str(v) for v in value)
    return value


def _bmc_endpoint(host: Any) -> str:
    return str(host.bmc.endpoint) if host.bmc is not None and host.bmc.endpoint else ""


def _lookup(ref: str, inst: Instance, path: tuple[str | int, ...]) -> Any:
    head, _, rest = ref.partition(".")
    try:
        if head == "params":
            return inst.params[rest]
        if head == "item":
            return inst.item if not rest else _field(inst.item, rest)
        if head == "node":
            if inst.node is None:
                raise ExpandError(f"${{{ref}}} used in a component that runs on no node",
                                  field_path=path, hint="add `on: ROLE` to the component")
            n = inst.node
            return {"name": n.name, "address": n.host.address, "role": n.role,
                    "index": n.index, "host": n.host.name,
                    "bmc": _bmc_endpoint(n.host)}[rest]
        if head == "nodes":
            return _nodes(rest, inst)
    except (KeyError, IndexError, TypeError, ValueError):
        pass
    raise ExpandError(f"cannot resolve ${{{ref}}}", field_path=path,
                      expected="${params.NAME}, ${node.FIELD}, ${item}, "
                               "${nodes.ROLE[I].FIELD}, ${nodes.ROLE.addresses|names|count}",
                      hint="write $${ for a literal ${ (shell variables)")


def _field(item: Any, name: str) -> Any:
    if isinstance(item, Mapping):
        return item[name]
    return getattr(item, name)


_INDEXED = re.compile(r"^([a-z0-9_-]+)\[(\d+)\]\.(\w+)$")


def _nodes(rest: str, inst: Instance) -> Any:
    nodes = inst.loaded.nodes
    m = _INDEXED.match(rest)
    if m:
        n = nodes[m.group(1)][int(m.group(2))]
        return {"name": n.name, "address": n.host.address, "host": n.host.name,
                "index": n.index, "bmc": _bmc_endpoint(n.host)}[m.group(3)]
    role, _, what = rest.partition(".")
    group = nodes[role]
    if what == "addresses":
        return [n.host.address for n in group]
    if what == "names":
        return [n.name for n in group]
    if what == "count":
        return len(group)
    raise KeyError(what)
