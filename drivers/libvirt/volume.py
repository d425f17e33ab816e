"""``libvirt.volume``: a qcow2 volume -- uploaded from a file, a linked clone, or blank.

A linked clone is a qcow2 overlay whose backing file is another volume of the same pool
(usually one uploaded from the lab image), so N guests share one base image on disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drivers.libvirt import xml
from drivers.libvirt.connection import boundary, is_busy, lookup
from orchestrator.driver import Observed
from orchestrator.errors import PermanentError

GIB = 1 << 30
_CHUNK = 4 << 20


def _pool(conn: Any, name: str, uri: str) -> Any:
    pool = lookup(conn.storagePoolLookupByName, name)
    if pool is None:
        raise PermanentError(f"storage pool {name} does not exist", endpoint=uri,
                             operation="libvirt.volume", hint="add a libvirt.pool step first")
    return pool


def qcow2_virtual_size(path: Path) -> int:
    """The virtual size recorded in a qcow2 header (bytes 24..32, big-endian)."""
    with open(path, "rb") as fh:
        head = fh.read(32)
    if head[:4] != b"QFI\xfb":
        raise PermanentError(f"{path} is not a qcow2 image", operation="libvirt.volume")
    return int.from_bytes(head[24:32], "big")


def _outputs(vol: Any) -> dict[str, Any]:
    shape = xml.read_volume(vol.XMLDesc(0))
    return {"name": vol.name(), "path": vol.path(), "key": vol.key(),
            "capacity_bytes": shape["capacity"], "backing": shape["backing"]}


def ensure(conn: Any, spec: xml.VolumeSpec, uri: str, source: Path | None) -> dict[str, Any]:
    """Create the volume unless it exists (then adopt it as it is: content is not compared).

    ``source`` (already resolved to a local file) is uploaded through libvirt, so this
    works for remote URIs too. Raises :class:`PermanentError` for a missing pool, a
    missing backing volume or a volume with no size.
    """
    with boundary(uri, "libvirt.volume"):
        pool = _pool(conn, spec.pool, uri)
        vol = _find(pool, spec.name)
        if vol is not None:
            return _outputs(vol)
        capacity = int(spec.capacity_gib * GIB)
        backing_path = ""
        if spec.backing:
            base = lookup(pool.storageVolLookupByName, spec.backing)
            if base is None:
                raise PermanentError(f"backing volume {spec.pool}/{spec.backing} does not "
                                     "exist", endpoint=uri, operation="libvirt.volume")
            backing_path = base.path()
            capacity = max(capacity, int(base.info()[1]))
        elif source is not None:
            capacity = qcow2_virtual_size(source)
        if capacity <= 0:
            raise PermanentError(f"volume {spec.name} needs capacity_gib, backing or source",
                                 endpoint=uri, operation="libvirt.volume")
        vol = pool.createXML(xml.volume_xml(spec.name, capacity, backing_path=backing_path), 0)
        if source is not None:
            try:
                _upload(conn, vol, source)
            except BaseException:
                vol.delete(0)  # a half-uploaded volume must not be adopted later
                raise
        return _outputs(vol)


def _find(pool: Any, name: str, *, fresh: bool = False) -> Any | None:
    """The volume. The pool is refreshed only when libvirt does not know the volume yet (a
    file put there behind libvirt's back), or first when ``fresh`` (reading drift: a file
    removed behind its back): a refresh fails while any volume of the pool is being built
    or uploaded, which parallel steps do, so a busy pool is read as libvirt last saw it."""
    if fresh:
        _refresh_unless_busy(pool)
    vol = lookup(pool.storageVolLookupByName, name)
    if vol is None and not fresh:
        _refresh_unless_busy(pool)
        vol = lookup(pool.storageVolLookupByName, name)
    return vol


def _refresh_unless_busy(pool: Any) -> None:
    import libvirt

    try:
        pool.refresh(0)
    except libvirt.libvirtError as exc:
        if not is_busy(exc):
            raise


def _upload(conn: Any, vol: Any, source: Path) -> None:
    size = source.stat().st_size
    stream = conn.newStream(0)
    vol.upload(stream, 0, size, 0)
    with open(source, "rb") as fh:
        def send(_stream: Any, nbytes: int, _opaque: Any) -> bytes:
            return fh.read(min(nbytes, _CHUNK))

        try:
            stream.sendAll(send, None)
            stream.finish()
        except BaseException:
            stream.abort()
            raise


def delete(conn: Any, pool_name: str, name: str, uri: str) -> None:
    """Delete the volume; a volume (or pool) already gone is fine."""
    with boundary(uri, "libvirt.volume"):
        pool = lookup(conn.storagePoolLookupByName, pool_name)
        if pool is None:
            return
        vol = _find(pool, name)
        if vol is not None:
            vol.delete(0)


def observe(conn: Any, spec: xml.VolumeSpec, uri: str) -> Observed:
    """Whether the volume exists, and whether its backing volume is still the one asked."""
    with boundary(uri, "read libvirt.volume"):
        pool = lookup(conn.storagePoolLookupByName, spec.pool)
        if pool is None:
            return Observed(exists=False)
        vol = _find(pool, spec.name, fresh=True)
        if vol is None:
            return Observed(exists=False)
        out = _outputs(vol)
        drift = {}
        if spec.backing:
            base = lookup(pool.storageVolLookupByName, spec.backing)
            want = base.path() if base is not None else f"{spec.pool}/{spec.backing}"
            if out["backing"] != want:
                drift["backing"] = f"{out['backing'] or 'none'} (want {want})"
        elif out["backing"]:
            drift["backing"] = f"{out['backing']} (want none)"
        return Observed(exists=True, drift=drift, outputs=out)
