"""A "did you mean …?" for a name that was not found: the closest known names.

Every place that looks a name up (component types, profile fields, ``after:`` entries,
``--target`` patterns, ``orch components TYPE``) words its error with :func:`did_you_mean`,
so a typo is answered with the name that was meant.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

import msgspec


def close_matches(name: str, known: Iterable[str], n: int = 3, cutoff: float = 0.6) -> list[str]:
    """Up to ``n`` known names closest to ``name``, best first (case-insensitive)."""
    by_lower: dict[str, str] = {}
    for k in known:
        by_lower.setdefault(str(k).lower(), str(k))
    hits = difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=cutoff)
    return [by_lower[h] for h in hits]


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``"did you mean 'fake.step'?"`` (the closest name, as Terraform and git offer one),
    or "" when nothing is close."""
    hits = close_matches(name, known, n=1)
    return f"did you mean {hits[0]!r}?" if hits else ""


def hint_with(name: str, known: Iterable[str], fallback: str = "") -> str:
    """A hint line: the suggestion first, then ``fallback`` (what else to do)."""
    dym = did_you_mean(name, known)
    return " — ".join(p for p in (dym, fallback) if p)


def struct_fields_at(typ: Any, path: Iterable[str | int]) -> list[str]:
    """The field names the msgspec Struct found at ``path`` below ``typ`` accepts (as
    written in YAML), or [] when no Struct is there: for an unknown field's error."""
    info: Any = msgspec.inspect.type_info(typ)
    for seg in path:
        info = _step(_struct_of(info) or info, seg)
        if info is None:
            return []
    found = _struct_of(info)
    return [f.encode_name for f in found.fields] if found is not None else []


def _struct_of(info: Any) -> Any:
    if isinstance(info, msgspec.inspect.StructType):
        return info
    if isinstance(info, msgspec.inspect.UnionType):
        return next((t for t in info.types if isinstance(t, msgspec.inspect.StructType)), None)
    return None


def _step(info: Any, seg: str | int) -> Any:
    if isinstance(info, msgspec.inspect.StructType) and isinstance(seg, str):
        return next((f.type for f in info.fields if f.encode_name == seg), None)
    if isinstance(info, msgspec.inspect.UnionType):
        for t in info.types:
            nxt = _step(t, seg)
            if nxt is not None:
                return nxt
        return None
    if isinstance(info, (msgspec.inspect.ListType, msgspec.inspect.VarTupleType,
                         msgspec.inspect.SetType, msgspec.inspect.FrozenSetType)):
        return info.item_type
    if isinstance(info, msgspec.inspect.DictType):
        return info.value_type
    return None
