"""The apply display: pipe lines with times and durations, the live table (fixed header,
failures first, natural order, grouped rows, elapsed time, log lines above it), the recap
after the run, copy-pasteable hints and the destroy question."""

from __future__ import annotations

import io
import re
import time

import pytest

from orchestrator import log
from orchestrator.display import confirmation, mark_done_command, recap_lines
from orchestrator.executor import ApplyReport, StepOutcome, StepStatus
from orchestrator.plan import Action, Mode, Plan, PlannedStep
from orchestrator.progress import LiveProgress, PlainProgress, component_of, natural_key
from orchestrator.step import Step
from tests.engine.helpers import fake, run_orch, write_profile


def _plan(ids: list[str], mode: Mode = Mode.NORMAL, **kw) -> Plan:
    action = Action.DELETE if mode is Mode.DESTROY else Action.CREATE
    steps = tuple(PlannedStep(Step(i, "fake.step", "fake", component_of(i), "l1"), action, "r")
                  for i in ids)
    return Plan("p", mode, steps, profile_path="profiles/x.yaml",
                inventory_path="inventories/y.yaml",
                state_url="profiles/x.orch.db", **kw)


def test_natural_order_and_components():
    ids = ["node-10/a", "node-2/a", "node-1/a", "cluster"]
    assert sorted(ids, key=natural_key) == ["cluster", "node-1/a", "node-2/a", "node-10/a"]
    assert component_of("node-3/os.install/power-off") == "os.install"
    assert component_of("cluster.cni") == "cluster.cni"


def test_pipe_lines_carry_the_time_and_each_steps_duration():
    buf = io.StringIO()
    p = PlainProgress(2, buf)
    p("started", "node-1/a", "create")
    time.sleep(0.05)
    p("succeeded", "node-1/a", "")
    p("skipped", "node-2/a", "because node-1/b failed")
    lines = buf.getvalue().splitlines()
    assert re.fullmatch(r"\d\d:\d\d:\d\d \[0/2\] started   node-1/a \(create\)", lines[0])
    assert re.fullmatch(r"\d\d:\d\d:\d\d \[1/2\] succeeded node-1/a \(0\.\ds\)", lines[1])
    assert lines[2].endswith("[2/2] skipped   node-2/a: because node-1/b failed")


def _live(height: int = 20) -> LiveProgress:
    live = LiveProgress(100, io.StringIO())
    live.console.size = (120, height)  # type: ignore[assignment]
    return live


def test_live_rows_failures_first_sorted_grouped_with_elapsed_time():
    live = _live()
    for i in (10, 2, 1):
        live("started", f"node-{i}/ssh.wait", "create")
    for i in range(1, 26):
        live("started", f"node-{i}/os.install", "create")
    live.started_at["node-2/ssh.wait"] -= 12
    live("started", "node-30/x", "create")
    live("failed", "node-30/x", "boom")
    rows = [text for _, text in live.rows(20)]
    assert rows[0] == "✗ node-30/x: boom"
    assert rows[1].startswith("⏵ os.install ×25  creating… [longest ")
    assert rows[1].endswith("node-1/os.install … node-25/os.install")
    assert rows[2] == "⏵ ssh.wait ×3  creating… [longest 12s elapsed]  node-1/ssh.wait … " \
                      "node-10/ssh.wait"
    assert len(rows) == 3
    live2 = _live()
    live2("started", "node-10/a", "update")
    live2("started", "node-2/b", "delete")
    live2.started_at["node-2/b"] -= 7
    assert [t for _, t in live2.rows(20)] == ["⏵ node-2/b  destroying… [7s elapsed]",
                                              "⏵ node-10/a  updating… [0s elapsed]"]


def test_failures_are_never_hidden_below_the_running_steps():
    live = _live()
    for i in range(1, 200):
        live("started", f"n-{i}/c{i}", "create")
    for i in (5, 50, 150):
        live("failed", f"n-{i}/c{i}", f"error {i}")
    rows = [t for _, t in live.rows(10)]
    assert len(rows) == 10
    assert rows[:3] == ["✗ n-5/c5: error 5", "✗ n-50/c50: error 50", "✗ n-150/c150: error 150"]
    assert rows[-1].startswith("… ") and rows[-1].endswith(" more running")


def test_the_header_keeps_its_columns_as_counts_grow():
    live = _live()
    first = live.header()
    for i in range(1, 60):
        live("started", f"n-{i}/c", "create")
        live("succeeded", f"n-{i}/c", "")
    assert [m.start() for m in re.finditer("│", first)] == \
        [m.start() for m in re.finditer("│", live.header())]


def test_log_lines_are_printed_above_the_live_display(capsys):
    from rich.console import Console
    out = io.StringIO()
    live = LiveProgress(3, out)
    live.console = Console(file=out, force_terminal=True, width=100)
    from rich.live import Live
    live.live = Live(console=live.console, get_renderable=live._render, auto_refresh=False)
    log.configure(level="warning", fmt="console")
    try:
        with live:
            live("started", "node-1/a", "create")
            log.get_logger("t").warning("disk is slow", step="node-1/a")
            live("succeeded", "node-1/a", "")
    finally:
        log.configure(level="warning", fmt="console")
    text = out.getvalue()
    assert "disk is slow" in text  # through the live console, not around it
    assert "disk is slow" not in capsys.readouterr().err


def _report(plan: Plan, statuses: dict[str, tuple[StepStatus, float]], **extra) -> ApplyReport:
    r = ApplyReport("run-1", wall_seconds=3.2)
    for sid, (status, took) in statuses.items():
        r.outcomes[sid] = StepOutcome(sid, status, Action.CREATE, 1, took, **extra.get(sid, {}))
    return r


def test_the_recap_lists_each_step_with_its_result_and_duration():
    ids = ["node-10/a", "node-2/a", "hand", "node-2/b", "node-3/b"]
    plan = _plan(ids)
    report = _report(plan, {
        "node-10/a": (StepStatus.SUCCEEDED, 1.25), "node-2/a": (StepStatus.FAILED, 0.5),
        "hand": (StepStatus.STOPPED, 0.0), "node-2/b": (StepStatus.SKIPPED, 0.0),
        "node-3/b": (StepStatus.SKIPPED, 0.0)},
        **{"node-2/a": {"error": "boom"}, "hand": {"error": "external: flash it"},
           "node-2/b": {"root_cause": "node-2/a"}, "node-3/b": {"root_cause": "node-2/a"}})
    lines = recap_lines(report, plan, {"nodes": "3"})
    text = "\n".join(lines)
    assert lines[1].startswith("RECAP ")
    rows = lines[2:7]
    assert [r.split()[0] for r in rows] == ["hand", "node-2/a", "node-2/b", "node-3/b",
                                            "node-10/a"]
    assert re.search(r"node-10/a +ok +create +1\.2s", text)
    assert "FAILED node-2/a (after 1 attempt(s), 0.5s): boom" in text
    assert "skipped 2 step(s) that depend on node-2/a: node-2/b, node-3/b" in text
    assert ("then: orch state mark-done profiles/x.yaml -i inventories/y.yaml -p nodes=3 "
            "hand") in text


def test_a_big_recap_is_grouped_per_component():
    ids = [f"node-{i}/os.install" for i in range(1, 101)]
    plan = _plan(ids)
    report = _report(plan, {i: (StepStatus.SUCCEEDED, 2.0) for i in ids})
    report.outcomes["node-7/os.install"].status = StepStatus.FAILED
    lines = recap_lines(report, plan)
    [row] = [ln for ln in lines if ln.startswith("os.install")]
    assert re.match(r"os.install +×100 +99 ok, 1 failed +longest 2\.0s", row)
    assert "FAILED node-7/os.install" in "\n".join(lines)


def test_the_mark_done_hint_is_the_real_command():
    plan = _plan(["x"])
    assert mark_done_command(plan, "pve-1/bios flash") == \
        "orch state mark-done profiles/x.yaml -i inventories/y.yaml 'pve-1/bios flash'"
    other = _plan(["x"])
    object.__setattr__(other, "state_url", "postgresql://db/orch")
    assert mark_done_command(other, "s").endswith("--state postgresql://db/orch s")


def test_destroy_asks_its_own_question():
    q, cancelled = confirmation(_plan(["a", "b"], Mode.DESTROY))
    assert q.startswith("Really destroy 2 step(s) recorded for 'p'? There is no undo.")
    assert cancelled == "Destroy cancelled."
    q, _ = confirmation(_plan(["a"], Mode.DESTROY, targets=("a",)))
    assert "(targeted)" in q
    assert confirmation(_plan(["a"]))[0].startswith("Apply these actions?")


@pytest.mark.parametrize("verb", ["apply", "destroy"])
def test_apply_and_destroy_in_a_pipe_print_times_and_a_recap(tmp_path, verb):
    profile = write_profile(tmp_path, [fake("a", on="node"), fake("b", after=["a"])])
    state = ["--state", str(tmp_path / "s.db")]
    if verb == "destroy":
        assert run_orch("apply", str(profile), *state, "--auto-approve").returncode == 0
    res = run_orch(verb, str(profile), *state, "--auto-approve")
    assert res.returncode == 0, res.stderr
    assert re.search(r"^\d\d:\d\d:\d\d \[\d/3\] succeeded node-1/a \(\d+\.\ds\)$",
                     res.stderr, re.M)
    assert re.search(r"^node-2/a +ok +(create|delete) +\d+\.\ds$", res.stderr, re.M)
    res = run_orch(verb, str(profile), *state, input="no\n")
    assert "nothing was done" in res.stderr or "No changes" in res.stderr
