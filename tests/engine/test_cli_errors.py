"""Errors that name what was meant: "did you mean", accepted fields, clear refusals."""

from __future__ import annotations

import json

from tests.engine.helpers import REPO, fake, run_orch, write_profile

P93 = str(REPO / "profiles" / "93-proxmox-ceph.yaml")


def _one_line_error(res) -> str:
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    return res.stderr


def test_unknown_component_type_suggests_the_close_one(tmp_path):
    profile = write_profile(tmp_path, [{"name": "a", "type": "fake.stpe"}])
    err = _one_line_error(run_orch("validate", str(profile)))
    assert "unknown component type 'fake.stpe'" in err
    assert "did you mean 'fake.step'?" in err and f"{profile}:" in err


def test_unknown_field_lists_the_accepted_fields_and_suggests(tmp_path):
    profile = write_profile(tmp_path, [{"name": "a", "type": "fake.step", "afer": ["b"]}])
    err = _one_line_error(run_orch("validate", str(profile)))
    assert "unknown field at layers.0.components.0.afer" in err
    assert "did you mean 'after'?" in err
    assert "expected: one of: name, type, on, select, foreach, after, when, with" in err


def test_unknown_with_parameter_suggests(tmp_path):
    profile = write_profile(tmp_path, [fake("a", durration=1)])
    err = _one_line_error(run_orch("validate", str(profile)))
    assert "did you mean 'duration'?" in err and "parameters of fake.step:" in err


def test_after_an_unknown_component_suggests(tmp_path):
    profile = write_profile(tmp_path, [fake("cluster.cni"), fake("b", after=["cluster.cn"])])
    err = _one_line_error(run_orch("validate", str(profile)))
    assert "comes after unknown component 'cluster.cn'" in err
    assert "did you mean 'cluster.cni'?" in err


def test_unknown_role_and_parameter_suggest(tmp_path):
    profile = write_profile(tmp_path, [fake("a", on="nodes")])
    assert "did you mean 'node'?" in _one_line_error(run_orch("validate", str(profile)))
    err = _one_line_error(run_orch("validate", P93, "-p", "node=3"))
    assert "no parameter 'node'" in err and "did you mean 'nodes'?" in err


def test_target_and_exclude_that_match_nothing_are_errors_with_suggestions(tmp_path):
    profile = write_profile(tmp_path, [fake("cluster.cni"), fake("b")])
    state = ["--state", str(tmp_path / "s.db")]
    err = _one_line_error(run_orch("plan", str(profile), *state, "--target", "clster.cni"))
    assert "--target clster.cni matches no step" in err
    assert "did you mean 'cluster.cni'?" in err
    # Terraform refuses a selection that selects nothing; orch does the same for --exclude
    err = _one_line_error(run_orch("plan", str(profile), *state, "--exclude", "nope"))
    assert "--exclude nope matches no step" in err
    res = run_orch("plan", str(profile), *state, "--exclude", "b")
    assert res.returncode == 0 and "Plan: 1 to create" in res.stdout


def test_orch_components_suggests():
    err = _one_line_error(run_orch("components", "os.instal"))
    assert "no component type 'os.instal'" in err and "did you mean 'os.install'?" in err


def test_a_profile_given_as_inventory_is_named_plainly():
    err = _one_line_error(run_orch("plan", P93, "-i", P93))
    assert "this file is a Profile, not an Inventory" in err
    assert "give a Profile as the first argument (PROFILE)" in err
    assert "Invalid enum value" not in err
    err = _one_line_error(run_orch("plan", str(REPO / "inventories" / "lab.yaml")))
    assert "this file is an Inventory, not a Profile" in err


def test_a_role_count_below_its_minimum_says_at_least():
    err = _one_line_error(run_orch("validate", P93, "-p", "nodes=2"))
    assert "role 'pve' needs at least 3 nodes, got 2 (parameter nodes)" in err
    assert "pass -p nodes=3" in err and "93-proxmox-ceph.yaml:" in err


def test_state_rm_of_nothing_exits_1_and_suggests(tmp_path):
    profile = write_profile(tmp_path, [fake("alpha")])
    state = ["--state", str(tmp_path / "s.db")]
    assert run_orch("apply", str(profile), *state, "--auto-approve").returncode == 0
    err = _one_line_error(run_orch("state", "rm", str(profile), "alpah", *state))
    assert "no record of alpah; nothing was forgotten" in err
    assert "did you mean 'alpha'?" in err
    assert "alpha" in run_orch("state", "list", str(profile), *state).stdout
    res = run_orch("state", "rm", str(profile), "alpha", *state)
    assert res.returncode == 0 and "forgot 1 record(s)" in res.stdout
    err = _one_line_error(run_orch("state", "show", str(profile), "alpha", *state))
    assert "no record of alpha" in err


def test_state_mark_done_refuses_a_step_that_is_not_external(tmp_path):
    profile = write_profile(tmp_path, [fake("auto"),
                                       {"name": "by-hand", "type": "external",
                                        "reason": "flash it"}])
    state = ["--state", str(tmp_path / "s.db")]
    err = _one_line_error(run_orch("state", "mark-done", str(profile), "auto", *state))
    assert "auto is not an external step (driver fake)" in err
    assert "nothing was recorded" in err
    err = _one_line_error(run_orch("state", "mark-done", str(profile), "by-hnd", *state))
    assert "did you mean 'by-hand'?" in err
    listing = json.loads(run_orch("state", "list", str(profile), *state, "--format",
                                  "json").stdout)
    assert listing == []
    assert run_orch("state", "mark-done", str(profile), "by-hand", *state).returncode == 0


def test_state_list_and_runs_as_json(tmp_path):
    profile = write_profile(tmp_path, [fake("a", on="node")])
    state = ["--state", str(tmp_path / "s.db")]
    assert run_orch("apply", str(profile), *state, "--auto-approve").returncode == 0
    listing = json.loads(run_orch("state", "list", str(profile), *state, "--format",
                                  "json").stdout)
    assert [r["id"] for r in listing] == ["node-1/a", "node-2/a"]
    assert {r["status"] for r in listing} == {"applied"} and listing[0]["driver"] == "fake"
    runs = json.loads(run_orch("state", "runs", str(profile), *state, "--format",
                               "json").stdout)
    assert len(runs) == 1 and runs[0]["status"] == "succeeded" and runs[0]["mode"]
    assert runs[0]["run_id"] == listing[0]["run"]


def test_unknown_driver_and_preflight_check_suggest(tmp_path):
    profile = write_profile(tmp_path, [{"name": "a", "type": "fake.step", "driver": "fak"}])
    err = _one_line_error(run_orch("plan", str(profile), "--state", str(tmp_path / "s.db")))
    assert "no such driver" in err and "did you mean 'fake'?" in err
    profile = write_profile(tmp_path, [fake("a", on="node")],
                            preflight=[{"type": "min_node", "with": {"role": "node", "min": 1}}])
    err = _one_line_error(run_orch("validate", str(profile)))
    assert "unknown preflight check 'min_node'" in err and "did you mean 'min_nodes'?" in err


def test_suggestions_pick_the_closest_name_or_none():
    from orchestrator.suggest import did_you_mean, struct_fields_at
    assert did_you_mean("min_node", ["max_nodes", "min_nodes", "note"]) == \
        "did you mean 'min_nodes'?"
    assert did_you_mean("OS.Instal", ["os.install"]) == "did you mean 'os.install'?"
    assert did_you_mean("zzz", ["os.install", "fake.step"]) == ""
    from orchestrator import model
    assert "count" in struct_fields_at(model.Profile, ("roles", "pve"))
    assert struct_fields_at(model.Profile, ("no-such-field",)) == []


def test_an_exclusion_matching_nothing_is_only_an_error_where_a_person_typed_it(tmp_path):
    # the lab's destroy excludes ssh-ready.* whether or not such steps were recorded
    from orchestrator.loader import load
    from orchestrator.plan import Mode
    from orchestrator.planner import PlanOptions, make_plan
    from orchestrator.state import open_store
    profile = write_profile(tmp_path, [fake("a")])
    store = open_store(str(tmp_path / "s.db"))
    plan = make_plan(load(profile), store, PlanOptions(Mode.DESTROY, excludes=("ssh-ready.*",)))
    assert plan.steps == ()
    store.close()
