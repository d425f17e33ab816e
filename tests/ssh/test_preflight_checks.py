"""Runtime preflight checks: judged purely from command output, and run over real SSH."""

from __future__ import annotations

from pathlib import Path

import pytest
from ssh_harness import Runner
from sshd_server import Sshd

from drivers.ssh import checks
from orchestrator.errors import PermanentError

CPUINFO = "processor\t: 0\nflags\t\t: fpu vme sse2 vmx ept\n\nprocessor\t: 1\nflags\t: fpu\n"
MEMINFO = "MemTotal: 100 kB\nHugePages_Total:      64\nHugePages_Free:       10\n" \
          "Hugepagesize:       2048 kB\n"


def test_kernel_cmdline_accepts_full_tokens_and_bare_names() -> None:
    line = "BOOT_IMAGE=/vmlinuz ro quiet intel_iommu=on iommu=pt\n"
    checks.kernel_cmdline({"contains": ["intel_iommu=on", "iommu", "quiet"]}, line)
    with pytest.raises(checks.CheckFailed) as info:
        checks.kernel_cmdline({"contains": ["iommu=pt", "hugepages=16"]}, line)
    assert info.value.expected == "kernel command line containing hugepages=16"
    assert "intel_iommu=on" in info.value.found


def test_cpu_flags_any_of_and_all_of() -> None:
    assert checks.cpu_flags({"any_of": ["vmx", "svm"]}, CPUINFO) == "vmx"
    with pytest.raises(checks.CheckFailed) as info:
        checks.cpu_flags({"all_of": ["vmx", "svm"]}, CPUINFO)
    assert "svm missing" in info.value.found
    with pytest.raises(checks.CheckFailed, match="none of them"):
        checks.cpu_flags({"any_of": ["svm"]}, CPUINFO)


def test_kvm_nested_wants_y_or_1_on_either_module() -> None:
    assert "kvm_amd: nested=1" in checks.kvm_nested({}, "kvm_intel=\nkvm_amd=1\n")
    with pytest.raises(checks.CheckFailed) as info:
        checks.kvm_nested({}, "kvm_intel=N\nkvm_amd=\n")
    assert info.value.found == "kvm_intel: nested=N, kvm_amd: not loaded"


def test_sysctl_and_hugepages_name_what_they_expected() -> None:
    with pytest.raises(checks.CheckFailed) as info:
        checks.sysctl({"values": {"net.ipv4.ip_forward": 1}}, "net.ipv4.ip_forward=0\n")
    assert (info.value.expected, info.value.found) == ("net.ipv4.ip_forward = 1",
                                                       "net.ipv4.ip_forward = 0")
    assert checks.hugepages({"min_total": 64, "size_kb": 2048}, MEMINFO).startswith(
        "HugePages_Total=64")
    with pytest.raises(checks.CheckFailed, match="HugePages_Free >= 32"):
        checks.hugepages({"min_free": 32}, MEMINFO)


# -- the same checks against this machine, read over SSH -----------------------------
def test_kernel_cmdline_over_ssh(sshd: Sshd, run: Runner) -> None:
    token = Path("/proc/cmdline").read_text().split()[0]
    run.apply("check.kernel_cmdline", {"host": sshd.host(), "contains": [token]})
    with pytest.raises(PermanentError) as info:
        run.apply("check.kernel_cmdline", {"host": sshd.host(),
                                           "contains": ["orch_absent=1"]})
    text = str(info.value)
    assert "expected kernel command line containing orch_absent=1; found" in text
    assert token in text and "check.kernel_cmdline on 127.0.0.1" in text


def test_cpu_flags_over_ssh(sshd: Sshd, run: Runner) -> None:
    flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("flags")).split(":", 1)[1].split()
    out = run.apply("check.cpu_flags", {"host": sshd.host(), "all_of": flags[:2]})
    assert out.outputs["found"]
    with pytest.raises(PermanentError, match="expected a CPU flag among orch_nope"):
        run.apply("check.cpu_flags", {"host": sshd.host(), "any_of": ["orch_nope"]})


def test_kvm_nested_over_ssh_matches_this_machine(sshd: Sshd, run: Runner) -> None:
    values = [p.read_text().strip() for p in Path("/sys/module").glob("kvm_*/parameters/nested")
              if p.parent.parent.name in ("kvm_intel", "kvm_amd")]
    inputs = {"host": sshd.host()}
    if any(v in ("Y", "1") for v in values):
        assert "nested=" in run.apply("check.kvm_nested", inputs).outputs["found"]
    else:
        with pytest.raises(PermanentError, match="expected nested=Y or 1 on kvm_intel"):
            run.apply("check.kvm_nested", inputs)


def test_sysctl_over_ssh(sshd: Sshd, run: Runner) -> None:
    run.apply("check.sysctl", {"host": sshd.host(), "values": {"kernel.ostype": "Linux"}})
    with pytest.raises(PermanentError) as info:
        run.apply("check.sysctl", {"host": sshd.host(), "values": {"kernel.ostype": "BSD"}})
    assert "expected kernel.ostype = BSD; found kernel.ostype = Linux" in str(info.value)


def test_hugepages_over_ssh(sshd: Sshd, run: Runner) -> None:
    run.apply("check.hugepages", {"host": sshd.host(), "min_total": 0})
    with pytest.raises(PermanentError, match=r"expected HugePages_Total >= 1000000"):
        run.apply("check.hugepages", {"host": sshd.host(), "min_total": 1_000_000})
