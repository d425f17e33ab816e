"""The L1 image variant: the lab image plus QEMU and libvirt, for nested labs (profile 76).

A guest on an isolated lab network cannot reach a Debian mirror, so L1's hypervisor cannot
be installed with apt inside the guest. This variant is built like :func:`lab.image.
build_image` -- debootstrap from the mirror apt uses, then the same configuration and disk
steps (reused from :mod:`lab.image`) -- with :data:`EXTRA_PACKAGES` included and the L2
initramfs guest placed under :data:`L2_DIR`. It is cached
under its own content key (``debian-12-l1-<key>.qcow2``), so it is built once per machine.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path

from drivers.libvirt.probeguest import build_initramfs_guest
from lab import cache_dir, image

#: What L1 needs beyond the lab image to run libvirt guests (driven over qemu+ssh).
#: Not libvirt-daemon-system: its polkitd dependency does not configure inside
#: debootstrap's chroot, so the daemon's unit and QEMU settings are written here instead.
EXTRA_PACKAGES = ("qemu-system-x86", "qemu-utils", "libvirt-daemon",
                  "libvirt-daemon-driver-qemu", "libvirt-clients", "netcat-openbsd")
L1_VERSION = "5"
#: Where the L2 guest (the libvirt driver's probe guest) is placed inside L1.
L2_DIR = "/var/lib/libvirt/images/l2"
_LIBVIRTD_UNIT = """\
[Unit]
Description=libvirt daemon (orch L1 image)
After=network.target

[Service]
Type=notify
ExecStart=/usr/sbin/libvirtd
Restart=on-failure

[Install]
WantedBy=multi-user.target
"""
#: QEMU runs as root (no libvirt-qemu user without libvirt-daemon-system); console logs
#: are written by QEMU itself, so virtlogd is not needed.
_QEMU_CONF = 'user = "root"\ngroup = "root"\nstdio_handler = "file"\n'


def l1_packages() -> tuple[str, ...]:
    return (*image.PACKAGES, *EXTRA_PACKAGES)


def l1_image_path(mirror: str | None = None) -> Path:
    mirror = mirror or image.debian_mirror()
    l2 = build_initramfs_guest()
    key = image._content_key(image.BUILD_VERSION, L1_VERSION, image.SUITE, mirror,
                             str(l2.initrd), *sorted(l1_packages()))
    return cache_dir("images") / f"debian-12-l1-{key}.qcow2"


def build_l1_image(force: bool = False, *, progress: image.Progress | None = None) -> Path:
    """Return the L1 qcow2 (lab image + QEMU + libvirt), building it if not cached.

    Needs root, debootstrap and the Debian mirror apt uses (about 5 minutes the first
    time). Raises :class:`lab.image.ImageBuildError` naming the stage that failed.
    """
    say = progress or (lambda _text: None)
    mirror = image.debian_mirror()
    target = l1_image_path(mirror)
    with image._locked("l1-image"):
        if target.exists() and not force:
            return target
        if os.geteuid() != 0:
            raise image.ImageBuildError("building the L1 image needs root")
        work = target.with_suffix(".work")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        started = time.monotonic()
        try:
            rootfs = work / "rootfs"
            say(f"debootstrap {image.SUITE} + {' '.join(EXTRA_PACKAGES)} from {mirror}")
            image._run(["debootstrap", "--variant=minbase",
                        f"--include={','.join(l1_packages())}", "--components=main",
                        image.SUITE, str(rootfs), mirror], timeout=2400, what="debootstrap")
            root_uuid = str(uuid.uuid4())
            kernel = image._configure(rootfs, mirror, root_uuid)
            _add_libvirtd(rootfs)
            _add_l2_guest(rootfs)
            raw = work / "disk.raw"
            image._make_disk(raw, rootfs, root_uuid)
            tmp = work / "disk.qcow2"
            image._run(["qemu-img", "convert", "-c", "-O", "qcow2", str(raw), str(tmp)],
                       timeout=900, what="qemu-img convert")
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
            meta = {"suite": image.SUITE, "mirror": mirror, "packages": sorted(l1_packages()),
                    "kernel": kernel, "build_seconds": round(time.monotonic() - started, 1),
                    "bytes": target.stat().st_size}
            target.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
            say(f"built {target} in {meta['build_seconds']} s")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def _add_l2_guest(rootfs: Path) -> None:
    """The L2 kernel + initramfs inside L1: the isolated lab network cannot fetch them."""
    l2 = build_initramfs_guest()
    target = rootfs / L2_DIR.lstrip("/")
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(l2.kernel, target / "vmlinuz")
    shutil.copyfile(l2.initrd, target / "initrd.gz")


def _add_libvirtd(rootfs: Path) -> None:
    (rootfs / "etc/systemd/system/libvirtd.service").write_text(_LIBVIRTD_UNIT)
    conf = rootfs / "etc/libvirt/qemu.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(_QEMU_CONF)
    # root over qemu+ssh only: no polkit in this image to ask
    (conf.parent / "libvirtd.conf").write_text('auth_unix_rw = "none"\n'
                                               'unix_sock_rw_perms = "0700"\n')
    for sub in ("lib/libvirt/images", "log/libvirt/qemu"):
        (rootfs / "var" / sub).mkdir(parents=True, exist_ok=True)
    # libvirtd looks the compiled-in QEMU user up before it reads qemu.conf
    image._run(["chroot", str(rootfs), "groupadd", "--system", "libvirt-qemu"],
               timeout=60, what="groupadd libvirt-qemu")
    image._run(["chroot", str(rootfs), "useradd", "--system", "--no-create-home",
                "--home-dir", "/var/lib/libvirt", "-g", "kvm", "-G", "libvirt-qemu",
                "-s", "/usr/sbin/nologin", "libvirt-qemu"], timeout=60, what="useradd")
    image._run(["chroot", str(rootfs), "systemctl", "enable", "libvirtd.service"],
               timeout=60, what="enable libvirtd")


if __name__ == "__main__":
    import sys

    print(build_l1_image("--force" in sys.argv,
                         progress=lambda t: print(f"lab.l1image: {t}", file=sys.stderr)))
