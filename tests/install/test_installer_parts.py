"""The installer ISO's parts, without booting anything: the image payload, the modules the
initramfs loads, the ISO's layout, and the loopback server the BMC downloads it from."""

from __future__ import annotations

import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from drivers.libvirt.probeguest import host_kernel
from lab import installer
from lab.image import ImageBuildError

MIB = 1 << 20


def _sparse(path: Path, size_mib: int, data: dict[int, bytes]) -> Path:
    """A sparse file of ``size_mib`` MiB with ``data`` written at MiB offsets."""
    with open(path, "wb") as fh:
        fh.truncate(size_mib * MIB)
        for mib, chunk in data.items():
            fh.seek(mib * MIB)
            fh.write(chunk)
    return path


def test_payload_keeps_only_nonzero_runs_and_rebuilds_the_image(tmp_path: Path) -> None:
    raw = _sparse(tmp_path / "disk.raw", 64, {
        0: b"\xeb\x63" + b"x" * 510,            # boot sector
        1: os.urandom(2 * MIB),                 # a run of two chunks
        10: bytes(MIB),                         # written, but all zeros: must be skipped
        40: b"tail" + bytes(100) + b"end",      # a lone chunk, partly zero
    })
    out = tmp_path / "iso"
    out.mkdir()
    data_mib, size = installer._write_payload(raw, out)
    runs = [tuple(map(int, line.split())) for line in (out / "image.map").read_text().split("\n")
            if line]
    assert runs == [(0, 3), (40, 1)]
    assert data_mib == 4 and size == 64 * MIB
    assert (out / "image.raw").stat().st_size == 4 * MIB
    assert "IMAGE_BYTES=67108864" in (out / "image.info").read_text()
    # Writing the runs back where the map says gives the original bytes.
    rebuilt = tmp_path / "rebuilt.raw"
    with open(rebuilt, "wb") as dst, open(out / "image.raw", "rb") as src:
        dst.truncate(size)
        for first, count in runs:
            dst.seek(first * MIB)
            dst.write(src.read(count * MIB))
    assert rebuilt.read_bytes() == raw.read_bytes()


def test_payload_refuses_an_image_that_is_not_whole_mib(tmp_path: Path) -> None:
    raw = tmp_path / "odd.raw"
    raw.write_bytes(b"x" * 1000)
    with pytest.raises(ImageBuildError, match="whole number of MiB"):
        installer._write_payload(raw, tmp_path)


def test_modules_are_loaded_after_their_dependencies() -> None:
    kernel = host_kernel()
    order = installer._module_order(kernel, installer.MODULES)
    names = [m.rsplit("/", 1)[-1].removesuffix(".ko") for m in order]
    for module, needs in (("sr_mod", "cdrom"), ("sr_mod", "scsi_mod"),
                          ("ata_piix", "libata"), ("virtio_blk", "virtio_ring"),
                          ("isofs", "cdrom")):
        if module in names and needs in names:
            assert names.index(needs) < names.index(module), f"{needs} after {module}"
    assert "isofs" in names and "virtio_blk" in names
    assert len(names) == len(set(names))


@pytest.mark.slow
def test_iso_holds_grub_kernel_initrd_and_image(installer_iso: Any) -> None:
    listing = subprocess.run(["isoinfo", "-R", "-f", "-i", str(installer_iso.path)],
                             capture_output=True, text=True, timeout=60, check=True).stdout
    for name in ("/boot/grub/eltorito.img", "/boot/grub/grub.cfg",
                 "/boot/grub/i386-pc/normal.mod", "/vmlinuz", "/initrd.gz", "/image.map",
                 "/image.raw", "/image.info"):
        assert name in listing.split(), f"{name} missing from the ISO"
    boot = subprocess.run(["isoinfo", "-d", "-i", str(installer_iso.path)],
                          capture_output=True, text=True, timeout=60, check=True).stdout
    assert "El Torito" in boot and installer.VOLUME_ID in boot


def test_serve_publishes_one_file_on_loopback_and_stops(tmp_path: Path) -> None:
    iso = tmp_path / "x.iso"
    iso.write_bytes(os.urandom(3 * MIB + 17))
    (tmp_path / "secret").write_text("not served")
    with installer.serve(iso) as url:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/x.iso")
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.headers["Content-Length"] == str(iso.stat().st_size)
            assert resp.read() == iso.read_bytes()
        for other in ("/secret", "/", "/../secret"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(url.rsplit("/", 1)[0] + other, timeout=10)
            assert err.value.code == 404
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=5)
