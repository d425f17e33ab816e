"""The accelerator preflight: a probe guest decides, the verdict is cached, forcing works,
and a stuck probe cannot hang the plan."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from drivers.libvirt import LibvirtDriver, LibvirtSettings, accel
from drivers.libvirt.accel import Accel, boot_probe_guest, decide, kvm_pvm_loaded
from orchestrator.plan import FindingStatus

pytestmark = pytest.mark.libvirt


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache dir (the initramfs guest is rebuilt there: it takes a second)."""
    monkeypatch.setenv("ORCH_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("ORCH_ACCEL", raising=False)
    return tmp_path


@pytest.mark.slow
def test_probe_guest_prints_its_marker_when_it_can_boot(cache: Path) -> None:
    """Under TCG the probe guest always boots: so a KVM host would be judged by the same
    check that fails here."""
    run = boot_probe_guest("tcg", timeout=120)
    assert run.booted, run.failure


def test_verdict_on_this_host_matches_what_kvm_can_do(cache: Path) -> None:
    verdict = decide(refresh=True)
    assert verdict.source == "probe"
    if not Path("/dev/kvm").exists():
        assert (verdict.accel, verdict.reason) == (Accel.TCG, "no /dev/kvm")
    elif kvm_pvm_loaded():
        assert verdict.accel is Accel.TCG and not verdict.kvm_usable
        assert verdict.reason.startswith("kvm_pvm cannot run a standard guest; probe guest")
        assert verdict.finding.startswith("KVM usable: no (kvm_pvm cannot run a standard")
        assert verdict.finding.endswith("→ TCG")
    else:
        # A plain KVM host: the probe must have booted under -accel kvm.
        assert verdict.accel is Accel.KVM, verdict.reason
        assert verdict.finding.startswith("KVM usable: yes")


def test_verdict_is_cached_per_host_configuration(cache: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    first = decide(refresh=True)
    calls = []
    monkeypatch.setattr(accel, "probe", lambda **kw: calls.append(kw) or first)
    again = decide()
    assert again.source == "cache" and calls == []
    assert (again.accel, again.reason) == (first.accel, first.reason)
    monkeypatch.setattr(accel, "host_key", lambda: "another kernel|another qemu|True")
    decide()  # a new kernel or QEMU means a new probe
    assert len(calls) == 1


def test_orch_accel_forces_the_choice_without_probing(cache: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accel, "probe", lambda **kw: pytest.fail("probe must not run"))
    monkeypatch.setenv("ORCH_ACCEL", "kvm")
    assert decide().accel is Accel.KVM and decide().source == "forced"
    monkeypatch.setenv("ORCH_ACCEL", "tcg")
    assert decide().accel is Accel.TCG
    assert decide("kvm").accel is Accel.KVM  # an explicit setting beats the variable


def test_a_hanging_probe_is_killed_within_its_timeout(cache: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "qemu-that-hangs"
    fake.write_text("#!/bin/sh\nexec sleep 300\n")
    fake.chmod(0o755)
    monkeypatch.setattr(accel, "QEMU", str(fake))
    started = time.monotonic()
    run = boot_probe_guest("kvm", timeout=2)
    assert time.monotonic() - started < 15
    assert not run.booted and run.failure.startswith("probe guest hung for 2 s")


def test_driver_facts_report_the_verdict_and_settings_force_it(
        cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    verdict = decide()
    (finding,) = LibvirtDriver(LibvirtSettings()).facts([])
    assert finding.check == "accelerator" and verdict.finding in finding.detail
    assert finding.status is (FindingStatus.OK if verdict.accel is Accel.KVM
                              else FindingStatus.WARN)
    monkeypatch.setattr(accel, "probe", lambda **kw: pytest.fail("probe must not run"))
    forced = LibvirtDriver(LibvirtSettings(accelerator="kvm"))
    assert forced.accelerator("qemu:///system").accel is Accel.KVM
    assert "→ KVM" in forced.facts([])[0].detail
    monkeypatch.setenv("ORCH_ACCEL", "tcg")
    assert LibvirtDriver(LibvirtSettings()).accelerator("qemu:///system").accel is Accel.TCG
    assert os.environ["ORCH_ACCEL"] == "tcg"
