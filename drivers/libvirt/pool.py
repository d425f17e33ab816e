"""``libvirt.pool``: a persistent, autostarted directory storage pool."""

from __future__ import annotations

from typing import Any

from drivers.libvirt import xml
from drivers.libvirt.connection import boundary, lookup
from orchestrator.driver import Observed
from orchestrator.errors import PermanentError

DEFAULT_PARENT = "/var/lib/libvirt/images"


def pool_path(spec: xml.PoolSpec) -> str:
    return spec.path or f"{DEFAULT_PARENT}/{spec.name}"


def _outputs(pool: Any) -> dict[str, Any]:
    from xml.etree import ElementTree as ET

    path = ET.fromstring(pool.XMLDesc(0)).findtext("target/path") or ""
    return {"name": pool.name(), "uuid": pool.UUIDString(), "path": path}


def ensure(conn: Any, spec: xml.PoolSpec, uri: str) -> dict[str, Any]:
    """Define, build (mkdir), start and autostart the pool; adopt one at the same path.

    Raises :class:`PermanentError` when a pool of that name exists at another path.
    """
    path = pool_path(spec)
    with boundary(uri, "libvirt.pool"):
        pool = lookup(conn.storagePoolLookupByName, spec.name)
        if pool is None:
            pool = conn.storagePoolDefineXML(xml.pool_xml(spec.name, path), 0)
            pool.build(0)
        elif _outputs(pool)["path"] != path:
            raise PermanentError(f"pool {spec.name} exists at {_outputs(pool)['path']}, "
                                 f"not {path}", endpoint=uri, operation="libvirt.pool",
                                 hint="replace the step to move the pool")
        if not pool.isActive():
            pool.create(0)
        if not pool.autostart():
            pool.setAutostart(1)
        pool.refresh(0)
        return _outputs(pool)


def delete(conn: Any, name: str, uri: str) -> None:
    """Stop the pool, remove its (empty) directory and undefine it; gone is fine.

    Raises :class:`PermanentError` while volumes remain in it: they are their own steps.
    """
    with boundary(uri, "libvirt.pool"):
        pool = lookup(conn.storagePoolLookupByName, name)
        if pool is None:
            return
        if not pool.isActive():
            pool.create(0)
        pool.refresh(0)
        left = pool.listVolumes()
        if left:
            raise PermanentError(f"pool {name} still holds volumes {sorted(left)}",
                                 endpoint=uri, operation="libvirt.pool",
                                 hint="delete the volume steps first")
        pool.destroy()
        pool.delete(0)
        pool.undefine()


def observe(conn: Any, spec: xml.PoolSpec, uri: str) -> Observed:
    with boundary(uri, "read libvirt.pool"):
        pool = lookup(conn.storagePoolLookupByName, spec.name)
        if pool is None:
            return Observed(exists=False)
        out = _outputs(pool)
        drift = {}
        if out["path"] != pool_path(spec):
            drift["path"] = f"{out['path']} (want {pool_path(spec)})"
        if not pool.isActive():
            drift["active"] = "pool is stopped"
        return Observed(exists=True, drift=drift, outputs=out)
