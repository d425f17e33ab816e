"""From a blank disk to SSH through Redfish virtual media, the way Ironic and Metal3 install.

One profile, one role, one ``os.install`` component whose image is the installer ISO served
on 127.0.0.1; the inventory points at the sushy-tools emulator. The engine plans and applies
it, so the steps that run are the ones ``os.install`` expands to: power off, insert media,
boot once from CD, power on, wait for the installer to power the guest off, eject, boot
from disk, power on, wait for SSH.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.install.install_support import (
    apply_profile,
    console_tail,
    install_lab,
    installed_host,
    print_phases,
    write_profile,
)

pytestmark = [pytest.mark.slow, pytest.mark.libvirt, pytest.mark.bmc]

#: Under TCG on a busy 2-core host the installer boots in ~1-2 min and writes ~0.7 GiB.
INSTALL_TIMEOUT = 1200.0
SSH_TIMEOUT = 900.0
EXPECTED_STEPS = ("power-off", "insert-media", "boot-cd", "power-on-installer",
                  "wait-installer", "eject-media", "boot-disk", "power-on", "wait-ssh")


def test_blank_disk_to_ssh_through_redfish_virtual_media(
        conn: Any, libvirt_driver: Any, iso_url: str, tmp_path: Path) -> None:
    with install_lab(conn, libvirt_driver, iso_url, tmp_path, count=1) as lab:
        node = lab.nodes[0]
        assert lab.disk_allocation(node) < 16 << 20, "the disk must start blank"
        profile = write_profile(tmp_path / "profile.yaml", image=iso_url,
                                known_hosts=tmp_path / "known_hosts",
                                install_timeout=INSTALL_TIMEOUT, ssh_timeout=SSH_TIMEOUT)
        run = apply_profile(profile, lab.inventory(), tmp_path / "state.db")
        print(f"\n[install] lab (network, blank disk, domain, BMCs): "
              f"{lab.timings['lab']:.1f} s")
        print_phases("os.install through the engine", run)
        assert run.report.ok, (
            "install failed: " + "; ".join(f"{o.step_id}: {o.error}"
                                           for o in run.report.root_causes())
            + f"\nconsole:\n{console_tail(node)}")
        suffixes = [sid.rsplit("[", 1)[-1].rstrip("]") if "[" in sid else sid
                    for sid in run.report.outcomes]
        for step in EXPECTED_STEPS:
            assert any(step in s for s in suffixes), f"{step} did not run: {suffixes}"

        # The installed system is the lab image, booted from the disk the installer wrote.
        host = installed_host(node.address, lab.key_path)
        os_release = host.file("/etc/os-release").content_string
        assert 'ID=debian' in os_release and 'VERSION_ID="12"' in os_release
        machine_id = host.file("/etc/machine-id").content_string.strip()
        assert re.fullmatch(r"[0-9a-f]{32}", machine_id), \
            "systemd did not make this clone its own machine-id on first boot"
        root = host.check_output("findmnt -no SOURCE /")
        assert root.startswith("/dev/vda"), f"root is on {root}, not the installed disk"
        assert host.file("/etc/ssh/ssh_host_ed25519_key").exists
        assert not host.mount_point("/cdrom").exists
        assert lab.disk_allocation(node) > 500 << 20, "the image was not written to the disk"

        # What the BMC left behind: boot from disk again, no media in the drive.
        assert lab.first_boot_device(node) == "hd"
        assert lab.media_inserted(node) == []


def test_installer_iso_is_cached_by_content(installer_iso: Any) -> None:
    from lab.installer import build_installer_iso

    started = time.monotonic()
    again = build_installer_iso()
    assert again.path == installer_iso.path
    assert time.monotonic() - started < 30, "an unchanged ISO was rebuilt"
    assert installer_iso.data_mib < installer_iso.image_bytes >> 20
