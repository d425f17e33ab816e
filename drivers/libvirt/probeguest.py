"""The probe guest: the host's Debian kernel with a busybox-static initramfs.

Its init prints :data:`PROBE_MARKER` on ttyS0 and powers off (or, with ``orch.hold`` on the
kernel command line, keeps a shell on the console). It is what the accelerator probe
(:mod:`drivers.libvirt.accel`) boots to tell whether KVM really runs a standard guest, and a
tiny nested (L2) guest for the lab. Built in a second from what the host has (packages
``linux-image-amd64`` and ``busybox-static``), cached under ``<cache>/images/`` by content
key.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from orchestrator.cachedir import cache_dir
from orchestrator.errors import OrchError

PROBE_MARKER = "ORCH-PROBE-OK"
#: Bump when the initramfs changes.
BUILD_VERSION = "1"


class ProbeGuestError(OrchError):
    template = "probe guest: {message}"


@dataclass(frozen=True)
class KernelGuest:
    """A kernel and initramfs pair that boots to :data:`PROBE_MARKER` on ttyS0."""

    kernel: Path
    initrd: Path
    marker: str = PROBE_MARKER


_INIT = """\
#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /tmp
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "{marker} $(uname -r)" > /dev/console
if grep -q orch.hold /proc/cmdline; then
  exec setsid cttyhack sh
fi
poweroff -f
"""


def cpio_newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A ``newc`` cpio archive of (name, mode, data) entries (directories: empty data)."""
    out = io.BytesIO()

    def put(name: str, mode: int, data: bytes, ino: int) -> None:
        encoded = name.encode() + b"\0"
        nlink = 2 if mode & 0o040000 else 1
        fields = [ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(encoded), 0]
        out.write(b"070701" + b"".join(f"{f:08x}".encode() for f in fields))
        out.write(encoded)
        out.write(b"\0" * (-out.tell() % 4))
        out.write(data)
        out.write(b"\0" * (-out.tell() % 4))

    for ino, (name, mode, data) in enumerate(entries, start=1):
        put(name, mode, data, ino)
    put("TRAILER!!!", 0, b"", 0)
    return out.getvalue()


def host_kernel() -> Path:
    """The newest Debian kernel in ``/boot`` (package linux-image-amd64 on the host).

    Raises :class:`ProbeGuestError` when there is none.
    """
    kernels = sorted(Path("/boot").glob("vmlinuz-*"))
    if not kernels:
        raise ProbeGuestError("no kernel in /boot", hint="apt-get install linux-image-amd64")
    return kernels[-1]


def busybox_path() -> Path:
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        path = Path(candidate)
        if path.exists():
            return path
    raise ProbeGuestError("busybox is not installed", hint="apt-get install busybox-static")


def build_initramfs_guest(force: bool = False) -> KernelGuest:
    """Return the kernel + initramfs guest, building the initramfs if it is not cached.

    The kernel is the host's Debian kernel; the initramfs holds busybox-static and an init
    that prints :data:`PROBE_MARKER` to the console, then powers off (unless ``orch.hold``
    is on the kernel command line). Raises :class:`ProbeGuestError`.
    """
    kernel_src, busybox = host_kernel(), busybox_path()
    bb = busybox.read_bytes()
    parts = (BUILD_VERSION, _INIT, hashlib.sha256(bb).hexdigest(), kernel_src.name,
             str(kernel_src.stat().st_size))
    key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]
    directory = cache_dir("images", f"initramfs-guest-{key}")
    kernel, initrd = directory / "vmlinuz", directory / "initrd.gz"
    with open(cache_dir("images") / "initramfs-guest.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time
        if force or not (kernel.exists() and initrd.exists()):
            entries = [("bin", 0o040755, b""), ("dev", 0o040755, b""),
                       ("proc", 0o040755, b""), ("sys", 0o040755, b""),
                       ("bin/busybox", 0o100755, bb),
                       ("init", 0o100755, _INIT.format(marker=PROBE_MARKER).encode())]
            tmp = initrd.with_suffix(".tmp")
            tmp.write_bytes(gzip.compress(cpio_newc(entries), compresslevel=6))
            ktmp = kernel.with_suffix(".tmp")
            shutil.copyfile(kernel_src, ktmp)
            for p in (tmp, ktmp):
                os.chmod(p, 0o644)
            os.replace(ktmp, kernel)
            os.replace(tmp, initrd)
    return KernelGuest(kernel, initrd)


