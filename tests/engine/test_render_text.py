"""The text plan (defaults hidden unless --verbose, colour only on a terminal, per-layer
counts, a targeting notice) and the DOT graph (clusters by layer, a legend)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from orchestrator.loader import load
from orchestrator.planner import PlanOptions, make_plan
from orchestrator.render.dot import render_dot
from orchestrator.render.text import render_text, use_color
from orchestrator.state import open_store
from tests.engine.helpers import fake, run_orch, write_profile


@pytest.fixture
def store(tmp_path):
    s = open_store(str(tmp_path / "state.db"))
    yield s
    s.close()


def _profile(tmp_path):
    layers = [{"name": "base", "components": [
                  fake("a", on="node"),
                  {"name": "cmd", "type": "ssh.command", "on": "node",
                   "with": {"command": "true"}}]},
              {"name": "top", "components": [fake("b", after=["a"], value="v")]}]
    return write_profile(tmp_path, [], layers=layers)


def test_defaults_and_internal_inputs_are_hidden_unless_verbose(tmp_path, store):
    plan = make_plan(load(_profile(tmp_path)), store, PlanOptions(refresh=False))
    quiet = render_text(plan)
    loud = render_text(plan, verbose=True)
    for hidden in ('fail: ""', "leak: false", "env: {}", 'unless: ""'):
        assert hidden not in quiet, hidden
        assert hidden in loud, hidden
    # what the user wrote, and defaults that mean something, stay
    assert 'value: "v"' in quiet and 'command: "true"' in quiet


def test_the_power_steps_internal_passing_flag_is_hidden(tmp_path):
    from pathlib import Path
    golden = (Path(__file__).resolve().parents[1] / "plans" / "93-proxmox-ceph" /
              "lab.txt").read_text()
    assert "passing:" not in golden and 'state: "off"' in golden


def test_layers_carry_their_counts(tmp_path, store):
    plan = make_plan(load(_profile(tmp_path)), store, PlanOptions(refresh=False))
    text = render_text(plan)
    assert "Layer base (4 to create):" in text and "Layer top (1 to create):" in text
    assert "Targeting" not in text


def test_a_targeted_plan_says_so_at_the_top_and_above_the_summary(tmp_path, store):
    plan = make_plan(load(_profile(tmp_path)), store,
                     PlanOptions(targets=("b",), excludes=("node-2/*",), refresh=False))
    text = render_text(plan)
    notices = [ln for ln in text.splitlines() if ln.startswith("Targeting in effect")]
    assert len(notices) == 2 and "--target b --exclude node-2/*" in notices[0]
    assert text.splitlines()[-2] == notices[1]


def test_colour_only_on_a_terminal_and_never_with_no_color(tmp_path, store, monkeypatch):
    plan = make_plan(load(_profile(tmp_path)), store, PlanOptions(refresh=False))
    coloured = render_text(plan, color=True)
    assert "\x1b[32m+ node-1/a" in coloured and "\x1b[0m" in coloured
    assert "\x1b[" not in render_text(plan)

    class Tty:
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    assert use_color(Tty()) is True
    with open(tmp_path / "f", "w") as f:
        assert use_color(f) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_color(Tty()) is False
    # piped: the CLI prints no escape codes
    res = run_orch("plan", str(_profile(tmp_path)), "--state", str(tmp_path / "s.db"))
    assert res.returncode == 0 and "\x1b[" not in res.stdout
    res = run_orch("plan", str(_profile(tmp_path)), "--state", str(tmp_path / "s.db"),
                   env={"FORCE_COLOR": "1", "NO_COLOR": ""})
    assert "\x1b[32m" in res.stdout
    verbose = run_orch("plan", str(_profile(tmp_path)), "--state", str(tmp_path / "s.db"),
                       "--verbose")
    assert 'fail: ""' in verbose.stdout and 'fail: ""' not in res.stdout


def test_dot_has_one_cluster_per_layer_and_a_legend(tmp_path, store):
    plan = make_plan(load(_profile(tmp_path)), store, PlanOptions(refresh=False))
    dot = render_dot(plan)
    assert dot.startswith('digraph "t" {')
    clusters = re.findall(r"subgraph (cluster_\w+) \{\n    label=\"([^\"]+)\"", dot)
    assert clusters == [("cluster_0", "base (4 create)"), ("cluster_1", "top (1 create)"),
                        ("cluster_legend", "legend")]
    base = dot.split("subgraph cluster_0")[1].split("  }")[0]
    assert '"node-1/a"' in base and '"b"' not in base
    assert '"node-1/a" -> "b";' in dot
    for action in ("create", "update", "replace", "delete", "no-op", "external"):
        assert f'label="{action}' in dot


def test_profile_93_renders_as_a_readable_picture(tmp_path):
    """Before: one flat chain of 4381x343 px. Clustered, it is about as tall as wide."""
    if shutil.which("dot") is None:
        from tests.conftest import require_service
        require_service("graphviz's dot lays the graph out (.ci/apt-packages.txt: graphviz)")
    res = run_orch("plan", "profiles/93-proxmox-ceph.yaml", "-i", "inventories/lab.yaml",
                   "--no-refresh", "--state", str(tmp_path / "s.db"), "--format", "dot")
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("subgraph cluster_") == 7  # 6 layers and the legend
    png = tmp_path / "93.png"
    subprocess.run(["dot", "-Tpng", "-o", str(png)], input=res.stdout, text=True, check=True,
                   timeout=60)
    head = png.read_bytes()[:24]
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    assert 0.5 < width / height < 2, (width, height)
