"""Lab guest images built from Debian packages only, cached by what they are made of.

Two artefacts, both under ``<cache>/images/`` (see :func:`lab.cache_dir`):

* :func:`build_image` -- a bootable Debian qcow2 (systemd, sshd, python3 for Ansible, the
  Debian kernel, GRUB on an MBR disk). debootstrap makes the root tree; the disk is made
  without loop devices (this kernel has no MBR partition support for them): ``sfdisk``
  writes the partition table, ``mke2fs -d`` fills the file system at the partition's
  offset, and GRUB's ``boot.img``/``core.img`` are written with ``dd`` (the partition table
  is preserved). Every clone is its own machine: ``/etc/machine-id`` is empty, the image
  ships without SSH host keys (a oneshot unit makes them on first boot), networkd asks DHCP
  with ``ClientIdentifier=mac``, the hostname comes from DHCP, and root's authorized key
  comes from the systemd credential ``ssh.authorized_keys.root`` (the libvirt driver passes
  it as an SMBIOS OEM string, read by a oneshot unit on every boot). The serial console is
  ttyS0, so boot shows in a console log.
* :func:`build_initramfs_guest` -- the libvirt driver's probe guest
  (:mod:`drivers.libvirt.probeguest`), re-exported here: the lab uses it as a tiny nested
  (L2) guest.

:func:`lab_keypair` makes the lab's ed25519 SSH key pair under ``<cache>/lab/``.

Each artefact is named by a content key -- a hash of the package list, the Debian mirror
and suite, and :data:`BUILD_VERSION` -- so a change to any of them builds a new one and an
unchanged one is reused. Builds take an exclusive lock, so CI and tests never build twice.
Run ``python -m lab.image`` to build both (``--force`` to rebuild).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from drivers.libvirt.probeguest import build_initramfs_guest
from lab import cache_dir
from orchestrator.errors import OrchError

#: Bump when the build steps change in a way that changes the image.
BUILD_VERSION = "7"
SUITE = "bookworm"
#: What the guest is made of, beyond debootstrap's minbase.
PACKAGES = (
    "systemd", "systemd-sysv", "udev", "dbus", "openssh-server", "linux-image-amd64",
    "grub-pc-bin", "python3", "iproute2", "procps", "less", "sudo", "ca-certificates",
)
DISK_GIB = 10
#: First sector of the root partition (1 MiB): GRUB's core.img lives in the gap before it.
PART_START_SECTOR = 2048
FALLBACK_MIRROR = "http://deb.debian.org/debian"

Progress = Callable[[str], None]


class ImageBuildError(OrchError):
    template = "image build: {message}"


# -- helpers ---------------------------------------------------------------------------------

def _run(cmd: list[str], *, timeout: float, what: str,
         error: type[OrchError] = ImageBuildError, **kw: object) -> str:
    """Run ``cmd``; raise ``error`` (:class:`ImageBuildError`) naming ``what`` on failure or
    timeout."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              check=False, **kw)  # type: ignore[call-overload]
    except subprocess.TimeoutExpired:
        raise error(f"{what} did not finish in {timeout:.0f} s") from None
    except FileNotFoundError:
        raise error(f"{what}: {cmd[0]} is not installed",
                    hint="install the packages in .ci/apt-packages.txt") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise error(f"{what} failed (exit {proc.returncode}): {tail}")
    return str(proc.stdout)


@contextmanager
def _locked(name: str) -> Iterator[None]:
    """Hold an exclusive lock on ``<cache>/images/<name>.lock`` (one builder at a time)."""
    with open(cache_dir("images") / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def debian_mirror(sources: Path = Path("/etc/apt")) -> str:
    """The Debian mirror apt uses on this machine for :data:`SUITE` (``main``).

    Reads ``sources.list`` (one-line format) and ``sources.list.d/*.sources`` (deb822);
    falls back to :data:`FALLBACK_MIRROR` when none names the suite.
    """
    candidates: list[tuple[str, list[str], list[str]]] = []
    files = [sources / "sources.list", *sorted((sources / "sources.list.d").glob("*"))]
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line:
                        continue
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
                if fields.get("enabled", "yes") == "no" or "deb" not in fields.get(
                        "types", "").split():
                    continue
                for uri in fields.get("uris", "").split():
                    candidates.append((uri, fields.get("suites", "").split(),
                                       fields.get("components", "").split()))
        else:
            for line in text.splitlines():
                words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
                if len(words) >= 4 and words[0] == "deb":
                    candidates.append((words[1], [words[2]], words[3:]))
    for uri, suites, components in candidates:
        if SUITE in suites and "main" in components:
            return uri.rstrip("/")
    return FALLBACK_MIRROR


def _content_key(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def image_key(mirror: str | None = None) -> str:
    """The content key of the lab image: packages, suite, mirror and build version."""
    return _content_key(BUILD_VERSION, SUITE, mirror or debian_mirror(), *sorted(PACKAGES))


def image_path(mirror: str | None = None) -> Path:
    """Where the lab image for the current key lives (whether or not it is built)."""
    return cache_dir("images") / f"debian-12-lab-{image_key(mirror)}.qcow2"


# -- SSH key pair ----------------------------------------------------------------------------

def lab_keypair() -> tuple[Path, str]:
    """The lab's ed25519 key pair, made once: (private key path, public key line).

    Raises :class:`ImageBuildError` if ``ssh-keygen`` is missing or fails.
    """
    directory = cache_dir("lab")
    os.chmod(directory, 0o700)
    private = directory / "id_ed25519"
    with _locked("keypair"):
        if not private.exists():
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "orch-lab",
                  "-f", str(private)], timeout=30, what="ssh-keygen")
    return private, (directory / "id_ed25519.pub").read_text().strip()


# -- the lab image ---------------------------------------------------------------------------

def build_image(force: bool = False, *, progress: Progress | None = None) -> Path:
    """Return the path of the lab qcow2 image, building it first if it is not cached.

    Needs root, debootstrap, sfdisk, mke2fs and qemu-img, and network access to the Debian
    mirror apt uses. ``force`` rebuilds even if cached. ``progress`` receives one line per
    stage. Raises :class:`ImageBuildError` naming the stage that failed; a failed build
    leaves nothing in the cache.
    """
    say = progress or (lambda _text: None)
    mirror = debian_mirror()
    target = image_path(mirror)
    with _locked("lab-image"):
        if target.exists() and not force:
            return target
        if os.geteuid() != 0:
            raise ImageBuildError("building the lab image needs root (debootstrap, chroot)")
        work = target.with_suffix(".work")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        started = time.monotonic()
        try:
            base = _debootstrap(mirror, say)
            t_boot = time.monotonic() - started
            rootfs = work / "rootfs"
            _run(["cp", "-a", str(base), str(rootfs)], timeout=600, what="copy root tree")
            say("configuring the guest")
            root_uuid = str(uuid.uuid4())
            kernel = _configure(rootfs, mirror, root_uuid)
            say("making the disk")
            raw = work / "disk.raw"
            _make_disk(raw, rootfs, root_uuid)
            tmp = work / "disk.qcow2"
            _run(["qemu-img", "convert", "-c", "-O", "qcow2", str(raw), str(tmp)],
                 timeout=600, what="qemu-img convert")
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
            meta = {"key": image_key(mirror), "suite": SUITE, "mirror": mirror,
                    "packages": sorted(PACKAGES), "kernel": kernel, "root_uuid": root_uuid,
                    "debootstrap_seconds": round(t_boot, 1),
                    "build_seconds": round(time.monotonic() - started, 1),
                    "bytes": target.stat().st_size}
            target.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
            say(f"built {target} in {meta['build_seconds']} s")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def _debootstrap(mirror: str, say: Progress) -> Path:
    """The pristine debootstrap tree for the package list, made once and kept.

    Keeping it makes a change to the configuration steps (a new :data:`BUILD_VERSION`)
    cost a disk build, not a new download.
    """
    key = _content_key(SUITE, mirror, *sorted(PACKAGES))
    tree = cache_dir("images") / f"rootfs-{key}"
    done = tree.with_suffix(".done")
    if done.exists() and tree.is_dir():
        return tree
    shutil.rmtree(tree, ignore_errors=True)
    say(f"debootstrap {SUITE} from {mirror}")
    _run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
          "--components=main", SUITE, str(tree), mirror],
         timeout=1800, what="debootstrap")
    done.write_text(mirror + "\n")
    return tree


_NETWORK = """\
[Match]
Name=en* eth*

[Network]
DHCP=yes

[DHCPv4]
# Every clone has the same (empty) machine-id at first: identify by MAC, not by DUID.
ClientIdentifier=mac
UseHostname=yes
"""

_HOSTKEYS_UNIT = """\
[Unit]
Description=Generate this clone's SSH host keys (the image ships without any)
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
# No RSA key: making one took ~45 s under TCG and sshd is configured for these two only.
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key
ExecStart=/usr/bin/ssh-keygen -q -t ecdsa -N "" -f /etc/ssh/ssh_host_ecdsa_key

[Install]
WantedBy=multi-user.target ssh.service
"""

# The libvirt driver passes root's authorized keys as SMBIOS type 11 OEM strings
# "io.systemd.credential:ssh.authorized_keys.root=KEY" (systemd's credential convention).
# Read them from the DMI table ourselves: Debian 12's systemd 252 does not yet hand system
# credentials to tmpfiles, and this works on every boot, so a key can be changed by
# redefining the domain.
_KEYS_SCRIPT = """\
#!/usr/bin/python3
import os
PREFIX = b"io.systemd.credential:ssh.authorized_keys.root="
data = open("/sys/firmware/dmi/tables/DMI", "rb").read()
keys, i = [], 0
while i + 4 <= len(data):
    kind, length = data[i], data[i + 1]
    end = data.find(b"\\0\\0", i + length)
    if end < 0:
        break
    if kind == 11:
        for text in data[i + length:end].split(b"\\0"):
            if text.startswith(PREFIX):
                keys.extend(k for k in text[len(PREFIX):].split(b"\\n") if k.strip())
    if kind == 127:
        break
    i = end + 2
if keys:
    os.makedirs("/root/.ssh", mode=0o700, exist_ok=True)
    tmp = "/root/.ssh/authorized_keys.orch"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as fh:
        fh.write(b"\\n".join(keys) + b"\\n")
    os.replace(tmp, "/root/.ssh/authorized_keys")
"""

_KEYS_UNIT = """\
[Unit]
Description=Install root's authorized SSH keys from the SMBIOS credential
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/orch-authorized-keys

[Install]
WantedBy=multi-user.target ssh.service
"""

_GRUB_CFG = """\
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=0
set default=0
menuentry "Debian (orch lab)" {{
  linux /boot/vmlinuz-{kernel} root=UUID={uuid} ro console=tty0 console=ttyS0,115200n8 \
net.ifnames=1
  initrd /boot/initrd.img-{kernel}
}}
"""


def _configure(rootfs: Path, mirror: str, root_uuid: str) -> str:
    """Turn the debootstrap tree into a clonable lab guest; return the kernel version."""
    kernels = sorted(p.name.removeprefix("vmlinuz-") for p in (rootfs / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise ImageBuildError("debootstrap installed no kernel")
    kernel = kernels[-1]
    etc = rootfs / "etc"
    (etc / "fstab").write_text(f"UUID={root_uuid} / ext4 defaults,errors=remount-ro 0 1\n")
    (etc / "apt" / "sources.list").write_text(f"deb {mirror} {SUITE} main\n")
    (etc / "machine-id").write_text("")
    (rootfs / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    (etc / "hostname").unlink(missing_ok=True)
    (etc / "hosts").write_text("127.0.0.1 localhost\n::1 localhost ip6-localhost\n")
    (etc / "systemd/network/10-dhcp.network").write_text(_NETWORK)
    (etc / "systemd/system/orch-ssh-hostkeys.service").write_text(_HOSTKEYS_UNIT)
    (etc / "systemd/system/orch-authorized-keys.service").write_text(_KEYS_UNIT)
    script = rootfs / "usr/local/sbin/orch-authorized-keys"
    script.write_text(_KEYS_SCRIPT)
    script.chmod(0o755)
    for key in (etc / "ssh").glob("ssh_host_*"):
        key.unlink()
    (etc / "ssh/sshd_config.d").mkdir(exist_ok=True)
    (etc / "ssh/sshd_config.d/orch.conf").write_text(
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n"
        "HostKey /etc/ssh/ssh_host_ed25519_key\nHostKey /etc/ssh/ssh_host_ecdsa_key\n")
    _run(["chroot", str(rootfs), "systemctl", "enable", "systemd-networkd.service",
          "orch-ssh-hostkeys.service", "orch-authorized-keys.service",
          "serial-getty@ttyS0.service"],
         timeout=60, what="systemctl enable")
    _run(["chroot", str(rootfs), "passwd", "--lock", "root"], timeout=30, what="passwd")
    grub = rootfs / "boot/grub"
    grub.mkdir(parents=True, exist_ok=True)
    shutil.copytree(rootfs / "usr/lib/grub/i386-pc", grub / "i386-pc", dirs_exist_ok=True)
    (grub / "grub.cfg").write_text(_GRUB_CFG.format(kernel=kernel, uuid=root_uuid))
    _run(["chroot", str(rootfs), "grub-mkimage", "-O", "i386-pc", "-o", "/boot/grub/core.img",
          "-p", "(hd0,msdos1)/boot/grub", "biosdisk", "part_msdos", "ext2", "normal", "linux",
          "serial", "terminal", "configfile", "echo", "test", "gzio", "search"],
         timeout=60, what="grub-mkimage")
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for p in (rootfs / junk).glob("*"):
            if p.is_file():
                p.unlink()
    for p in (rootfs / "var/cache/apt").glob("*.bin"):
        p.unlink()
    return kernel


def _make_disk(raw: Path, rootfs: Path, root_uuid: str) -> None:
    """Write an MBR disk with one ext4 partition filled from ``rootfs`` and GRUB on it."""
    size = DISK_GIB << 30
    with open(raw, "wb") as fh:
        fh.truncate(size)
    _run(["sfdisk", "--no-reread", "--no-tell-kernel", str(raw)], timeout=60, what="sfdisk",
         input=f"label: dos\nstart={PART_START_SECTOR}, type=83, bootable\n")
    part_bytes = size - PART_START_SECTOR * 512
    _run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(rootfs), "-U", root_uuid,
          "-L", "orch-root", "-E", f"offset={PART_START_SECTOR * 512}",
          str(raw), f"{part_bytes // 1024}k"], timeout=900, what="mke2fs -d")
    core = (rootfs / "boot/grub/core.img").read_bytes()
    if len(core) > (PART_START_SECTOR - 1) * 512:
        raise ImageBuildError(f"GRUB core.img ({len(core)} bytes) does not fit before "
                              "the partition")
    boot = (rootfs / "usr/lib/grub/i386-pc/boot.img").read_bytes()
    with open(raw, "r+b") as fh:
        fh.seek(0)
        fh.write(boot[:440])  # boot code only: keep disk signature and partition table
        fh.seek(512)
        fh.write(core)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.image",
                                     description="Build (or reuse) the lab guest images.")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("--only", choices=("image", "initramfs", "keypair"),
                        help="build one artefact only")
    args = parser.parse_args(argv)

    def say(text: str) -> None:
        print(f"lab.image: {text}", file=sys.stderr, flush=True)

    try:
        if args.only in (None, "keypair"):
            print(lab_keypair()[0])
        if args.only in (None, "initramfs"):
            guest = build_initramfs_guest(args.force)
            print(guest.kernel)
            print(guest.initrd)
        if args.only in (None, "image"):
            print(build_image(args.force, progress=say))
    except OrchError as exc:
        say(exc.render())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
