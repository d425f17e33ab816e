"""The lab image made bootable by Nova: the lab qcow2 (lab/image.py) plus one oneshot unit
that installs root's authorized SSH keys from what Nova hands a server -- its config drive
(``openstack/latest/meta_data.json``, ``public_keys``) or, where a cloud has none, the
metadata service at 169.254.169.254. The lab image itself takes its key from an SMBIOS OEM
string, which Nova cannot set.

The unit is written into the image's ext4 partition with ``debugfs`` (no loop or nbd device
needed), on a raw copy that is converted back to qcow2. The result is cached beside the lab
image under a content key (the lab image's key, this module's version and the files added),
so only the first run pays (~10-20 s).
"""

from __future__ import annotations

import fcntl
import hashlib
import subprocess
import tempfile
from pathlib import Path

from lab import cache_dir
from lab.image import PART_START_SECTOR, build_image, image_path

VERSION = "2"

KEYS_SCRIPT = """\
#!/usr/bin/python3
# orch test harness: root's authorized keys from Nova's config drive or metadata service
import glob, json, os, subprocess, time, urllib.request

def from_config_drive():
    for _ in range(30):
        found = glob.glob("/dev/disk/by-label/config-2") or glob.glob("/dev/disk/by-label/CONFIG-2")
        if found:
            os.makedirs("/run/orch-config-drive", exist_ok=True)
            subprocess.run(["mount", "-o", "ro", found[0], "/run/orch-config-drive"], check=True)
            try:
                with open("/run/orch-config-drive/openstack/latest/meta_data.json") as fh:
                    return json.load(fh)
            finally:
                subprocess.run(["umount", "/run/orch-config-drive"], check=False)
        time.sleep(1)
    return None

def from_metadata_service():
    for _ in range(30):
        try:
            url = "http://169.254.169.254/openstack/latest/meta_data.json"
            with urllib.request.urlopen(url, timeout=5) as reply:
                return json.load(reply)
        except OSError:
            time.sleep(2)
    return None

meta = from_config_drive() or from_metadata_service() or {}
keys = [k.strip() for k in (meta.get("public_keys") or {}).values() if k.strip()]
if keys:
    os.makedirs("/root/.ssh", mode=0o700, exist_ok=True)
    tmp = "/root/.ssh/authorized_keys.openstack"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
        fh.write("\\n".join(keys) + "\\n")
    os.replace(tmp, "/root/.ssh/authorized_keys")
print(f"orch-openstack-keys: {len(keys)} key(s) from {'uuid' in meta and 'nova' or 'nowhere'}")
"""

KEYS_UNIT = """\
[Unit]
Description=Install root's authorized SSH keys from Nova's config drive or metadata service
After=orch-authorized-keys.service systemd-udev-settle.service network-online.target
Wants=network-online.target
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/orch-openstack-keys
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
"""

UNIT = "/etc/systemd/system/orch-openstack-keys.service"


def _key() -> str:
    text = "\n".join((VERSION, image_path().name, KEYS_SCRIPT, KEYS_UNIT))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def path() -> Path:
    return cache_dir("images") / f"debian-12-lab-openstack-{_key()}.qcow2"


def _run(argv: list[str], timeout: float = 300) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode or "error" in done.stderr.lower():
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()[-800:]}")


def build() -> Path:
    """The Nova-ready lab image, built from the (cached) lab image if not cached itself."""
    out = path()
    with open(cache_dir("images") / "lab-openstack.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if out.exists():
            return out
        base = build_image()
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            work = Path(tmp)
            raw = work / "disk.raw"
            _run(["qemu-img", "convert", "-O", "raw", str(base), str(raw)])
            script, unit = work / "keys", work / "keys.service"
            script.write_text(KEYS_SCRIPT)
            script.chmod(0o755)
            unit.write_text(KEYS_UNIT)
            unit.chmod(0o644)
            commands = work / "debugfs.cmd"
            commands.write_text("\n".join((
                f"write {script} /usr/local/sbin/orch-openstack-keys",
                f"write {unit} {UNIT}",
                "cd /etc/systemd/system/multi-user.target.wants",
                f"symlink orch-openstack-keys.service {UNIT}", "")))
            _run(["debugfs", "-w", "-f", str(commands),
                  f"{raw}?offset={PART_START_SECTOR * 512}"])
            _check(raw)
            partial = work / "out.qcow2"
            _run(["qemu-img", "convert", "-c", "-O", "qcow2", str(raw), str(partial)])
            partial.rename(out)
    return out


def _check(raw: Path) -> None:
    """The files are there, with their modes (debugfs reports errors only on stderr)."""
    done = subprocess.run(["debugfs", "-R", "stat /usr/local/sbin/orch-openstack-keys",
                           f"{raw}?offset={PART_START_SECTOR * 512}"],
                          capture_output=True, text=True, timeout=60, check=False)
    if "Mode:  0755" not in done.stdout:
        raise RuntimeError(f"debugfs did not write the key script: {done.stdout[:400]}")
