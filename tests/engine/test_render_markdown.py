"""The Markdown plan for a pull request: what it says, and how it shrinks to fit GitHub's
65,536-character limit without losing a layer, a count or a destructive step."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from orchestrator.driver import DriverRegistry
from orchestrator.executor import ExecOptions, Executor
from orchestrator.loader import load
from orchestrator.planner import PlanOptions, make_plan
from orchestrator.render.markdown import LIMIT, marker, render_markdown
from orchestrator.state import open_store
from tests.engine.helpers import fake, write_profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plans"))
import golden


@pytest.fixture(autouse=True)
def _in_checkout(monkeypatch):
    monkeypatch.chdir(golden.ROOT)


@pytest.fixture
def store(tmp_path):
    s = open_store(str(tmp_path / "state.db"))
    yield s
    s.close()


def _plan(path, store, inventory=None, params=None, **opts):
    if inventory is not None:  # a catalog profile: paths as a user in the checkout gives them
        path, inventory = golden.relative(path), golden.relative(inventory)
    return make_plan(load(path, inventory, params or {}), store,
                     PlanOptions(refresh=False, **opts), drivers=golden.planning_registry(False))


def _fold_titles(md: str) -> list[str]:
    return re.findall(r"<summary>Layer <b>([^<]+)</b> — ([^<]+)</summary>", md)


def test_the_comment_says_what_was_planned_against_what(tmp_path, store):
    plan = _plan(golden.PROFILES / "93-proxmox-ceph.yaml", store, golden.INVENTORIES[0])
    md = render_markdown(plan)
    assert md.startswith("<!-- orch-plan:proxmox-ceph:inventories/lab.yaml -->\n")
    assert marker(plan) in md.splitlines()[0]
    assert "| inventory | `inventories/lab.yaml` |" in md
    assert f"| state | `{store.url}` |" in md
    assert f"orch {plan.orch_version}, {plan.created_at}" in md
    assert "| selection | whole profile |" in md
    assert "```diff\n+ pve-1/pve.hardware-check" in md
    assert md.rstrip().endswith("`orch apply plan.json`.")
    assert "Apply with `orch apply profiles/93-proxmox-ceph.yaml -i inventories/lab.yaml`" in md
    assert "Truncated" not in md
    # every layer has its row in the counts table
    for layer in plan.layers:
        assert re.search(rf"^\| {re.escape(layer)} \| \d+ \|", md, re.M), layer


def test_a_targeted_plan_says_so_and_the_footer_repeats_the_selection(tmp_path, store):
    plan = _plan(golden.PROFILES / "93-proxmox-ceph.yaml", store, golden.INVENTORIES[0],
                 targets=("pve-1/*",), excludes=("*ceph*",))
    md = render_markdown(plan)
    assert "⚠️ targeting in effect: `--target pve-1/*` `--exclude *ceph*`" in md
    assert "--target pve-1/* --exclude *ceph*`" in md


@pytest.mark.parametrize(("inventory", "storage"), [(0, 20), (1, 24)])
def test_profile_95_fits_and_every_layer_keeps_its_fold_and_counts(store, inventory, storage):
    """Before: 59,817 characters, the last four layers dropped without a trace."""
    plan = _plan(golden.PROFILES / "95-hyperscaler-metal3.yaml", store,
                 golden.INVENTORIES[inventory], {"storage_nodes": str(storage)})
    md = render_markdown(plan)
    assert len(md) <= LIMIT
    folds = dict(_fold_titles(md))
    assert list(folds) == list(plan.layers)
    for layer in plan.layers:
        n = sum(1 for p in plan if p.step.layer == layer)
        assert folds[layer] == f"{n} create"
    # the layers a reviewer reads keep their inputs; the cut is said
    k8s = md.split("<b>management-kubernetes</b>")[1].split("</details>")[0]
    assert "+     " in k8s
    assert "**Truncated** to fit 65,536 characters" in md
    assert "step inputs in bare-metal" in md


def test_a_huge_plan_keeps_every_layer_and_summarises_what_it_cut(tmp_path, store):
    layers = [{"name": f"layer-{i}", "components": [
        fake(f"c{i}", on="node", value="x" * 300, **({"after": [f"c{i - 1}"]} if i else {}))]}
        for i in range(6)]
    path = write_profile(tmp_path, [], roles={"node": {"count": 500}}, layers=layers)
    plan = _plan(path, store)
    md = render_markdown(plan)
    assert len(md) <= LIMIT
    assert "Plan: 3000 to create" in md
    assert [name for name, _ in _fold_titles(md)] == [f"layer-{i}" for i in range(6)]
    shown = len(re.findall(r"^\+ node-", md, re.M))
    assert 0 < shown < 3000
    # what was cut is counted per component in each fold, and the counts add up
    cut = sum(int(n) for n in re.findall(r"… (\d+) more step\(s\) not shown", md))
    assert shown + cut == 3000
    assert re.search(r"more step\(s\) not shown: \d+ × c5 \(create\)", md)
    assert f"{3000 - shown} step line(s)" in md


def _apply(plan, store):
    report = Executor(plan, store, DriverRegistry(), ExecOptions(parallelism=8)).run()
    assert report.ok


def test_destructive_steps_are_never_dropped(tmp_path, store):
    big = [fake("keep", on="node", value="y" * 400), fake("gone", on="node")]
    path = write_profile(tmp_path, big, roles={"node": {"count": 400}}, filename="v1.yaml")
    _apply(_plan(path, store), store)
    path2 = write_profile(tmp_path, [fake("keep", on="node", value="z" * 400)],
                          roles={"node": {"count": 400}}, filename="v2.yaml")
    md = render_markdown(_plan(path2, store))
    assert len(md) <= LIMIT and "Truncated" in md
    head = md.split("<details>")[0]
    assert "#### ⚠️ Destructive steps (400)" in head
    for i in range(1, 401):
        assert f"- node-{i}/gone  (delete: " in head, i
    assert "| l1 | · | 400 | · | **400** | · |" in head


def test_past_a_thousand_destructive_steps_they_are_counted_per_component(tmp_path, store):
    path = write_profile(tmp_path, [fake("gone-with-a-long-name", on="node")],
                         roles={"node": {"count": 1500}})
    _apply(_plan(path, store), store)
    from orchestrator.plan import Mode
    md = render_markdown(_plan(path, store, mode=Mode.DESTROY))
    assert len(md) <= LIMIT
    assert "1500 × gone-with-a-long-name (delete, layer l1)" in md
    assert "the destructive steps' names (counted per component)" in md
    assert "Apply with `orch destroy" in md


def test_the_limit_can_be_lifted_for_a_bot_that_splits(tmp_path, store, monkeypatch):
    layers = [{"name": "l1", "components": [fake("c", on="node", value="x" * 300)]}]
    path = write_profile(tmp_path, [], roles={"node": {"count": 400}}, layers=layers)
    plan = _plan(path, store)
    assert len(render_markdown(plan)) <= LIMIT
    monkeypatch.setenv("ORCH_MARKDOWN_LIMIT", "0")
    full = render_markdown(plan)
    assert len(full) > LIMIT and "Truncated" not in full
