"""Kubernetes objects from a step's inputs: inline ``manifest``, a ``file``, a ``url`` or
``urls`` (applied in order).

Each source may hold one object, several (a YAML stream or a list) or a ``kind: List``. Every
object is checked for ``apiVersion``, ``kind`` and ``metadata.name`` before anything is sent.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from orchestrator.errors import PermanentError, TransientError

SOURCES = ("manifest", "file", "url", "urls")
OPERATION = "load manifest"


def _documents(value: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(value, str):
        try:
            value = [d for d in yaml.safe_load_all(value) if d is not None]
        except yaml.YAMLError as exc:
            raise PermanentError(f"{where} is not valid YAML: {exc}", endpoint=where,
                                 operation=OPERATION) from None
    items = value if isinstance(value, list) else [value]
    out: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, Mapping):
            raise PermanentError(f"{where} holds a {type(item).__name__}, not an object",
                                 endpoint=where, operation=OPERATION)
        if item.get("kind") == "List" and isinstance(item.get("items"), list):
            out.extend(_documents(item["items"], where))
        else:
            out.append(dict(item))
    return out


def _read_file(name: str, manifests_dir: str) -> str:
    path = Path(os.path.expanduser(name))
    if not path.is_absolute():
        path = Path(manifests_dir) / path
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PermanentError(f"cannot read {path}: {exc.strerror}", endpoint=str(path),
                             operation=OPERATION,
                             hint=f"relative files are read from {manifests_dir}/") from None


def _fetch(url: str, timeout: float) -> str:
    if not url.startswith(("http://", "https://")):
        raise PermanentError("a manifest url must be http:// or https://", endpoint=url,
                             operation=OPERATION)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return str(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        cls = TransientError if exc.code >= 500 or exc.code == 429 else PermanentError
        raise cls(f"HTTP {exc.code} {exc.reason}", endpoint=url, operation=OPERATION) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TransientError(f"cannot fetch: {reason}", endpoint=url,
                             operation=OPERATION) from None


def _check(obj: dict[str, Any], where: str) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not obj.get("apiVersion") or not obj.get("kind") or not isinstance(meta, Mapping) \
            or not meta.get("name"):
        raise PermanentError("every object needs apiVersion, kind and metadata.name",
                             endpoint=where, operation=OPERATION,
                             hint=f"found kind={obj.get('kind')!r}")
    return obj


def load_objects(inputs: Mapping[str, Any], *, manifests_dir: str,
                 timeout: float) -> list[dict[str, Any]]:
    """The objects a ``kubernetes.manifest`` step applies, in order.

    Raises :class:`PermanentError` for a missing, unreadable or invalid source and
    :class:`TransientError` when a ``url`` cannot be fetched for now.
    """
    given = [key for key in SOURCES if inputs.get(key)]
    if len(given) != 1:
        raise PermanentError("give exactly one of manifest, file, url or urls", endpoint="-",
                             operation=OPERATION, hint=f"found: {', '.join(given) or 'none'}")
    key = given[0]
    if key == "manifest":
        where, docs = "inline manifest", _documents(inputs["manifest"], "inline manifest")
    elif key == "file":
        where = str(inputs["file"])
        docs = _documents(_read_file(where, manifests_dir), where)
    else:
        urls = [inputs["url"]] if key == "url" else list(inputs["urls"])
        where = ", ".join(str(u) for u in urls)
        docs = [doc for url in urls for doc in _documents(_fetch(str(url), timeout), str(url))]
    if not docs:
        raise PermanentError("no objects found", endpoint=where, operation=OPERATION)
    return [_check(doc, where) for doc in docs]
