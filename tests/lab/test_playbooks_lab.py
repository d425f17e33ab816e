"""The shared playbooks whose targets install from Debian's packages, applied for real by
`orch apply` to one lab guest and checked with testinfra (tests/lab/data/profiles/
playbooks-lab.yaml): the base OS (common/base.yml), a libvirt/KVM host
(nested-kvm/kvm-host.yml, under TCG: libvirt runs QEMU's TCG where the guest has no
/dev/kvm), a single-node Ceph from Debian's packages (ceph/bootstrap.yml,
``ceph_install: debian``: mon, mgr and one BlueStore OSD on the blank data disk vdb) and
a containerd host (common/containerd.yml).

The guest is air-gapped: its apt reaches only the flat repository of :data:`PACKAGES`
(:mod:`lab.debrepo`) served on the lab network's gateway by :mod:`lab.mirrorserve`, recorded
in the lab's state directory so `orch lab down` stops it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from labhelpers import DATA, force_down, leftovers, opt_in, orch, processes, profile_copy, unique

from lab.image import lab_keypair

pytestmark = [pytest.mark.slow, pytest.mark.libvirt,
              opt_in("ORCH_TEST_LAB_PLAYBOOKS",
                     "package installs under QEMU TCG took ~10 min per playbook at load ~20; "
                     "not yet passed end to end")]

#: What the four playbooks install (python3-apt: Ansible's apt module).
PACKAGES = ("python3-apt", "chrony", "ca-certificates", "curl", "gnupg",
            "qemu-system-x86", "qemu-utils", "libvirt-daemon-system", "libvirt-clients",
            "virtinst", "ovmf", "ceph-mon", "ceph-mgr", "ceph-osd", "ceph-common", "lvm2",
            "containerd", "runc")
#: The components of the profile, in order: every one must succeed.
STEPS = ("reachable", "apt.mirror", "os.base", "kvm.host", "ceph.bootstrap", "containerd")
TIMES: dict[str, float] = {}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from lab import debrepo, mirrorserve
    from lab.up import state_dir

    tmp = tmp_path_factory.mktemp("playbooks")
    name = unique("labplaybooks")
    profile = profile_copy(tmp, DATA / "profiles" / "playbooks-lab.yaml", name)
    inventory = tmp / "inventory.yaml"
    started = time.monotonic()
    repo = debrepo.build(PACKAGES)
    TIMES["apt repository"] = time.monotonic() - started
    started = time.monotonic()
    up = orch("lab", "up", str(profile), "--memory-mib", "3072", "--no-bmc",
              "--out", str(inventory), timeout=1200)
    TIMES["lab up"] = time.monotonic() - started
    server = "(not started)"
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        root = state_dir(name)
        cidr = json.loads((root / "lab.json").read_text())["cidr"]
        server = f"http.server --bind {mirrorserve.gateway(cidr)} "
        url = mirrorserve.start(repo, cidr, root)
        data = yaml.safe_load(inventory.read_text())
        yield {"name": name, "profile": profile, "inventory": inventory, "url": url,
               "tmp": tmp,
               "address": data["hosts"][0]["address"],
               "common": ["-i", str(inventory), "-p", f"apt_repo={url}",
                          "--state", str(tmp / "state.db")]}
    finally:
        started = time.monotonic()
        down = orch("lab", "down", str(profile), timeout=600)
        TIMES["lab down"] = time.monotonic() - started
        if down.returncode != 0:
            force_down(name)
        print("\nplaybooks lab times: " + ", ".join(f"{k} {v:.0f} s" for k, v in TIMES.items()))
        assert down.returncode == 0, down.stderr[-3000:]
        assert leftovers(f"orch-{name}") == []
        assert processes(server) == [], "the repository's HTTP server was left running"


def console(lab: dict[str, Any]) -> str:
    path = Path(f"/var/log/libvirt/qemu/orch-{lab['name']}-node-1-console.log")
    try:
        return f"\n--- console, last 2000 characters:\n{path.read_text(errors='replace')[-2000:]}"
    except OSError as exc:
        return f"\n(no console log: {exc})"


def host(lab: dict[str, Any]) -> Any:
    """A testinfra host logged in as root with the lab key (paramiko backend)."""
    import testinfra

    return testinfra.get_host(f"paramiko://root@{lab['address']}",
                              ssh_identity_file=str(lab_keypair()[0]), timeout=60)


def test_apply_installs_every_playbook_from_the_sites_mirror(lab: dict[str, Any]) -> None:
    started = time.monotonic()
    result = orch("apply", str(lab["profile"]), *lab["common"], "--auto-approve",
                  timeout=2400)
    TIMES["first apply"] = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-5000:] + console(lab)
    assert f"{len(STEPS)} succeeded, 0 failed" in result.stderr, result.stderr[-3000:]
    for step in STEPS:
        assert f"succeeded node-1/{step}" in result.stderr


def test_verify_runs_the_profiles_testinfra_checks(lab: dict[str, Any]) -> None:
    result = orch("verify", str(lab["profile"]), "-i", str(lab["inventory"]), timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "== 10 passed, 0 failed" in result.stdout, result.stdout


def test_base_os_hostname_and_chrony(lab: dict[str, Any]) -> None:
    h = host(lab)
    assert h.check_output("hostname") == "node-1"
    assert h.file("/etc/hosts").contains(rf"^{lab['address']} node-1$")
    assert h.package("chrony").is_installed
    assert h.service("chrony").is_running
    assert h.file("/etc/chrony/sources.d/orch.sources").contains("pool 2.debian.pool.ntp.org")


def test_libvirt_runs_and_says_which_accelerator(lab: dict[str, Any]) -> None:
    h = host(lab)
    assert h.service("libvirtd").is_running and h.service("libvirtd").is_enabled
    listing = h.run("virsh -c qemu:///system list --all")
    assert listing.rc == 0, listing.stderr
    has_kvm = h.file("/dev/kvm").exists
    caps = h.check_output("virsh -c qemu:///system domcapabilities --virttype qemu")
    assert "<domain>qemu</domain>" in caps
    flag = h.run("grep -m1 -owE 'vmx|svm' /proc/cpuinfo").stdout.strip()
    if flag:  # the CPU offers VMX/SVM (under TCG, qemu64 has SVM): the nested option is set
        module = {"vmx": "kvm_intel", "svm": "kvm_amd"}[flag]
        assert h.file("/etc/modprobe.d/kvm-nested.conf").contains(f"options {module} nested=1")
    else:  # neither flag: no module option written, and libvirt runs QEMU's TCG only
        assert not h.file("/etc/modprobe.d/kvm-nested.conf").exists
        assert not has_kvm


def test_ceph_has_quorum_and_its_osd_up(lab: dict[str, Any]) -> None:
    h = host(lab)
    status = json.loads(h.check_output("ceph -s --format json"))
    assert status["health"]["status"] in ("HEALTH_OK", "HEALTH_WARN"), status["health"]
    assert status["quorum_names"] == ["node-1"]
    osdmap = status["osdmap"].get("osdmap", status["osdmap"])
    assert osdmap["num_osds"] == 1 and osdmap["num_up_osds"] == 1, osdmap
    assert osdmap["num_in_osds"] == 1
    assert status["mgrmap"]["available"] is True
    assert h.package("ceph-mon").version.startswith("16.2.")
    assert h.service("ceph-osd@0").is_running


def test_containerd_answers(lab: dict[str, Any]) -> None:
    h = host(lab)
    assert h.service("containerd").is_running
    version = h.run("ctr version")
    assert version.rc == 0 and "Server:" in version.stdout, version.stderr
    assert h.file("/etc/containerd/config.toml").contains("SystemdCgroup = true")


def test_second_apply_changes_nothing(lab: dict[str, Any]) -> None:
    started = time.monotonic()
    result = orch("apply", str(lab["profile"]), *lab["common"], "--auto-approve",
                  timeout=900)
    TIMES["second apply"] = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:]
    assert "No changes" in result.stderr


def test_every_playbook_run_again_changes_nothing(lab: dict[str, Any]) -> None:
    """A state that knows nothing makes the engine run every step again: each playbook
    must then report 0 changed tasks on the host it configured."""
    fresh = lab["tmp"] / "rerun.db"
    common = [a if a != lab["common"][-1] else str(fresh) for a in lab["common"]]
    started = time.monotonic()
    result = orch("apply", str(lab["profile"]), *common, "--auto-approve", timeout=1800)
    TIMES["playbooks re-run"] = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-4000:]
    assert f"{len(STEPS)} succeeded, 0 failed" in result.stderr
    out = orch("output", str(lab["profile"]), "--state", str(fresh), "--format", "json")
    assert out.returncode == 0, out.stderr
    outputs = json.loads(out.stdout)
    changed = {step: outputs[f"node-1/{step}"]["changed"] for step in
               ("os.base", "kvm.host", "ceph.bootstrap", "containerd")}
    assert changed == dict.fromkeys(changed, 0), changed
