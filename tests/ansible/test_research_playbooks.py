"""The research playbooks (profiles 82-86), run by Ansible itself on this machine
(connection local, files under tmp_path): multiboot-pxe.yml writes the iPXE script and copies
the images it boots, from a list or from a GRUB-legacy menu.lst, and refuses a menu.lst
with no kernel; jailhouse-kernel.yml escapes memmap's `$` so that GRUB keeps it; the
xen-guest.yml template gives PV/PVH guests pygrub, HVM guests none, unikernels no disk."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"

# every test runs ansible-playbook (about 10 s each)
pytestmark = pytest.mark.slow


def _need_ansible() -> None:
    if not shutil.which("ansible-playbook"):
        if os.environ.get("CI") == "true":
            pytest.fail("ansible-playbook is not installed")
        pytest.skip("ansible-playbook is not installed")


def _play(tmp_path: Path, book: Path, extra: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    _need_ansible()
    (tmp_path / "extra.yml").write_text(yaml.safe_dump({**extra, "ansible_become": False}))
    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"build": {
        "ansible_host": "127.0.0.1", "ansible_connection": "local"}}}}))
    return subprocess.run(
        ["ansible-playbook", "-i", str(inv), str(book), "-e", f"@{tmp_path / 'extra.yml'}"],
        capture_output=True, text=True, timeout=180,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
             "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp")})


def _files(root: Path, names: list[str]) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"image {name}\n")


def test_multiboot_pxe_boots_the_kernel_and_its_modules_in_order(tmp_path: Path) -> None:
    src = tmp_path / "images"
    _files(src, ["kernel-x86_64-pc99", "capdl-loader-image-x86_64-pc99"])
    tftp = tmp_path / "tftp"
    result = _play(tmp_path, PLAYBOOKS / "research" / "multiboot-pxe.yml", {
        "tftp_root": str(tftp), "mb_name": "sel4", "http_base": "http://192.0.2.1",
        "mb_kernel": str(src / "kernel-x86_64-pc99"),
        "mb_kernel_args": "console_port=0x3f8 debug_port=0x3f8",
        "mb_modules": [{"src": str(src / "capdl-loader-image-x86_64-pc99")}]})
    assert result.returncode == 0, result.stdout[-3000:]
    lines = [ln for ln in (tftp / "boot.ipxe").read_text().splitlines()
             if ln and not ln.startswith("#")]
    assert lines == [
        "kernel --name kernel-x86_64-pc99 http://192.0.2.1/sel4/kernel-x86_64-pc99"
        " console_port=0x3f8 debug_port=0x3f8",
        "module --name capdl-loader-image-x86_64-pc99"
        " http://192.0.2.1/sel4/capdl-loader-image-x86_64-pc99",
        "boot"]
    assert (tftp / "boot.ipxe").read_text().startswith("#!ipxe\n")
    assert (tftp / "sel4" / "capdl-loader-image-x86_64-pc99").read_text() == \
        "image capdl-loader-image-x86_64-pc99\n"


MENU = """timeout 0
title   Barrelfish
root    (nd)
kernel  /x86_64/sbin/elver loglevel=3
module  /x86_64/sbin/cpu loglevel=3
module  /x86_64/sbin/init
# Domains spawned by init
module  /x86_64/sbin/monitor
modulenounzip /eclipseclp_ramfs.cpio.gz nospawn
mmap map 0x0 0x1000 1
"""


def test_multiboot_pxe_follows_a_menu_lst(tmp_path: Path) -> None:
    build = tmp_path / "build"
    _files(build, ["x86_64/sbin/elver", "x86_64/sbin/cpu", "x86_64/sbin/init",
                   "x86_64/sbin/monitor", "eclipseclp_ramfs.cpio.gz"])
    (tmp_path / "menu.lst").write_text(MENU)
    tftp = tmp_path / "tftp"
    result = _play(tmp_path, PLAYBOOKS / "research" / "multiboot-pxe.yml", {
        "tftp_root": str(tftp), "mb_name": "barrelfish", "http_base": "http://192.0.2.1",
        "mb_menu_lst": str(tmp_path / "menu.lst"), "mb_src_root": str(build)})
    assert result.returncode == 0, result.stdout[-3000:]
    lines = [ln.split() for ln in (tftp / "boot.ipxe").read_text().splitlines()
             if ln and not ln.startswith("#")]
    assert [(ln[0], ln[2]) for ln in lines[:-1]] == [
        ("kernel", "x86_64/sbin/elver"), ("module", "x86_64/sbin/cpu"),
        ("module", "x86_64/sbin/init"), ("module", "x86_64/sbin/monitor"),
        ("module", "eclipseclp_ramfs.cpio.gz")]
    assert lines[0][3:] == ["http://192.0.2.1/barrelfish/x86_64/sbin/elver", "loglevel=3"]
    assert lines[-2][-1] == "nospawn" and lines[-1] == ["boot"]
    assert (tftp / "barrelfish" / "x86_64" / "sbin" / "monitor").is_file()


def test_multiboot_pxe_refuses_a_menu_lst_without_a_kernel(tmp_path: Path) -> None:
    _files(tmp_path / "build", ["x86_64/sbin/cpu"])
    (tmp_path / "menu.lst").write_text("title nothing\nmodule /x86_64/sbin/cpu\n")
    result = _play(tmp_path, PLAYBOOKS / "research" / "multiboot-pxe.yml", {
        "tftp_root": str(tmp_path / "tftp"), "mb_menu_lst": str(tmp_path / "menu.lst"),
        "mb_src_root": str(tmp_path / "build"), "http_base": "http://192.0.2.1"})
    assert result.returncode != 0
    assert "no kernel line" in result.stdout
    assert not (tmp_path / "tftp" / "boot.ipxe").exists()


def test_jailhouse_memmap_survives_grub(tmp_path: Path) -> None:
    """/etc/default/grub.d is sourced by grub-mkconfig's shell: what it leaves must be
    `memmap=SIZE\\$START`, which GRUB's own parser reads as a literal `$`."""
    book = yaml.safe_load((PLAYBOOKS / "research" / "jailhouse-kernel.yml").read_text())[0]
    dropin = "/etc/default/grub.d/jailhouse.cfg"
    task = next(t for t in book["tasks"]
                if t.get("ansible.builtin.copy", {}).get("dest") == dropin)
    out = tmp_path / "jailhouse.cfg"
    play = {"name": "render", "hosts": "all", "gather_facts": False, "vars": book["vars"],
            "tasks": [{"name": "render", "ansible.builtin.copy": {
                **task["ansible.builtin.copy"], "dest": str(out)}}]}
    (tmp_path / "render.yml").write_text(yaml.safe_dump([play]))
    result = _play(tmp_path, tmp_path / "render.yml", {
        "memmap": "0x5200000$0x3a000000", "release": {"stdout": "5.15.0-jailhouse"}})
    assert result.returncode == 0, result.stdout[-3000:]
    sourced = subprocess.run(
        ["sh", "-c", f'GRUB_CMDLINE_LINUX="quiet"; . {out}; printf %s "$GRUB_CMDLINE_LINUX"'],
        capture_output=True, text=True, check=True).stdout
    assert sourced == "quiet intel_iommu=off memmap=0x5200000\\$0x3a000000"


def _xl_cfg(tmp_path: Path, extra: dict[str, Any]) -> str:
    out = tmp_path / "guest.cfg"
    book = yaml.safe_load((PLAYBOOKS / "research" / "xen-guest.yml").read_text())[0]
    play = {"name": "render", "hosts": "all", "gather_facts": False, "vars": book["vars"],
            "tasks": [{"name": "render", "ansible.builtin.template": {
                "src": str(PLAYBOOKS / "research" / "templates" / "xl-guest.cfg.j2"),
                "dest": str(out), "mode": "0644"}}]}
    (tmp_path / "render.yml").write_text(yaml.safe_dump([play]))
    result = _play(tmp_path, tmp_path / "render.yml", extra)
    assert result.returncode == 0, result.stdout[-3000:]
    return out.read_text()


@pytest.mark.parametrize(("mode", "pygrub"), [("pv", True), ("pvh", True), ("hvm", False)])
def test_xl_config_of_a_disk_guest(tmp_path: Path, mode: str, pygrub: bool) -> None:
    cfg = _xl_cfg(tmp_path, {"guest_name": f"guest-{mode}", "guest_type": mode,
                             "guest_image_url": "http://192.0.2.1/debian.qcow2"})
    assert f'type = "{mode}"' in cfg and 'name = "guest-' in cfg
    assert 'target=/var/lib/xen/images/guest-' in cfg and 'bridge=xenbr0' in cfg
    assert ('bootloader = "pygrub"' in cfg) is pygrub
    assert "kernel =" not in cfg


def test_xl_config_of_a_unikernel(tmp_path: Path) -> None:
    cfg = _xl_cfg(tmp_path, {"guest_name": "uk-hello", "guest_type": "pvh",
                             "guest_kernel": "/opt/uk/kernel", "guest_memory": 64})
    assert 'kernel = "/opt/uk/kernel"' in cfg and "memory = 64" in cfg
    assert "disk" not in cfg and "bootloader" not in cfg
