"""The saved plan's JSON Schema (docs/plan.schema.json) holds for every golden plan, for a
plan made now, and refuses what the format forbids; format 1 is still read."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from orchestrator.errors import SourceError
from orchestrator.plan import Action, Plan

sys.path.insert(0, str(Path(__file__).resolve().parent / "plans"))
import golden

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "docs" / "plan.schema.json").read_text(encoding="utf-8"))
VALIDATOR = Draft202012Validator(SCHEMA)
GOLDEN_JSON = sorted(golden.PLANS.glob("*/*.json"))
# the goldens' normalised fields, given real-shaped values
REAL = {golden.STATE_HASH: "0" * 64, golden.INPUTS_HASH: "1" * 64,
        golden.CREATED_AT: "2026-12-01T00:00:00Z", golden.ORCH_VERSION: "0.1.0"}


def _errors(doc: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in VALIDATOR.iter_errors(doc)]


def _denormalised(path: Path) -> dict:
    doc = json.loads(path.read_text(encoding="utf-8"))
    for key, value in doc.items():
        if isinstance(value, str) and value in REAL:
            doc[key] = REAL[value]
    return doc


def test_the_schema_is_valid_draft_2020_12():
    Draft202012Validator.check_schema(SCHEMA)
    assert len(GOLDEN_JSON) >= 80


@pytest.mark.parametrize("path", GOLDEN_JSON, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_golden_plan_matches_the_schema(path):
    doc = _denormalised(path)
    assert _errors(doc) == []
    # host records are written once, in the table, and referred to by key in steps
    inline = [s["id"] for s in doc["steps"] if _has_host_record(s["inputs"])]
    assert inline == []


def _has_host_record(value: object) -> bool:
    from orchestrator.plan_format import is_host_record
    if is_host_record(value):
        return True
    if isinstance(value, dict):
        return any(_has_host_record(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_host_record(v) for v in value)
    return False


def test_a_plan_made_now_matches_and_round_trips():
    plan = golden.make(golden.PROFILES / "93-proxmox-ceph.yaml", golden.INVENTORIES[0])
    doc = json.loads(plan.to_json())
    assert _errors(doc) == []
    assert doc["orch_version"] and doc["created_at"].endswith("Z")
    assert doc["selection"] == {"targets": [], "excludes": []}
    assert set(doc["hosts"]) == {"pve-1", "pve-2", "pve-3"}
    assert all(s["inputs"]["host"] == {"$host": s["node"]} for s in doc["steps"]
               if "host" in s["inputs"])
    again = Plan.from_json(plan.to_json())
    assert again.steps == plan.steps
    assert [p.step.fingerprint() for p in again] == [p.step.fingerprint() for p in plan]
    assert again.to_json() == plan.to_json()
    # 171 KB in format 1 (each host record repeated on each of the 80 steps)
    assert len(plan.to_json()) < 60_000


def test_the_schema_refuses_what_the_format_forbids():
    doc = _denormalised(golden.PLANS / "93-proxmox-ceph" / "lab.json")
    step = doc["steps"][0]
    for broken in (
        {**doc, "format_version": 1},
        {**doc, "created_at": "yesterday"},
        {**doc, "steps": [{**step, "actions": ["rebuild"]}]},
        {**doc, "steps": [{k: v for k, v in step.items() if k != "actions"}]},
        {**doc, "steps": [{**step, "action": "create"}]},
        {**doc, "selection": {"targets": "x"}},
        {**doc, "hosts": {"pve-1": {**doc["hosts"]["pve-1"],
                                     "bmc": {"password": "hunter2"}}}},
    ):
        assert _errors(broken), broken


def test_actions_are_a_list_and_a_replacement_is_delete_then_create():
    from orchestrator.plan_format import ACTIONS, action_of
    assert ACTIONS["replace"] == ["delete", "create"]
    for action in Action:
        assert action_of({"actions": ACTIONS[action.value]}) == action.value
    assert action_of({"actions": ["create", "delete"]}) == "replace"


def test_format_1_is_still_read_and_other_versions_refused(tmp_path):
    plan = golden.make(golden.PROFILES / "93-proxmox-ceph.yaml", golden.INVENTORIES[0])
    v2 = json.loads(plan.to_json())
    # the same plan as format 1 wrote it: scalar action, hosts inline
    v1 = {k: v for k, v in v2.items()
          if k not in ("hosts", "selection", "orch_version", "created_at")}
    v1["format_version"] = 1
    from orchestrator.plan_format import action_of, expand_hosts
    v1["steps"] = [{"action": action_of(s), **{k: v for k, v in s.items() if k != "actions"},
                    "inputs": expand_hosts(s["inputs"], v2["hosts"])} for s in v2["steps"]]
    assert '"$host"' not in json.dumps(v1)
    old = Plan.from_json(json.dumps(v1))
    assert old.steps == plan.steps and old.targets == ()
    for version in (0, 3, None):
        with pytest.raises(SourceError) as err:
            Plan.from_json(json.dumps({**v2, "format_version": version}), "p.json")
        assert "p.json:1:1" in err.value.render() and "1 or 2" in err.value.render()


def test_a_reference_to_a_missing_host_is_a_clear_error():
    plan = golden.make(golden.PROFILES / "93-proxmox-ceph.yaml", golden.INVENTORIES[0])
    doc = json.loads(plan.to_json())
    del doc["hosts"]["pve-2"]
    with pytest.raises(SourceError) as err:
        Plan.from_json(json.dumps(doc), "p.json")
    assert "host 'pve-2' is not in the plan's hosts table" in err.value.render()


def test_selection_is_recorded(tmp_path):
    from orchestrator.loader import load
    from orchestrator.planner import PlanOptions, make_plan
    from orchestrator.state import open_store
    loaded = load(golden.PROFILES / "93-proxmox-ceph.yaml", golden.INVENTORIES[0])
    store = open_store(str(tmp_path / "s.db"))
    try:
        plan = make_plan(loaded, store, PlanOptions(targets=("pve-1/*",), excludes=("*ceph*",),
                                                    refresh=False),
                         drivers=golden.planning_registry(False))
    finally:
        store.close()
    doc = json.loads(plan.to_json())
    assert doc["selection"] == {"targets": ["pve-1/*"], "excludes": ["*ceph*"]}
    assert _errors(doc) == []
    assert Plan.from_json(plan.to_json()).targets == ("pve-1/*",)


def test_the_documented_command_validates_a_saved_plan(tmp_path):
    """docs/plan-format.md: `check-jsonschema --schemafile docs/plan.schema.json plan.json`."""
    import shutil
    import subprocess
    exe = shutil.which("check-jsonschema")
    if exe is None:
        pytest.fail("check-jsonschema is missing: pip install -e '.[dev]'")
    from tests.engine.helpers import fake, run_orch, write_profile
    profile = write_profile(tmp_path, [fake("a", on="node")])
    out = tmp_path / "plan.json"
    res = run_orch("plan", str(profile), "--state", str(tmp_path / "s.db"), "--out", str(out),
                   "--target", "node-1/*")
    assert res.returncode == 0, res.stderr
    schema = ROOT / "docs" / "plan.schema.json"
    ok = subprocess.run([exe, "--schemafile", str(schema), str(out)], capture_output=True,
                        text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    doc = json.loads(out.read_text())
    assert doc["selection"]["targets"] == ["node-1/*"]
    doc["steps"][0]["actions"] = "create"
    out.write_text(json.dumps(doc))
    bad = subprocess.run([exe, "--schemafile", str(schema), str(out)], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 1 and "actions" in bad.stdout
