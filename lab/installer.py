"""An installer ISO for Redfish virtual-media installs, built from Debian packages only.

What Ironic's and Metal3's ramdisks do, in the smallest form that works under TCG: the BMC
inserts an ISO, the node boots it once, the installer writes the OS image onto the node's
first disk and powers the node off; the orchestrator then ejects the media, boots from disk
and waits for SSH (the steps ``os.install`` expands to).

The ISO (:func:`build_installer_iso`) holds

* ``boot/grub/`` -- GRUB's El Torito image (``grub-mkimage -O i386-pc-eltorito``, package
  grub-pc-bin) and its modules; the serial console is ttyS0, so the boot shows in a
  console log. No xorriso or isolinux is needed: genisoimage makes the ISO.
* ``vmlinuz`` -- the host's Debian kernel (package linux-image-amd64);
* ``initrd.gz`` -- busybox-static, the storage modules that kernel needs to see an IDE or
  SATA CD and a virtio, SATA or SCSI disk (resolved through ``modules.dep``), and
  :data:`INIT`;
* ``image.map`` and ``image.raw`` -- the lab image (:func:`lab.image.build_image`) as raw
  1 MiB chunks: the map lists each run of chunks that are not all zeros
  (``FIRST COUNT`` in MiB), ``image.raw`` is those runs' bytes, back to back. A 10 GiB
  image with ~0.7 GiB of data is written without touching the zeros; ``image.info`` gives
  the image's full size. The payload is not compressed on purpose: under TCG on a busy
  host busybox's gunzip ran at ~1 MiB/s, while ``dd`` from the CD is bound by QEMU's own
  I/O.

The init finds the CD (``/dev/sr*``) and the target (the first non-removable ``vd*``, then
``sd*``), checks the target is at least the image's size, discards it (a qcow2 volume reads
zeros afterwards, so an earlier install leaves nothing behind), writes the runs with
``dd skip= seek=``, checks every run's block count, syncs and powers off. It
prints :data:`DONE_MARKER` before powering off; on any failure it prints
:data:`FAILED_MARKER` with the reason and stays up with a shell on the console (the
node never powers off, so ``wait-installer`` times out instead of booting a broken disk).

The ISO is cached by a content key (the image's key and size, the kernel, busybox, the
init and :data:`BUILD_VERSION`) under ``<cache>/images/``. :func:`serve` publishes it on
127.0.0.1 over HTTP for the Redfish emulator, which runs on the host and downloads it
into the libvirt pool. Run ``python -m lab.installer`` to build it (``--serve`` to also
serve it until interrupted).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.server
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.libvirt.probeguest import busybox_path, cpio_newc, host_kernel
from lab import cache_dir
from lab.image import (
    ImageBuildError,
    Progress,
    _content_key,
    _locked,
    _run,
    build_image,
)
from orchestrator.errors import OrchError

#: Bump when the build steps change in a way that changes the ISO.
BUILD_VERSION = "2"
CHUNK = 1 << 20
VOLUME_ID = "ORCH_INSTALL"
DONE_MARKER = "ORCH-INSTALL-DONE"
FAILED_MARKER = "ORCH-INSTALL-FAILED"
#: Storage drivers the installer loads, dependencies first (what SeaBIOS guests on QEMU's
#: pc and q35 machines present: IDE or AHCI CD, virtio/AHCI/virtio-scsi disk).
MODULES = ("virtio_pci", "virtio_blk", "virtio_scsi", "ata_piix", "ahci", "sr_mod",
           "sd_mod", "isofs")

INIT = r"""#!/bin/busybox sh
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /tmp /cdrom
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
say() { echo "orch-installer: $*" > /dev/console; }
fail() {
  echo "__FAILED__: $*" > /dev/console
  exec setsid cttyhack sh
}
say "loading storage drivers"
while read -r module; do
  insmod "/lib/modules/$module" 2>/dev/null
done < /modules.order
cdrom=""; disk=""; waited=0
while [ "$waited" -lt 60 ]; do
  for dev in /sys/block/sr*; do
    [ -e "$dev" ] && { cdrom="/dev/${dev##*/}"; break; }
  done
  disk=""
  for dev in /sys/block/vd* /sys/block/sd*; do
    [ -e "$dev" ] && [ "$(cat "$dev/removable")" = 0 ] && { disk="/dev/${dev##*/}"; break; }
  done
  [ -n "$cdrom" ] && [ -n "$disk" ] && [ -b "$cdrom" ] && [ -b "$disk" ] && break
  sleep 1; waited=$((waited + 1))
done
[ -n "$cdrom" ] || fail "no CD drive appeared in 60 s"
[ -n "$disk" ] || fail "no target disk (virtio, SATA or SCSI) appeared in 60 s"
mount -t iso9660 -o ro "$cdrom" /cdrom || fail "cannot mount $cdrom"
[ -f /cdrom/image.info ] && [ -f /cdrom/image.map ] && [ -f /cdrom/image.raw ] \
  || fail "$cdrom holds no image"
. /cdrom/image.info
sectors=$(cat "/sys/block/${disk##*/}/size")
[ "$((sectors / 2048))" -ge "$((IMAGE_BYTES / 1048576))" ] \
  || fail "$disk has $((sectors / 2048)) MiB, the image needs $((IMAGE_BYTES / 1048576)) MiB"
say "writing $DATA_MIB MiB of a $((IMAGE_BYTES / 1048576)) MiB image to $disk"
blkdiscard "$disk" 2>/dev/null || say "$disk does not discard: it must be blank"
start=$(date +%s); pos=0
while read -r first count; do
  dd if=/cdrom/image.raw of="$disk" bs=1048576 skip="$pos" seek="$first" count="$count" \
    conv=notrunc 2>/tmp/dd.log || fail "writing $disk at $first MiB failed: $(cat /tmp/dd.log)"
  grep -q "^$count+0 records out" /tmp/dd.log \
    || fail "short write at $first MiB: $(cat /tmp/dd.log)"
  pos=$((pos + count))
done < /cdrom/image.map
sync
say "wrote $DATA_MIB MiB in $(( $(date +%s) - start )) s"
umount /cdrom
echo "__DONE__ $disk" > /dev/console
poweroff -f
""".replace("__FAILED__", FAILED_MARKER).replace("__DONE__", DONE_MARKER)

GRUB_CFG = """\
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=0
set default=0
menuentry "orch installer" {
  linux /vmlinuz console=tty0 console=ttyS0,115200n8 quiet panic=10
  initrd /initrd.gz
}
"""
#: Modules in GRUB's El Torito core image: enough to read the ISO and load normal.mod.
GRUB_CORE_MODULES = ("biosdisk", "iso9660", "normal", "configfile", "linux", "serial",
                     "terminal", "echo", "test")
GRUB_DIR = Path("/usr/lib/grub/i386-pc")


@dataclass(frozen=True)
class InstallerIso:
    """A built installer ISO and what went into it."""

    path: Path
    key: str
    image: Path
    data_mib: int
    image_bytes: int


# -- the image payload -----------------------------------------------------------------------

def _data_runs(raw: Path) -> Iterator[tuple[int, int]]:
    """(first, count) runs of 1 MiB chunks of ``raw`` that are not all zeros.

    Holes are skipped with SEEK_DATA/SEEK_HOLE, so a 10 GiB sparse file reads only its data.
    """
    size = raw.stat().st_size
    run_first, run_count = -1, 0
    with open(raw, "rb") as fh:
        fd = fh.fileno()
        pos = 0
        while pos < size:
            try:
                data_at = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:  # ENXIO: no data past pos
                break
            hole_at = os.lseek(fd, data_at, os.SEEK_HOLE)
            first = data_at // CHUNK
            for chunk in range(first, (hole_at + CHUNK - 1) // CHUNK):
                fh.seek(chunk * CHUNK)
                if not fh.read(CHUNK).rstrip(b"\0"):  # all zeros
                    continue
                if run_count and chunk == run_first + run_count:
                    run_count += 1
                    continue
                if run_count:
                    yield run_first, run_count
                run_first, run_count = chunk, 1
            pos = max(hole_at, ((hole_at + CHUNK - 1) // CHUNK) * CHUNK)
    if run_count:
        yield run_first, run_count


def _write_payload(raw: Path, directory: Path) -> tuple[int, int]:
    """Write image.map, image.gz and image.info for ``raw``; return (data MiB, bytes)."""
    size = raw.stat().st_size
    if size % CHUNK:
        raise ImageBuildError(f"image size {size} is not a whole number of MiB")
    runs = list(_data_runs(raw))
    data_mib = sum(count for _first, count in runs)
    with open(raw, "rb") as src, open(directory / "image.raw", "wb") as out:
        for first, count in runs:
            src.seek(first * CHUNK)
            for _ in range(count):
                out.write(src.read(CHUNK))
    (directory / "image.map").write_text("".join(f"{f} {c}\n" for f, c in runs))
    (directory / "image.info").write_text(f"IMAGE_BYTES={size}\nDATA_MIB={data_mib}\n")
    return data_mib, size


# -- the initramfs ---------------------------------------------------------------------------

def _module_order(kernel: Path, names: tuple[str, ...]) -> list[str]:
    """Paths (relative to /lib/modules/VERSION) of ``names`` and their dependencies,
    dependencies first. Raises ImageBuildError when the kernel has no modules directory."""
    version = kernel.name.removeprefix("vmlinuz-")
    dep_file = Path("/lib/modules") / version / "modules.dep"
    if not dep_file.exists():
        raise ImageBuildError(f"no {dep_file} for kernel {version}",
                              hint="install the kernel's package (linux-image-amd64)")
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in dep_file.read_text().splitlines():
        module, _, rest = line.partition(":")
        deps[module] = rest.split()
        base = re.sub(r"\.ko(\.\w+)?$", "", module.rsplit("/", 1)[-1])
        by_name[base.replace("-", "_")] = module
    order: list[str] = []

    def visit(module: str) -> None:
        if module in order:
            return
        for dep in reversed(deps.get(module, [])):  # modules.dep lists the deepest last
            visit(dep)
        order.append(module)

    for name in names:
        if name not in by_name:
            continue  # built into this kernel
        visit(by_name[name])
    if any(m.endswith((".xz", ".zst", ".gz")) for m in order):
        raise ImageBuildError("the kernel's modules are compressed; busybox insmod cannot "
                              "load them")
    return order


def _initramfs(kernel: Path, busybox: bytes) -> bytes:
    version = kernel.name.removeprefix("vmlinuz-")
    modules = _module_order(kernel, MODULES)
    entries: list[tuple[str, int, bytes]] = [
        (d, 0o040755, b"") for d in ("bin", "dev", "proc", "sys", "tmp", "cdrom", "lib",
                                     "lib/modules")]
    made: set[str] = set()
    for module in modules:
        parts = module.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            sub = "lib/modules/" + "/".join(parts[:i])
            if sub not in made:
                made.add(sub)
                entries.append((sub, 0o040755, b""))
        entries.append((f"lib/modules/{module}", 0o100644,
                        (Path("/lib/modules") / version / module).read_bytes()))
    entries += [("bin/busybox", 0o100755, busybox),
                ("modules.order", 0o100644, "".join(m + "\n" for m in modules).encode()),
                ("init", 0o100755, INIT.encode())]
    return gzip.compress(cpio_newc(entries), compresslevel=6)


# -- the ISO ---------------------------------------------------------------------------------

def installer_key(image: Path) -> str:
    """The content key of the ISO that installs ``image`` with this host's kernel."""
    kernel = host_kernel()
    busybox = hashlib.sha256(busybox_path().read_bytes()).hexdigest()
    return _content_key(BUILD_VERSION, INIT, GRUB_CFG, ",".join(MODULES), busybox,
                        kernel.name, str(kernel.stat().st_size), image.name,
                        str(image.stat().st_size))


def iso_path(image: Path) -> Path:
    return cache_dir("images") / f"orch-installer-{installer_key(image)}.iso"


def build_installer_iso(image: Path | None = None, force: bool = False, *,
                        progress: Progress | None = None) -> InstallerIso:
    """Return the installer ISO for ``image`` (default: the lab image, built if missing),
    building it first if it is not cached.

    Needs qemu-img, grub-mkimage (grub-pc-bin), genisoimage, busybox-static and the host's
    Debian kernel with its modules. Raises :class:`ImageBuildError` naming the stage that
    failed; a failed build leaves nothing in the cache.
    """
    say = progress or (lambda _text: None)
    image = image or build_image(progress=say)
    key = installer_key(image)
    target = cache_dir("images") / f"orch-installer-{key}.iso"
    meta_path = target.with_suffix(".json")
    with _locked("installer-iso"):
        if target.exists() and meta_path.exists() and not force:
            meta = _read_meta(meta_path)
            return InstallerIso(target, key, image, meta["data_mib"], meta["image_bytes"])
        work = target.with_suffix(".work")
        shutil.rmtree(work, ignore_errors=True)
        (work / "iso" / "boot" / "grub").mkdir(parents=True)
        started = time.monotonic()
        try:
            iso = work / "iso"
            say(f"unpacking {image.name} to raw")
            raw = work / "disk.raw"
            _run(["qemu-img", "convert", "-O", "raw", str(image), str(raw)], timeout=900,
                 what="qemu-img convert to raw")
            say("packing the image's data chunks")
            data_mib, image_bytes = _write_payload(raw, iso)
            raw.unlink()
            say("making the initramfs")
            kernel = host_kernel()
            shutil.copyfile(kernel, iso / "vmlinuz")
            (iso / "initrd.gz").write_bytes(_initramfs(kernel, busybox_path().read_bytes()))
            _grub(iso / "boot" / "grub")
            say("making the ISO")
            tmp = work / "installer.iso"
            _run(["genisoimage", "-quiet", "-R", "-V", VOLUME_ID, "-o", str(tmp),
                  "-b", "boot/grub/eltorito.img", "-no-emul-boot", "-boot-load-size", "4",
                  "-boot-info-table", str(iso)], timeout=600, what="genisoimage")
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
            meta = {"key": key, "image": str(image), "kernel": kernel.name,
                    "data_mib": data_mib, "image_bytes": image_bytes,
                    "iso_bytes": target.stat().st_size,
                    "build_seconds": round(time.monotonic() - started, 1)}
            import json

            meta_path.write_text(json.dumps(meta, indent=2) + "\n")
            say(f"built {target} ({meta['iso_bytes'] >> 20} MiB, {data_mib} MiB of data) "
                f"in {meta['build_seconds']} s")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return InstallerIso(target, key, image, data_mib, image_bytes)


def _read_meta(path: Path) -> dict[str, Any]:
    import json

    meta: dict[str, Any] = json.loads(path.read_text())
    return meta


def _grub(boot_grub: Path) -> None:
    """GRUB's El Torito core image, its modules and a config that boots the installer."""
    if not (GRUB_DIR / "cdboot.img").exists():
        raise ImageBuildError(f"{GRUB_DIR} has no cdboot.img", hint="apt-get install grub-pc-bin")
    modules = boot_grub / "i386-pc"
    modules.mkdir()
    for item in GRUB_DIR.iterdir():
        if item.suffix in (".mod", ".lst"):
            shutil.copyfile(item, modules / item.name)
    core = boot_grub.parent.parent.parent / "core.img"
    _run(["grub-mkimage", "-O", "i386-pc-eltorito", "-p", "/boot/grub", "-o", str(core),
          *GRUB_CORE_MODULES], timeout=60, what="grub-mkimage")
    # grub-mkimage's i386-pc-eltorito output already starts with cdboot.img.
    shutil.move(str(core), boot_grub / "eltorito.img")
    (boot_grub / "grub.cfg").write_text(GRUB_CFG)


# -- serving it on loopback ------------------------------------------------------------------

class _OneFileHandler(http.server.BaseHTTPRequestHandler):
    """Serves exactly one file at ``/<its name>``; everything else is 404."""

    served: Path

    def do_HEAD(self) -> None:  # http.server names its handlers so
        self._respond(body=False)

    def do_GET(self) -> None:
        self._respond(body=True)

    def _respond(self, body: bool) -> None:
        if self.path.split("?", 1)[0] != f"/{self.served.name}":
            self.send_error(404)
            return
        size = self.served.stat().st_size
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if body:
            with open(self.served, "rb") as fh:
                shutil.copyfileobj(fh, self.wfile, length=CHUNK)

    def log_message(self, *_args: Any) -> None:
        pass


@contextmanager
def serve(path: Path, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``path`` over HTTP on ``host`` (loopback) for the block; yield its URL.

    ``port`` 0 picks a free port. The server thread is stopped and its socket closed when
    the block ends, whatever happens in it.
    """
    handler = type("Handler", (_OneFileHandler,), {"served": Path(path)})
    server = http.server.ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="installer-http",
                              daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}/{Path(path).name}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.installer",
                                     description="Build (or reuse) the installer ISO.")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("--serve", action="store_true",
                        help="serve it on 127.0.0.1 until interrupted")
    parser.add_argument("--port", type=int, default=0, help="port for --serve (0: any)")
    args = parser.parse_args(argv)

    def say(text: str) -> None:
        print(f"lab.installer: {text}", file=sys.stderr, flush=True)

    try:
        iso = build_installer_iso(force=args.force, progress=say)
    except OrchError as exc:
        say(exc.render())
        return 1
    print(iso.path)
    if args.serve:
        with serve(iso.path, port=args.port) as url:
            print(url, flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
