"""Every profile of the catalog, planned against both inventories, as data.

For each ``profiles/*.yaml`` (found by glob, so new profiles are covered without editing
this file) and each inventory in ``tests/plans/golden.py``:

* it loads, binds, expands without a cycle, and passes its static preflight with no
  warning or failure;
* the plan made now is byte-identical to the golden files in ``tests/plans/<stem>/``
  (regenerate them with ``python tests/plans/regen.py PROFILE`` and review the diff);
* planning twice gives the same bytes (no set or dict order leaks into a plan);
* every ``ansible.playbook`` step names a playbook that exists under ``playbooks/``;
* every driver the plan uses loads and accepts the profile's and inventory's settings.

And the catalog holds the forty deployments of issue 3 (71-110).
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "plans"))

import golden

from orchestrator.components import builtin_registry
from orchestrator.expand import expand
from orchestrator.loader import load
from orchestrator.plan import FindingStatus
from orchestrator.planner import check_acyclic, driver_settings
from orchestrator.preflight import evaluate
from orchestrator.step import EXTERNAL

PROFILES = golden.profiles()
CASES = [(p, i) for p in PROFILES for i in golden.INVENTORIES]


def _id(case: tuple[Path, Path]) -> str:
    return f"{case[0].stem}@{case[1].stem}"


#: Issue 3: deployments 71-110 of the seed, one profile each, by file stem. 91-110 are
#: written by another author: the names below are the ones committed so far; a number mapped
#: to None is matched by number (exactly one ``profiles/<N>-*.yaml``) until its name is
#: settled - then write the name here.
ISSUE3: dict[int, str | None] = {
    71: "71-starlingx-telco-edge", 72: "72-osm-mano", 73: "73-onap",
    74: "74-wind-river-studio", 75: "75-kubeedge", 76: "76-nested-kvm",
    77: "77-nested-openstack", 78: "78-kubevirt-nested-k8s", 79: "79-k8s-multi-runtime",
    80: "80-lxd-capi", 81: "81-k8s-neutron-kuryr", 82: "82-sel4-partitions",
    83: "83-jailhouse", 84: "84-barrelfish", 85: "85-nova-microhypervisor",
    86: "86-xen-research", 87: "87-talos", 88: "88-flatcar", 89: "89-nixos",
    90: "90-nutanix-ahv",
    91: "91-vsphere-tanzu", 92: "92-azure-stack-hci", 93: "93-proxmox-ceph",
    94: "94-rhv-migration", 95: "95-hyperscaler-metal3", 96: "96-openstack-on-k8s",
    97: "97-opennebula", 98: "98-xcpng-cloudstack", 99: "99-nomad-firecracker",
    100: "100-starlingx-distributed-cloud", 101: "101-ibm-z", 102: "102-acrn-starlingx",
    103: "103-openfaas-firecracker", 104: "104-xen-kubevirt-ceph", 105: "105-multus-sriov",
    106: "106-lxd-dev-cloud", 107: "107-gitops-talos-flux-crossplane",
    108: "108-kubevirt-vmware-migration", 109: "109-maas-juju-openstack",
    110: "110-serverless-full-pipeline",
}


def test_issue3_lists_forty_deployments() -> None:
    assert sorted(ISSUE3) == list(range(71, 111))


@pytest.mark.parametrize("number", sorted(ISSUE3))
def test_issue3_profile_exists(number: int) -> None:
    found = sorted(p.stem for p in golden.PROFILES.glob(f"{number}-*.yaml"))
    name = ISSUE3[number]
    if name is not None:
        assert found == [name], (f"issue 3 expects profiles/{name}.yaml for deployment "
                                 f"{number} (and no other); found {found}")
    else:
        assert len(found) == 1, (f"issue 3 expects exactly one profiles/{number}-*.yaml for "
                                 f"deployment {number}; found {found}")


def test_profiles_found() -> None:
    assert PROFILES, "no profiles/*.yaml found"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_profile_validates_cleanly(case: tuple[Path, Path]) -> None:
    profile, inventory = case
    loaded = load(profile, inventory)
    desired = expand(loaded, builtin_registry())
    check_acyclic(desired)
    findings = evaluate(loaded)
    bad = [f for f in findings if f.status in (FindingStatus.WARN, FindingStatus.FAIL)]
    assert not bad, "preflight findings that are not clean:\n" + "\n".join(
        f"  [{f.status.value}] {f.check}: {f.detail}" for f in bad)
    assert loaded.profile.metadata.title, "metadata.title is empty"
    assert desired.steps, "the profile expands to no steps"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_plan_matches_golden(case: tuple[Path, Path]) -> None:
    profile, inventory = case
    now = golden.render(profile, inventory)
    hint = f"regenerate with: python tests/plans/regen.py {profile.stem}  (then review the diff)"
    for path, content in ((now.text_path, now.text), (now.json_path, now.json)):
        rel = golden.relative(path)
        assert path.is_file(), f"no golden plan {rel}; {hint}"
        expected = path.read_text(encoding="utf-8")
        if expected != content:
            diff = "".join(difflib.unified_diff(
                expected.splitlines(keepends=True), content.splitlines(keepends=True),
                fromfile=f"{rel} (golden)", tofile=f"{rel} (planned now)", n=2))
            lines = diff.splitlines()
            shown = "\n".join(lines[:120]) + (f"\n… {len(lines) - 120} more diff lines"
                                              if len(lines) > 120 else "")
            pytest.fail(f"plan differs from {rel}; {hint}\n{shown}", pytrace=False)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_plan_is_deterministic(case: tuple[Path, Path]) -> None:
    first = golden.render(*case)
    second = golden.render(*case)
    assert first.text == second.text
    assert first.json == second.json


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_playbooks_exist(profile: Path) -> None:
    loaded = load(profile, golden.INVENTORIES[0])
    desired = expand(loaded, builtin_registry())
    root = golden.ROOT / "playbooks"
    missing = sorted({f"{s.id}: playbooks/{s.inputs['playbook']}"
                      for s in desired.steps.values()
                      if s.kind == "ansible.playbook"
                      and not (root / str(s.inputs.get("playbook", ""))).is_file()})
    assert not missing, "steps name playbooks that do not exist:\n  " + "\n  ".join(missing)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_profile_drivers_load(case: tuple[Path, Path]) -> None:
    """``orch plan`` needs every driver the profile uses to import and accept its settings
    (the golden plans are made without that, see golden._PlanOnlyDriver)."""
    loaded = load(*case)
    desired = expand(loaded, builtin_registry())
    registry = golden.planning_registry(strict=True)
    for name in sorted({s.driver for s in desired.steps.values() if s.driver != EXTERNAL}):
        registry.settings(name, driver_settings(loaded, name))


# -- the seeds' configuration options, beyond the default parameters the goldens pin ----
@pytest.mark.parametrize("mode,nodes", [
    ("aio-sx", {"controller": 1, "worker": 0, "storage": 0}),
    ("aio-dx", {"controller": 2, "worker": 0, "storage": 0}),
    ("standard", {"controller": 2, "worker": 2, "storage": 2}),
])
def test_starlingx_mode_changes_nodes_and_ha_steps(mode: str, nodes: dict[str, int]) -> None:
    """71: AIO-SX is one server without HA; AIO-DX adds the second controller; Standard adds
    dedicated workers and storage nodes, each installed and unlocked."""
    loaded = load(golden.PROFILES / "71-starlingx-telco-edge.yaml", golden.INVENTORIES[1],
                  {"mode": mode})
    steps = expand(loaded, builtin_registry()).steps
    assert {role: len(loaded.nodes[role]) for role in nodes} == nodes
    on = {s.node for s in steps.values() if s.node}
    assert ("controller-2" in on) is (mode != "aio-sx")
    assert any(n.startswith("worker-") for n in on) is (mode == "standard")
    assert any(n.startswith("storage-") for n in on) is (mode == "standard")


def test_distributed_cloud_subclouds_are_a_count_of_sites() -> None:
    """100: every AIO-SX site is one `dcmanager subcloud add`, every AIO-DX site one more
    with its second server PXE-booted from the first."""
    loaded = load(golden.PROFILES / "100-starlingx-distributed-cloud.yaml", golden.INVENTORIES[1],
                  {"sx_subclouds": "3", "dx_subclouds": "2"})
    steps = expand(loaded, builtin_registry()).steps.values()
    per = {c: sum(1 for s in steps if s.component == c) for c in
           ("subcloud.add-sx", "subcloud.add-dx", "subcloud.dx-second-pxe")}
    assert per == {"subcloud.add-sx": 3, "subcloud.add-dx": 2, "subcloud.dx-second-pxe": 2}


def test_after_a_component_with_no_nodes_inherits_its_ordering() -> None:
    """71 in aio-sx: peers.power-on and workers.power-on select no node (their roles have
    count 0 or only one node); hosts.online, after them, must still come after what they came
    after (through their pxe-boot steps, hosts.add), not float free and let hosts.unlock
    unlock controller-0 before it is tuned."""
    profile = golden.PROFILES / "71-starlingx-telco-edge.yaml"
    loaded = load(profile, golden.INVENTORIES[0], {"mode": "aio-sx"})
    desired = expand(loaded, builtin_registry())
    assert not any(s.component in ("peers.power-on", "workers.power-on")
                   for s in desired.steps.values()), "the test needs them empty"
    online = [s for s in desired.steps.values() if s.component == "hosts.online"]
    assert online, "no hosts.online step"
    deps = {desired.steps[d].component for s in online for d in s.depends_on}
    assert "hosts.add" in deps, f"hosts.online depends only on {sorted(deps)}"
