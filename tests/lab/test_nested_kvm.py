"""Deployment 76 end to end in the lab: L0 = this machine, L1 = a lab guest with QEMU and
libvirt (``orch lab up --image l1``), L2 = a kernel + initramfs guest that the libvirt
driver defines in L1's libvirt over qemu+ssh. L2's boot is proven by the marker on its
serial console, and `orch verify` checks L1's libvirtd, L2's state and that log."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from labhelpers import DATA, force_down, leftovers, orch, profile_copy, unique

from lab.image import lab_keypair

pytestmark = [pytest.mark.slow, pytest.mark.libvirt]


@pytest.fixture(scope="module")
def nested(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("nested")
    name = unique("nested")
    profile = profile_copy(tmp, DATA / "profiles" / "nested-kvm-lab.yaml", name)
    inventory = tmp / "inventory.yaml"
    up = orch("lab", "up", str(profile), "--image", "l1", "--memory-mib", "1280",
              "--no-bmc", "--out", str(inventory), timeout=1500)
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        key = str(lab_keypair()[0])
        yield {"name": name, "profile": profile, "inventory": inventory,
               "common": ["-i", str(inventory), "-p", f"lab_key={key}",
                          "--state", str(tmp / "state.db")],
               "data": yaml.safe_load(inventory.read_text())}
    finally:
        down = orch("lab", "down", str(profile), timeout=600)
        if down.returncode != 0:
            force_down(name)
        assert leftovers(f"orch-{name}") == []


def l1_console(nested: dict[str, Any]) -> str:
    """The tail of L1's serial console (boot, kernel messages, getty): what a failure here
    needs to be understood, printed with every failed assertion."""
    path = Path(f"/var/log/libvirt/qemu/orch-{nested['name']}-l1-1-console.log")
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no L1 console log: {exc})"
    return f"\n--- L1 console ({path}), last 3000 characters:\n{text[-3000:]}"


def _l1_has_kvm(address: str) -> bool:
    key = str(lab_keypair()[0])
    probe = subprocess.run(["ssh", "-i", key, "-o", "BatchMode=yes", "-o",
                            "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                            f"root@{address}", "test -c /dev/kvm"],
                           capture_output=True, timeout=120, check=False)
    return probe.returncode == 0


def test_plan_names_l2s_accelerator_from_what_l1_offers(nested: dict[str, Any]) -> None:
    """Under TCG, L1's qemu64 CPU carries SVM, so L1 may offer (emulated) KVM to L2;
    whatever L1 offers, the plan's finding for L1's URI must say it."""
    result = orch("plan", str(nested["profile"]), *nested["common"], timeout=300)
    assert result.returncode == 0, result.stderr[-3000:] + l1_console(nested)
    address = nested["data"]["hosts"][0]["address"]
    remote = next((ln for ln in result.stdout.splitlines()
                   if "KVM usable:" in ln and f"qemu+ssh://root@{address}" in ln), None)
    assert remote is not None, result.stdout + l1_console(nested)
    if _l1_has_kvm(address):
        assert "KVM usable: yes" in remote and remote.rstrip().endswith("→ KVM")
    else:
        assert "KVM usable: no" in remote and remote.rstrip().endswith("→ TCG")


def test_apply_boots_l2_inside_l1(nested: dict[str, Any]) -> None:
    result = orch("apply", str(nested["profile"]), *nested["common"], "--auto-approve",
                  timeout=1500)
    assert result.returncode == 0, result.stderr[-4000:] + l1_console(nested)
    assert "4 succeeded, 0 failed" in result.stderr


def test_verify_sees_l2_running_and_its_boot_marker(nested: dict[str, Any]) -> None:
    result = orch("verify", str(nested["profile"]), "-i", str(nested["inventory"]),
                  timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr + l1_console(nested)
    assert "== 4 passed, 0 failed" in result.stdout
    assert "L2 booted (serial console marker)" in result.stdout


def test_second_apply_changes_nothing(nested: dict[str, Any]) -> None:
    result = orch("apply", str(nested["profile"]), *nested["common"], "--auto-approve",
                  timeout=600)
    assert result.returncode == 0, result.stderr[-3000:] + l1_console(nested)
    assert "No changes" in result.stderr

