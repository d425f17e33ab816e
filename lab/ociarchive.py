"""Container images written as archives a node imports (``docker load``, ``ctr images import``).

No container registry is reachable here, so the images a Kubernetes node runs are made on
this machine from binaries built or packaged here: one layer holding the files, a config
naming the entry point, in the ``docker save`` archive layout (``manifest.json``, the
config, ``<layer>/layer.tar``), which both Docker and containerd import. Archives are
reproducible: entries sorted, owned by root, mtime 0, so the same files give the same image
id.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

#: Where a file lands in the image -> where it comes from on this machine.
Files = Mapping[str, Path]


@dataclass(frozen=True)
class ImageSpec:
    """One image: its reference, its files, how it starts."""

    ref: str
    files: Files
    entrypoint: Sequence[str] = ()
    env: Sequence[str] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
    #: Symlinks in the image: path -> target.
    links: Mapping[str, str] = field(default_factory=dict)


def library_closure(binaries: Iterable[Path]) -> dict[str, Path]:
    """The shared libraries ``binaries`` load (``ldd``), keyed by their path in the image.

    A static binary has none. The dynamic loader is included under the path the binaries
    name, so a dynamically linked program runs in an image with nothing else in it.
    """
    found: dict[str, Path] = {}
    for binary in binaries:
        proc = subprocess.run(["ldd", str(binary)], capture_output=True, text=True,
                              timeout=30, check=False)
        if proc.returncode != 0:  # "not a dynamic executable"
            continue
        for line in proc.stdout.splitlines():
            words = line.split()
            path = next((w for w in words if w.startswith("/")), None)
            if path:
                found[path] = Path(path).resolve()
    return found


def _layer(spec: ImageSpec) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        dirs: set[str] = set()
        names = sorted({*spec.files, *spec.links})
        for name in names:
            for parent in reversed(PurePosixPath(name.lstrip("/")).parents):
                if str(parent) not in (".", "") and str(parent) not in dirs:
                    dirs.add(str(parent))
                    info = tarfile.TarInfo(str(parent))
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            if name in spec.links:
                info = tarfile.TarInfo(name.lstrip("/"))
                info.type, info.linkname = tarfile.SYMTYPE, spec.links[name]
                tar.addfile(info)
                continue
            source = spec.files[name]
            data = source.read_bytes()
            info = tarfile.TarInfo(name.lstrip("/"))
            info.size, info.mode = len(data), source.stat().st_mode & 0o7777
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_archive(spec: ImageSpec, dest: Path) -> str:
    """Write ``spec`` as a ``docker save`` archive at ``dest``; return the image id."""
    layer = _layer(spec)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": list(spec.entrypoint) or None, "Env": list(spec.env)},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "orch lab mirror"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    image_id = hashlib.sha256(config_bytes).hexdigest()
    layer_dir = hashlib.sha256(layer).hexdigest()
    manifest = [{"Config": f"{image_id}.json", "RepoTags": [spec.ref],
                 "Layers": [f"{layer_dir}/layer.tar"]}]
    members = [(f"{layer_dir}/layer.tar", layer), (f"{image_id}.json", config_bytes),
               ("manifest.json", json.dumps(manifest).encode())]
    tmp = dest.with_suffix(".tmp")
    with tarfile.open(tmp, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo(layer_dir)
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    tmp.replace(dest)
    return image_id
