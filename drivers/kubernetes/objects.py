"""Server-side apply, read and delete of single objects through the dynamic client.

An object is addressed by a *reference*: ``{apiVersion, kind, name, namespace?}``, the form
recorded in step outputs. Apply is ``PATCH`` with ``application/apply-patch+yaml``, our field
manager and ``force=true``: orch is the source of truth for the fields it sets, and takes them
over from a manager that changed them by hand (as ``kubectl apply --server-side
--force-conflicts`` does). Fields it does not set stay with their owners.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drivers.kubernetes.connection import Cluster
from drivers.kubernetes.errors import translate
from orchestrator.secrets import is_ref_value

Ref = dict[str, str]


def ref_of(obj: Mapping[str, Any]) -> Ref:
    meta = obj.get("metadata") or {}
    ref = {"apiVersion": str(obj["apiVersion"]), "kind": str(obj["kind"]),
           "name": str(meta["name"])}
    if meta.get("namespace"):
        ref["namespace"] = str(meta["namespace"])
    return ref


def describe(ref: Mapping[str, str]) -> str:
    where = f"{ref['namespace']}/" if ref.get("namespace") else ""
    return f"{ref['kind']} {where}{ref['name']}"


def _resource(cluster: Cluster, ref: Mapping[str, str], operation: str) -> Any:
    try:
        return cluster.dynamic.resources.get(api_version=ref["apiVersion"], kind=ref["kind"])
    except Exception as exc:
        raise translate(exc, endpoint=cluster.endpoint, operation=operation,
                        secrets=cluster.secrets) from None


def _namespace(resource: Any, ref: Mapping[str, str], default: str) -> str | None:
    if not resource.namespaced:
        return None
    return ref.get("namespace") or default or "default"


def apply_object(cluster: Cluster, obj: Mapping[str, Any], *, field_manager: str,
                 default_namespace: str = "") -> dict[str, Any]:
    """Apply ``obj``; return its reference with the server's ``uid``.

    A namespaced object without a namespace goes to ``default_namespace`` (or ``default``);
    a cluster-scoped object never carries one. Raises classified errors.
    """
    ref = ref_of(obj)
    operation = f"apply {describe(ref)}"
    resource = _resource(cluster, ref, operation)
    namespace = _namespace(resource, ref, default_namespace)
    meta = dict(obj.get("metadata") or {})
    if namespace is None:
        meta.pop("namespace", None)
    else:
        meta["namespace"] = namespace
    body = {**obj, "metadata": meta}
    try:
        live = cluster.dynamic.server_side_apply(resource, body=body, name=ref["name"],
                                                 namespace=namespace,
                                                 field_manager=field_manager,
                                                 force_conflicts=True)
    except Exception as exc:
        raise translate(exc, endpoint=cluster.endpoint, operation=operation,
                        secrets=cluster.secrets) from None
    out: dict[str, Any] = ref_of(body)
    out["uid"] = str(live.metadata.uid or "")
    return out


def get_object(cluster: Cluster, ref: Mapping[str, str]) -> dict[str, Any] | None:
    """The live object, or None when it does not exist."""
    from kubernetes.dynamic.exceptions import NotFoundError

    operation = f"read {describe(ref)}"
    resource = _resource(cluster, ref, operation)
    try:
        live = cluster.dynamic.get(resource, name=ref["name"],
                                   namespace=_namespace(resource, ref, ""))
    except NotFoundError:
        return None
    except Exception as exc:
        raise translate(exc, endpoint=cluster.endpoint, operation=operation,
                        secrets=cluster.secrets) from None
    return dict(live.to_dict())


def list_objects(cluster: Cluster, api_version: str, kind: str, *, namespace: str = "",
                 selector: str = "") -> list[dict[str, Any]]:
    """Every object of a kind (in ``namespace`` when it is namespaced and one is given)
    matching the label ``selector``."""
    operation = f"list {kind}" + (f" ({selector})" if selector else "")
    resource = _resource(cluster, {"apiVersion": api_version, "kind": kind, "name": ""},
                         operation)
    try:
        found = cluster.dynamic.get(resource, namespace=(namespace or None)
                                    if resource.namespaced else None,
                                    label_selector=selector or None)
    except Exception as exc:
        raise translate(exc, endpoint=cluster.endpoint, operation=operation,
                        secrets=cluster.secrets) from None
    return [dict(item) for item in found.to_dict().get("items") or ()]


def delete_object(cluster: Cluster, ref: Mapping[str, str]) -> bool:
    """Ask for deletion (foreground propagation); False when it was already gone."""
    from kubernetes.dynamic.exceptions import NotFoundError

    operation = f"delete {describe(ref)}"
    resource = _resource(cluster, ref, operation)
    try:
        cluster.dynamic.delete(resource, name=ref["name"],
                               namespace=_namespace(resource, ref, ""),
                               propagation_policy="Foreground")
    except NotFoundError:
        return False
    except Exception as exc:
        raise translate(exc, endpoint=cluster.endpoint, operation=operation,
                        secrets=cluster.secrets) from None
    return True


_IGNORED = (("metadata", "namespace"), ("apiVersion",), ("kind",))


def drift(applied: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    """Fields orch applied whose live value differs, as ``path: live X, applied Y``.

    What orch applied is compared as a subset of the live object: fields the server adds
    (defaults such as a container's ``terminationMessagePath`` or a port's ``protocol``) are
    not drift. Lists of objects compare item by item when the lengths agree (the server keeps
    their order); otherwise, and for lists of plain values, whole. Quantities the server
    normalises ("1Gi" vs "1024Mi") are reported as they are, which errs on the side of
    showing a change.
    """
    out: list[str] = []
    _compare(applied, live, (), out)
    return out


def _compare(want: Any, have: Any, path: tuple[str, ...], out: list[str]) -> None:
    shown = ".".join(path)
    if isinstance(want, Mapping) and want and not is_ref_value(want):
        for key, sub in want.items():
            sub_path = (*path, str(key))
            # stringData is write-only (the server folds it into data); a secret
            # reference's value is never read back to compare
            if sub_path in _IGNORED or sub_path[:1] == ("stringData",) or is_ref_value(sub):
                continue
            if not isinstance(have, Mapping) or key not in have:
                out.append(f"{'.'.join(sub_path)}: missing, applied {sub!r}")
                continue
            _compare(sub, have[key], sub_path, out)
    elif (isinstance(want, list) and isinstance(have, list) and len(want) == len(have)
          and any(isinstance(item, Mapping) for item in want)):
        for index, (item, live_item) in enumerate(zip(want, have, strict=True)):
            _compare(item, live_item, (*path, str(index)), out)
    elif have != want:
        out.append(f"{shown}: live {have!r}, applied {want!r}")
