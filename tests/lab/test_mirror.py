"""The offline mirror's pieces that need no Kubernetes build: image archives in the
``docker save`` layout, the node packages' apt repository, and the HTTP server on a lab
network's gateway (here the loopback network, whose "gateway" is 127.0.0.1)."""

from __future__ import annotations

import hashlib
import json
import tarfile
import urllib.request
from pathlib import Path

import pytest

from lab import mirrorserve
from lab.ociarchive import ImageSpec, library_closure, write_archive


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        out: dict[str, bytes] = {}
        for m in tar.getmembers():
            f = tar.extractfile(m) if m.isfile() else None
            out[m.name] = f.read() if f else b""
        return out


def test_an_image_archive_has_the_docker_save_layout(tmp_path: Path) -> None:
    binary = tmp_path / "hello"
    binary.write_bytes(b"#!/bin/sh\necho hi\n")
    binary.chmod(0o755)
    spec = ImageSpec("registry.orch.lab/k8s/hello:v1", {"/usr/local/bin/hello": binary},
                     entrypoint=("/usr/local/bin/hello",), links={"/bin/hi": "hello"})
    image_id = write_archive(spec, tmp_path / "hello.tar")
    members = _members(tmp_path / "hello.tar")
    manifest = json.loads(members["manifest.json"])
    assert manifest[0]["RepoTags"] == ["registry.orch.lab/k8s/hello:v1"]
    config = json.loads(members[manifest[0]["Config"]])
    assert manifest[0]["Config"] == f"{image_id}.json"
    assert config["config"]["Entrypoint"] == ["/usr/local/bin/hello"]
    layer_name = manifest[0]["Layers"][0]
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(
        members[layer_name]).hexdigest()]
    layer = tmp_path / "layer.tar"
    layer.write_bytes(members[layer_name])
    with tarfile.open(layer) as tar:
        entry = tar.getmember("usr/local/bin/hello")
        assert entry.mode == 0o755 and entry.uid == 0 and entry.mtime == 0
        assert tar.getmember("bin/hi").issym()
        assert tar.getmember("usr/local").isdir()


def test_the_same_files_give_the_same_image_id(tmp_path: Path) -> None:
    binary = tmp_path / "b"
    binary.write_bytes(b"x")
    spec = ImageSpec("r/b:1", {"/b": binary})
    first = write_archive(spec, tmp_path / "1.tar")
    assert write_archive(spec, tmp_path / "2.tar") == first
    assert (tmp_path / "1.tar").read_bytes() == (tmp_path / "2.tar").read_bytes()
    binary.write_bytes(b"y")
    assert write_archive(spec, tmp_path / "3.tar") != first


def test_a_dynamic_binary_brings_its_libraries_and_loader() -> None:
    closure = library_closure([Path("/bin/ls")])
    assert any("libc.so" in name for name in closure)
    assert any("ld-linux" in name for name in closure)
    assert all(path.exists() for path in closure.values())


def test_the_mirror_is_served_on_the_gateway_and_stopped(tmp_path: Path) -> None:
    root = tmp_path / "mirror"
    (root / "debian").mkdir(parents=True)
    (root / "debian" / "Packages").write_text("Package: x\n")
    state = tmp_path / "state"
    state.mkdir()
    url = mirrorserve.start(root, "127.0.0.0/8", state)
    try:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{url}/debian/Packages", timeout=10) as resp:
            assert resp.read() == b"Package: x\n"
        assert mirrorserve.start(root, "127.0.0.0/8", state) == url  # kept, not restarted
    finally:
        assert mirrorserve.stop(state)
    assert not mirrorserve.stop(state)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/debian/Packages", timeout=5)


@pytest.mark.slow
def test_the_apt_repository_has_what_the_lab_image_lacks(tmp_path: Path) -> None:
    """Resolved against the lab image's own dpkg status: docker.io and its dependencies,
    none of what the guest has already, indexed for `deb [trusted=yes] URL ./`."""
    from lab import mirror

    debs = mirror.apt_repository(tmp_path / "debian", mirror.guest_dpkg_status(), 900)
    names = {d.split("_", 1)[0] for d in debs}
    assert {"docker.io", "containerd", "runc", "containernetworking-plugins",
            "apparmor", "python3-apt"} <= names
    assert "libc6" not in names and "systemd" not in names  # the image has them
    assert not any("%3a" in d for d in debs)
    index = (tmp_path / "debian" / "Packages").read_text()
    assert index.count("Package: ") == len(debs)
