"""Verbs operators reach for: state mv, output, refresh-only, parameter files and ORCH_*
defaults, version, completion."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.engine.helpers import REPO, fake, run_orch, write, write_profile


def _state(tmp_path):
    return ["--state", str(tmp_path / "s.db")]


# -- state mv ------------------------------------------------------------------------------
def test_renaming_a_component_with_state_mv_plans_no_destroy(tmp_path):
    profile = write_profile(tmp_path, [fake("cni", on="node", value=1), fake("other")])
    state = _state(tmp_path)
    assert run_orch("apply", str(profile), *state, "--auto-approve").returncode == 0
    renamed = write_profile(tmp_path, [fake("network", on="node", value=1), fake("other")])
    assert renamed == profile
    res = run_orch("plan", str(profile), *state)
    assert "2 to create" in res.stdout and "2 to destroy" in res.stdout  # without a move
    res = run_orch("state", "mv", str(profile), "cni", "network", *state, "--dry-run")
    assert "node-1/cni -> node-1/network" in res.stdout and "nothing was changed" in res.stdout
    res = run_orch("state", "mv", str(profile), "cni", "network", *state)
    assert res.returncode == 0 and "moved 2 record(s)" in res.stdout, res.stderr
    res = run_orch("plan", str(profile), *state, "--detailed-exitcode")
    assert res.returncode == 0 and "No changes" in res.stdout, res.stdout
    listing = json.loads(run_orch("state", "list", str(profile), *state, "--format",
                                  "json").stdout)
    assert {r["id"]: r["component"] for r in listing} == {
        "node-1/network": "network", "node-2/network": "network", "other": "other"}
    modes = [r["mode"] for r in json.loads(run_orch("state", "runs", str(profile), *state,
                                                    "--format", "json").stdout)]
    assert "state-mv" in modes


def test_state_mv_of_one_step_and_its_refusals(tmp_path):
    profile = write_profile(tmp_path, [fake("a"), fake("b")])
    state = _state(tmp_path)
    assert run_orch("apply", str(profile), *state, "--auto-approve").returncode == 0
    res = run_orch("state", "mv", str(profile), "a", "b", *state)
    assert res.returncode == 1 and "b already recorded; nothing was moved" in res.stderr
    res = run_orch("state", "mv", str(profile), "aa", "c", *state)
    assert res.returncode == 1 and "did you mean 'a'?" in res.stderr
    res = run_orch("state", "mv", str(profile), "a", "c", *state)
    assert res.returncode == 0 and "a -> c" in res.stdout
    ids = [r["id"] for r in json.loads(run_orch("state", "list", str(profile), *state,
                                                "--format", "json").stdout)]
    assert ids == ["b", "c"]


# -- output --------------------------------------------------------------------------------
def test_output_lists_published_outputs_and_prints_one_value_bare(tmp_path):
    profile = write_profile(tmp_path, [fake("a", on="node"), fake("b")])
    state = _state(tmp_path)
    assert run_orch("apply", str(profile), *state, "--auto-approve").returncode == 0
    data = json.loads(run_orch("output", str(profile), *state, "--format", "json").stdout)
    assert set(data) == {"node-1/a", "node-2/a", "b"}
    assert all(set(v) == {"applied"} for v in data.values())
    text = run_orch("output", str(profile), "node-*", *state).stdout
    assert text.startswith("node-1/a\n  applied = ") and "\nb\n" not in text
    res = run_orch("output", str(profile), "b", "applied", *state)
    assert res.returncode == 0 and res.stdout.strip() == data["b"]["applied"]
    res = run_orch("output", str(profile), "b", "aplied", *state)
    assert res.returncode == 1 and "did you mean 'applied'?" in res.stderr
    res = run_orch("output", str(profile), "node-*", "applied", *state)
    assert res.returncode == 1 and "matches 2 steps" in res.stderr
    res = run_orch("output", str(profile), "nope", *state)
    assert res.returncode == 1 and "no applied step matching nope" in res.stderr


def test_output_masks_what_looks_secret():
    from orch_cli.outputcmd import masked
    shown = masked({"address": "192.0.2.1", "admin_password": "hunter2",
                    "kubeconfig": {"$secret": "file:/x/kubeconfig"},
                    "nested": {"token": "abc", "names": ["a"]}})
    assert shown == {"address": "192.0.2.1", "admin_password": "********",
                     "kubeconfig": "<secret file:/x/kubeconfig>",
                     "nested": {"token": "********", "names": ["a"]}}


# -- refresh-only ----------------------------------------------------------------------------
def test_refresh_only_reads_what_is_gone_into_state_and_changes_nothing(tmp_path):
    store = tmp_path / "fake-store.json"
    profile = write_profile(tmp_path, [fake("a"), fake("b", after=["a"])],
                            drivers={"fake": {"store": str(store)}})
    state = _state(tmp_path)
    assert run_orch("apply", str(profile), *state, "--auto-approve").returncode == 0
    data = json.loads(store.read_text())
    del data["created"]["b"]  # someone removed b by hand
    store.write_text(json.dumps(data))
    res = run_orch("plan", str(profile), *state, "--refresh-only", "--detailed-exitcode")
    assert res.returncode == 2, res.stderr
    assert "- b: gone" in res.stdout and "1 gone" in res.stdout
    assert "nothing" in res.stdout.lower()
    assert len(json.loads(run_orch("state", "list", str(profile), *state,
                                   "--format", "json").stdout)) == 2  # the plan wrote nothing
    res = run_orch("apply", str(profile), *state, "--refresh-only")
    assert res.returncode == 1 and "nothing was recorded" in res.stderr  # no TTY, no approve
    res = run_orch("apply", str(profile), *state, "--refresh-only", "--auto-approve")
    assert res.returncode == 0 and "Recorded 1 change(s)" in res.stderr, res.stderr
    ids = [r["id"] for r in json.loads(run_orch("state", "list", str(profile), *state,
                                                "--format", "json").stdout)]
    assert ids == ["a"]
    assert "b" not in json.loads(store.read_text())["created"]  # nothing was created again
    res = run_orch("plan", str(profile), *state, "--refresh-only", "--detailed-exitcode")
    assert res.returncode == 0
    assert "Plan: 1 to create" in run_orch("plan", str(profile), *state).stdout


# -- parameter files and ORCH_* defaults ------------------------------------------------------
def _param_profile(tmp_path):
    return write_profile(tmp_path, [fake("a", on="node")],
                         roles={"node": {"count": {"param": "nodes"}}},
                         parameters={"nodes": {"type": "int", "default": 1},
                                     "label": {"type": "str", "default": "x"}})


def test_var_files_then_p_override_the_defaults(tmp_path):
    profile = _param_profile(tmp_path)
    one = write(tmp_path / "one.yaml", "nodes: 3\nlabel: from-one\n")
    two = write(tmp_path / "two.yaml", "nodes: 4\n")
    state = _state(tmp_path)

    def count(*args: str) -> int:
        res = run_orch("plan", str(profile), *state, "--format", "json", *args)
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)["parameters"]["nodes"]

    assert count() == 1
    assert count("-P", str(one)) == 3
    assert count("-P", str(one), "--var-file", str(two)) == 4   # later files win
    assert count("-P", str(two), "-p", "nodes=2") == 2           # -p wins over every file
    bad = write(tmp_path / "bad.yaml", "nodes: [1, 2]\n")
    res = run_orch("plan", str(profile), *state, "-P", str(bad))
    assert res.returncode == 1 and f"{bad}:1:" in res.stderr
    assert "parameter 'nodes' must be a single value" in res.stderr


def test_orch_environment_defaults_and_their_precedence(tmp_path):
    profile = write_profile(tmp_path, [fake("a", on="node")])
    env_db = tmp_path / "from-env.db"
    env = {"ORCH_STATE": str(env_db), "ORCH_PARALLELISM": "0"}
    res = run_orch("apply", str(profile), "--auto-approve", env=env)
    assert res.returncode == 1 and "ORCH_PARALLELISM" in res.stderr  # a bad default is named
    env["ORCH_PARALLELISM"] = "3"
    res = run_orch("apply", str(profile), "--auto-approve", env=env)
    assert res.returncode == 0 and env_db.exists()
    assert not (tmp_path / "profile.orch.db").exists()
    res = run_orch("state", "list", str(profile), env={"ORCH_STATE": str(env_db)})
    assert "node-1/a" in res.stdout
    # the command line wins over the environment
    res = run_orch("state", "list", str(profile), "--state", str(tmp_path / "other.db"),
                   env={"ORCH_STATE": str(env_db)})
    assert res.returncode == 1 and res.stdout == "" and "other.db" in res.stderr
    inv = write(tmp_path / "inv.yaml", """
        apiVersion: orch/v1
        kind: Inventory
        metadata: {name: i}
        hosts: [{name: h1, address: 192.0.2.1}, {name: h2, address: 192.0.2.2}]
    """)
    res = run_orch("inventory", str(profile), env={"ORCH_INVENTORY": str(inv)})
    assert res.returncode == 0 and "ansible_host: 192.0.2.2" in res.stdout
    help_text = run_orch("apply", "--help").stdout
    assert "ORCH_PARALLELISM" in help_text and "ORCH_STATE" in help_text


# -- version and completion --------------------------------------------------------------------
def test_version_lists_orch_python_and_driver_dependencies():
    import orchestrator
    res = run_orch("--version")
    assert res.returncode == 0 and res.stdout.startswith(f"orch {orchestrator.__version__}")
    data = json.loads(run_orch("version", "--format", "json").stdout)
    assert data["orch"] == orchestrator.__version__
    assert set(data["drivers"]) >= {"fake", "redfish", "libvirt", "ssh"}
    assert data["drivers"]["fake"]["requires"] == {}
    text = run_orch("version").stdout
    assert text.startswith(f"orch {orchestrator.__version__}") and "Python 3." in text
    assert "click" in text and "redfish" in text


def test_the_package_version_matches_the_engine_version():
    import tomllib

    import orchestrator
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert meta["version"] == orchestrator.__version__
    assert meta["name"] == orchestrator.DISTRIBUTION


def _complete(words: str, shell: str = "bash") -> list[str]:
    parts = words.split(" ")
    env = dict(os.environ, _ORCH_COMPLETE=f"{shell}_complete", COMP_WORDS=words,
               COMP_CWORD=str(len(parts) - 1), PYTHONPATH=str(REPO))
    code = "from orch_cli.main import cli; cli(prog_name='orch')"
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, cwd=REPO, timeout=60)
    return [ln.split(",", 1)[-1] for ln in res.stdout.splitlines()]


def test_completion_scripts_for_each_shell():
    for shell, marker in (("bash", "complete -o nosort -F _orch_completion orch"),
                          ("zsh", "#compdef orch"), ("fish", "complete --no-files --command orch")):
        res = run_orch("completion", shell)
        assert res.returncode == 0 and marker in res.stdout, (shell, res.stdout[:300])
        assert "_ORCH_COMPLETE" in res.stdout
    assert run_orch("completion", "tcsh").returncode == 1  # a usage error


def test_completion_knows_component_types_and_step_ids(tmp_path):
    assert set(_complete("orch components os.ins")) == {"os.install"}
    assert "state" in _complete("orch sta")
    profile = write_profile(tmp_path, [fake("alpha", on="node"), fake("beta")])
    state = str(tmp_path / "s.db")
    assert run_orch("apply", str(profile), "--state", state, "--auto-approve").returncode == 0
    got = _complete(f"orch plan {profile} --target node-1/")
    assert got == ["node-1/alpha"], got
    assert set(_complete(f"orch state rm {profile} --state {state} n")) == {
        "node-1/alpha", "node-2/alpha"}


def test_refresh_only_refuses_a_saved_plan(tmp_path):
    profile = write_profile(tmp_path, [fake("a")])
    out = tmp_path / "plan.json"
    assert run_orch("plan", str(profile), *_state(tmp_path), "--out", str(out)).returncode == 0
    res = run_orch("apply", str(out), "--refresh-only", "--auto-approve")
    assert res.returncode == 1 and "not a saved plan; nothing was done" in res.stderr
    assert run_orch("state", "list", str(profile), *_state(tmp_path)).stdout == ""


# -- moved: in a profile ------------------------------------------------------------------------
def _with_moved(profile, entries):
    import yaml
    doc = yaml.safe_load(profile.read_text())
    doc["moved"] = entries
    profile.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_a_moved_entry_plans_a_rename_as_no_change_and_apply_records_it(tmp_path):
    profile = write_profile(tmp_path, [fake("cni", on="node", value=1), fake("app")])
    state = _state(tmp_path)
    assert run_orch("apply", str(profile), *state, "--auto-approve").returncode == 0
    write_profile(tmp_path, [fake("network", on="node", value=1), fake("app")])
    _with_moved(profile, [{"from": "cni", "to": "network"}])
    res = run_orch("plan", str(profile), *state, "--detailed-exitcode")
    assert res.returncode == 0 and "No changes" in res.stdout, res.stdout
    assert "node-1/cni is now node-1/network" in res.stdout
    # planning wrote nothing: the records are still under their old ids
    ids = [r["id"] for r in json.loads(run_orch("state", "list", str(profile), *state,
                                                "--format", "json").stdout)]
    assert ids == ["app", "node-1/cni", "node-2/cni"]
    res = run_orch("apply", str(profile), *state, "--auto-approve")
    assert res.returncode == 0 and "Recorded the profile's moved: entries" in res.stderr
    ids = [r["id"] for r in json.loads(run_orch("state", "list", str(profile), *state,
                                                "--format", "json").stdout)]
    assert ids == ["app", "node-1/network", "node-2/network"]
    # the entry is now a no-op; dropping it changes nothing either
    _with_moved(profile, [])
    res = run_orch("plan", str(profile), *state, "--detailed-exitcode")
    assert res.returncode == 0 and "is now" not in res.stdout


def test_a_saved_plan_with_moves_applies_as_reviewed(tmp_path):
    profile = write_profile(tmp_path, [fake("a"), fake("b", after=["a"])])
    state = _state(tmp_path)
    assert run_orch("apply", str(profile), *state, "--auto-approve").returncode == 0
    write_profile(tmp_path, [fake("a2"), fake("b", after=["a2"]), fake("c")])
    _with_moved(profile, [{"from": "a", "to": "a2"}])
    out = tmp_path / "plan.json"
    res = run_orch("plan", str(profile), *state, "--out", str(out))
    assert "Plan: 1 to create, 0 to change, 0 to replace, 0 to destroy" in res.stdout
    res = run_orch("apply", str(out))
    assert res.returncode == 0 and "1 succeeded" in res.stderr, res.stderr
    ids = [r["id"] for r in json.loads(run_orch("state", "list", str(profile), *state,
                                                "--format", "json").stdout)]
    assert ids == ["a2", "b", "c"]


def test_a_moved_entry_onto_a_recorded_id_is_refused(tmp_path):
    profile = write_profile(tmp_path, [fake("a"), fake("b")])
    state = _state(tmp_path)
    assert run_orch("apply", str(profile), *state, "--auto-approve").returncode == 0
    _with_moved(profile, [{"from": "a", "to": "b"}])
    res = run_orch("plan", str(profile), *state)
    assert res.returncode == 1 and "moved: a -> b: b is recorded too" in res.stderr
    # named at the entry's line in the profile, as every other profile error is
    line = next(i for i, text in enumerate(profile.read_text().splitlines(), 1)
                if "from: a" in text)
    assert f"{profile}:{line}:" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    _with_moved(profile, [{"form": "a", "to": "c"}])
    res = run_orch("plan", str(profile), *state)
    assert res.returncode == 1 and "did you mean 'from'?" in res.stderr
