"""Reading YAML documents while remembering where every value came from.

Validation errors must name the file, line and column of the offending value, so a document
is loaded into plain Python data together with a :class:`SourceMap` from value paths
(``("roles", "pve", "count")``) to locations. libyaml's C parser is used when PyYAML has it:
the composer gives node marks either way, and the C parser is several times faster on the
large generated inventories the benchmarks use.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator.errors import Location, SourceError

Path_ = tuple[str | int, ...]

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    _Loader = yaml.SafeLoader


@dataclass
class SourceMap:
    """Where each value of a loaded document stands in its file."""

    file: str
    marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Path_) -> Location:
        """The location of ``path``, or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.marks:
                line, col = self.marks[p]
                return Location(self.file, line, col)
            p = p[:-1]
        line, col = self.marks.get((), (1, 1))
        return Location(self.file, line, col)


@dataclass
class Document:
    data: Any
    source: SourceMap


def load_yaml(path: str | Path) -> Document:
    """Load one YAML document; raise :class:`SourceError` with a location on any problem."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SourceError("file not found", location=Location(name),
                          hint="check the path; profiles live in profiles/, "
                               "inventories in inventories/") from None
    except UnicodeDecodeError as exc:
        raise not_utf8(name, Path(path).read_bytes(), exc) from None
    except OSError as exc:
        raise SourceError(f"cannot read file: {exc.strerror or exc}",
                          location=Location(name)) from None
    return parse_yaml(text, name)


def not_utf8(name: str, data: bytes, exc: UnicodeDecodeError) -> SourceError:
    """A located error for bytes that are not UTF-8 (line and column of the first bad byte)."""
    line = data.count(b"\n", 0, exc.start) + 1
    column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
    return SourceError("not UTF-8 text", location=Location(name, line, column),
                       expected="a UTF-8 encoded file",
                       found=f"byte 0x{data[exc.start]:02x}",
                       hint="save the file as UTF-8")


def parse_yaml(text: str, name: str) -> Document:
    smap = SourceMap(name)
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Location(name, mark.line + 1, mark.column + 1) if mark else Location(name)
        raise SourceError(f"invalid YAML: {exc.problem or exc}", location=loc,
                          hint="fix the YAML syntax at that position") from None
    except yaml.YAMLError as exc:
        raise SourceError(f"invalid YAML: {exc}", location=Location(name)) from None
    if node is None:
        raise SourceError("empty document", location=Location(name, 1, 1),
                          expected="a mapping with apiVersion and kind")
    return Document(_Builder(smap).build(node, ()), smap)


#: values an alias may expand to, in all (a "billion laughs" file expands to billions)
MAX_ALIAS_VALUES = 100_000
#: the tags a document may carry: YAML's own; a custom ``!tag`` means something orch ignores
_TAGS = {f"tag:yaml.org,2002:{t}" for t in
         ("str", "int", "float", "bool", "null", "map", "seq", "timestamp", "merge")}


_INT = re.compile(r"^[-+]?(0|[1-9][0-9_]*)$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?$")
_BOOL = {"true": True, "false": False, "yes": True, "no": False, "on": True, "off": False}
_NULL = {"", "~", "null"}


def _scalar(node: yaml.ScalarNode) -> Any:
    value = node.value
    if node.style:  # quoted or block: a string, whatever it looks like
        return value
    tag = node.tag
    if tag.endswith(":str"):
        return value
    low = value.lower()
    if low in _NULL:
        return None
    if low in _BOOL:
        return _BOOL[low]
    if _INT.match(value):
        return int(value.replace("_", ""))
    if _FLOAT.match(value) and any(c in value for c in ".eE"):
        return float(value.replace("_", ""))
    return value


class _Builder:
    """Plain data from composed nodes. An alias is the very node of its anchor, so a
    recursive anchor is a node met again below itself, and expansion is counted."""

    def __init__(self, smap: SourceMap) -> None:
        self.smap = smap
        self.open: set[int] = set()   # nodes being built (an alias to one is a cycle)
        self.done: set[int] = set()   # nodes built once (building one again is an alias)
        self.alias_values = 0

    def _where(self, node: yaml.Node) -> Location:
        return Location(self.smap.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: yaml.Node, path: Path_) -> Any:
        key = id(node)
        if key in self.open:
            raise SourceError("recursive alias: this anchor contains itself",
                              location=self._where(node),
                              hint="an alias (*name) may only refer to a finished anchor")
        if key in self.done:
            self.alias_values += 1
            if self.alias_values > MAX_ALIAS_VALUES:
                raise SourceError("aliases expand to too many values",
                                  location=self._where(node),
                                  expected=f"at most {MAX_ALIAS_VALUES} values from aliases",
                                  hint="write the values out, or use fewer nested aliases")
        if node.tag not in _TAGS and not (isinstance(node, yaml.ScalarNode)
                                          and node.tag == "!"):
            raise SourceError(f"custom YAML tag {node.tag!r}", location=self._where(node),
                              expected="plain YAML values (no tags)",
                              hint="orch reads no tags; secrets are env:NAME or file:PATH")
        self.smap.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.ScalarNode):
            self.done.add(key)
            return _scalar(node)
        self.open.add(key)
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
        finally:
            self.open.discard(key)
            self.done.add(key)
        raise SourceError("unsupported YAML node", location=self.smap.locate(path))

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            # Keys are always names here: `on:` stays "on" (YAML 1.1 would make it True).
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                raise SourceError("mapping keys must be plain strings",
                                  location=self._where(key_node), expected="a string key",
                                  found=repr(key))
            if key in out:
                raise SourceError(
                    f"duplicate key {key!r}", location=self._where(key_node),
                    hint="each key may appear once in a mapping; remove or rename one")
            out[key] = self.build(value_node, (*path, key))
        return out


#: stands for a mapping key msgspec does not name in its error path (``$.roles[...].min``)
DICT_KEY = "[...]"

_MSGSPEC_PATH = re.compile(r"\s+- at `\$(?P<path>[^`]*)`$")
_SEGMENT = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[\.\.\.\]")


def split_msgspec_error(text: str) -> tuple[str, Path_]:
    """Split msgspec's ``"Expected `int`, got `str` - at `$.a[0].b`"`` into message and path."""
    m = _MSGSPEC_PATH.search(text)
    if not m:
        return text, ()
    path: list[str | int] = []
    for seg in _SEGMENT.finditer(m.group("path")):
        if seg.group(1) is not None:
            path.append(seg.group(1))
        elif seg.group(2) is not None:
            path.append(int(seg.group(2)))
        else:
            path.append(DICT_KEY)
    return text[: m.start()], tuple(path)


def non_finite(data: Any, prefix: Path_ = ()) -> Path_ | None:
    """The path of the first ``inf`` or ``nan`` inside ``data`` (a duration, a size: no
    number orch reads may be infinite), or None."""
    if isinstance(data, float) and not math.isfinite(data):
        return prefix
    items = data.items() if isinstance(data, dict) else \
        enumerate(data) if isinstance(data, list) else ()
    for k, v in items:
        found = non_finite(v, (*prefix, k))
        if found is not None:
            return found
    return None


def iter_paths(data: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    """Every path inside ``data`` (used by tests to check that each value is located)."""
    yield prefix
    if isinstance(data, dict):
        for k, v in data.items():
            yield from iter_paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from iter_paths(v, (*prefix, i))
