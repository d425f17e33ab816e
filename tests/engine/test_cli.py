"""The `orch` command: formats, exit codes, saved plans, listings."""

import json

from tests.engine.helpers import fake, run_orch, write_profile


def test_plan_apply_replan_exit_codes(tmp_path):
    profile = write_profile(tmp_path, [fake("a", on="node"), fake("b", after=["a"])])
    state = ["--state", str(tmp_path / "s.db")]
    res = run_orch("plan", str(profile), *state, "--detailed-exitcode")
    assert res.returncode == 2 and "Plan: 3 to create" in res.stdout
    res = run_orch("apply", str(profile), *state)  # no TTY and no --auto-approve
    assert res.returncode == 1 and "nothing was done" in res.stderr
    res = run_orch("apply", str(profile), *state, "--auto-approve")
    assert res.returncode == 0 and "3 succeeded" in res.stderr
    res = run_orch("plan", str(profile), *state, "--detailed-exitcode")
    assert res.returncode == 0 and "No changes" in res.stdout


def test_partial_apply_exits_3_and_names_the_root_cause(tmp_path):
    profile = write_profile(tmp_path, [fake("bad", fail="permanent"),
                                       fake("child", after=["bad"]), fake("fine")])
    res = run_orch("apply", str(profile), "--state", str(tmp_path / "s.db"), "--auto-approve")
    assert res.returncode == 3
    assert "FAILED bad" in res.stderr and "skipped 1 step(s) that depend on bad" in res.stderr


def test_formats_and_saved_plan_show(tmp_path):
    profile = write_profile(tmp_path, [fake("a", on="node")])
    state = ["--state", str(tmp_path / "s.db")]
    out = tmp_path / "plan.json"
    res = run_orch("plan", str(profile), *state, "--out", str(out), "--format", "json")
    data = json.loads(res.stdout)
    assert data["format_version"] == 2 and len(data["steps"]) == 2
    assert data["inputs_hash"] and data["state_hash"]
    assert json.loads(out.read_text()) == data
    assert run_orch("show", str(out)).stdout.startswith("orch plan for t")
    md = run_orch("show", str(out), "--format", "markdown").stdout
    assert md.startswith("<!-- orch-plan:t:-") and "### orch plan: `t`" in md and "<details>" in md
    dot = run_orch("plan", str(profile), *state, "--format", "dot").stdout
    assert dot.startswith('digraph "t"') and '"node-1/a"' in dot
    assert run_orch("graph", str(profile), *state).stdout == dot


def test_drivers_and_components_are_listed(tmp_path):
    res = run_orch("drivers")
    assert res.returncode == 0
    assert "fake" in res.stdout and "setting store (str" in res.stdout
    res = run_orch("components", "os.install")
    assert "method (virtual-media|pxe, default" in res.stdout
    assert "install_timeout (float" in res.stdout
    assert run_orch("components", "no.such").returncode == 1


def test_plan_does_not_import_drivers_it_does_not_need(tmp_path):
    import subprocess
    import sys
    profile = write_profile(tmp_path, [fake("a")])
    code = ("import sys; from orch_cli.main import cli\n"
            "try: cli(['plan', sys.argv[1], '--state', sys.argv[2]], prog_name='orch')\n"
            "except SystemExit: pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('drivers.')))\n"
            "print([m for m in ('libvirt', 'sushy', 'paramiko', 'kubernetes', 'openstack',"
            " 'structlog', 'rich') if m in sys.modules])")
    res = subprocess.run([sys.executable, "-c", code, str(profile), str(tmp_path / "s.db")],
                         capture_output=True, text=True, cwd=tmp_path.parent)
    lines = res.stdout.strip().splitlines()
    assert lines[-2] == "['drivers.fake']" and lines[-1] == "[]", res.stdout + res.stderr


def test_state_list_and_mark_done_for_external_steps(tmp_path):
    profile = write_profile(tmp_path, [
        {"name": "by-hand", "type": "external", "reason": "flash the firmware by hand"},
        fake("after", after=["by-hand"])])
    state = ["--state", str(tmp_path / "s.db")]
    res = run_orch("apply", str(profile), *state, "--auto-approve")
    assert res.returncode == 3 and "BY HAND by-hand: external: flash the firmware" in res.stderr
    assert run_orch("state", "mark-done", str(profile), "by-hand", *state).returncode == 0
    res = run_orch("apply", str(profile), *state, "--auto-approve")
    assert res.returncode == 0 and "1 succeeded" in res.stderr
    listing = run_orch("state", "list", str(profile), *state).stdout
    assert "applied  by-hand  [external]" in listing


def test_json_logs_are_one_object_per_line_and_nothing_else(tmp_path):
    profile = write_profile(tmp_path, [fake("a", on="node"), fake("bad", fail="permanent")])
    res = run_orch("--log-format", "json", "--log-level", "debug", "apply", str(profile),
                   "--state", str(tmp_path / "s.db"), "--auto-approve")
    assert res.returncode == 3
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    # stderr is only JSON objects, one per line: no plan text, progress or recap mixed in
    records = [json.loads(ln) for ln in lines]
    assert all(isinstance(r, dict) for r in records)
    events = [r["event"] for r in records]
    assert {"plan", "apply started", "step failed", "apply finished", "apply.finished"} \
        <= set(events)
    assert all({"event", "level", "timestamp"} <= set(r) for r in records)
    failed = next(r for r in records if r["event"] == "step failed")
    assert failed["step"] == "bad" and failed["level"] == "error"
    # per-step events with durations
    started = {r["step"] for r in records if r["event"] == "step.started"}
    finished = {r["step"]: r for r in records if r["event"] == "step.finished"}
    assert started == {"node-1/a", "node-2/a", "bad"} == set(finished)
    assert finished["bad"]["outcome"] == "failed" and finished["bad"]["level"] == "error"
    assert finished["node-1/a"] | {"duration_s": 0} == {
        **finished["node-1/a"], "duration_s": 0, "outcome": "succeeded", "action": "create"}
    assert all(isinstance(r["duration_s"], float) for r in finished.values())
    summary = next(r for r in records if r["event"] == "apply.finished")
    assert summary["failed"] == 1 and summary["succeeded"] == 2
    assert summary["failed_steps"] == ["bad"]
    # an error is one JSON object too
    res = run_orch("--log-format", "json", "apply", str(tmp_path / "nope.json"))
    [err] = [json.loads(ln) for ln in res.stderr.splitlines()]
    assert res.returncode == 1 and err["event"] == "error" and "nope.json" in err["message"]


def test_a_missing_plan_file_is_an_error_not_a_traceback(tmp_path):
    res = run_orch("apply", str(tmp_path / "nope.json"))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "nope.json: No such file or directory" in res.stderr
