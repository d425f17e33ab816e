"""The plan: deterministic, diffed against recorded state, selectable, and destroyable."""

import json

import pytest

from orchestrator.driver import DriverRegistry
from orchestrator.errors import CycleError, PlanError
from orchestrator.executor import ExecOptions, Executor
from orchestrator.loader import load
from orchestrator.plan import Action, Mode, Plan
from orchestrator.planner import PlanOptions, make_plan
from orchestrator.render import renderer
from orchestrator.state import open_store
from tests.engine.helpers import fake, write_profile


def plan_of(path, store, **opts):
    return make_plan(load(path), store, PlanOptions(**opts))


def apply(plan, store):
    report = Executor(plan, store, DriverRegistry(), ExecOptions(parallelism=4)).run()
    assert report.ok, report.outcomes
    return report


@pytest.fixture
def store(tmp_path):
    s = open_store(str(tmp_path / "state.db"))
    yield s
    s.close()


def test_same_inputs_give_byte_identical_renderings(tmp_path, store, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1764547200")  # the plans' creation time
    path = write_profile(tmp_path, [fake("a", on="node"), fake("b", on="node", after=["a"]),
                                    fake("c", after=["b"], value={"z": 1, "a": [1, 2]})])
    first = plan_of(path, store)
    second = plan_of(path, store)
    for fmt in ("text", "markdown", "json", "dot"):
        assert renderer(fmt)(first) == renderer(fmt)(second), fmt
    # another store with the same (empty) content: only the state's URL and id differ,
    # and the digest, which covers the id (a plan is for one state)
    third = make_plan(load(path), open_store(str(tmp_path / "other.db")))
    j1, j3 = json.loads(first.to_json()), json.loads(third.to_json())
    for key in ("state_url", "state_id", "digest"):
        assert j1.pop(key) != j3.pop(key)
    assert j1 == j3


def test_order_is_the_runbook_order(tmp_path, store):
    path = write_profile(tmp_path, [fake("join", on="node", after=["boot"]),
                                    fake("power", on="node"),
                                    fake("boot", on="node", after=["power"])])
    ids = [p.step.id for p in plan_of(path, store)]
    assert ids.index("node-1/power") < ids.index("node-1/boot") < ids.index("node-1/join")
    assert ids.index("node-2/power") < ids.index("node-2/boot") < ids.index("node-2/join")


def test_cycle_in_after_is_named(tmp_path, store):
    path = write_profile(tmp_path, [fake("a", after=["c"]), fake("b", after=["a"]),
                                    fake("c", after=["b"])])
    with pytest.raises(CycleError) as err:
        plan_of(path, store)
    assert set(err.value.cycle) == {"a", "b", "c"}
    assert "a" in err.value.hint and "after" in err.value.hint


def test_diff_actions_for_added_changed_removed_and_unchanged_steps(tmp_path, store):
    v1 = write_profile(tmp_path, [fake("keep"), fake("change", value=1), fake("drop"),
                                  {"name": "rep", "type": "libvirt.network",
                                   "with": {"name": "n1"}}], filename="v1.yaml")
    first = plan_of(v1, store)
    assert {p.action for p in first} == {Action.CREATE}
    # record everything as applied without running the libvirt step for real
    from orchestrator.state import Holder, JournalEntry
    run = store.begin_run("t", "normal", Holder.me())
    store.write([JournalEntry(run, p.step, ph, "create", "succeeded" if ph == "outcome" else "")
                 for p in first for ph in ("intent", "outcome")], "t")
    v2 = write_profile(tmp_path, [fake("keep"), fake("change", value=2), fake("new"),
                                  {"name": "rep", "type": "libvirt.network",
                                   "with": {"name": "n2"}}], filename="v2.yaml")
    plan = plan_of(v2, store, refresh=False)
    got = {p.step.id: (p.action, p.reason) for p in plan}
    assert got["keep"][0] is Action.NOOP
    assert got["change"] == (Action.UPDATE, "value changed")
    assert got["new"][0] is Action.CREATE
    assert got["drop"] == (Action.DELETE, "no longer in the profile")
    assert got["rep"][0] is Action.REPLACE and "forces replacement" in got["rep"][1]
    change = plan.by_id()["change"].changes
    assert [(c.key, c.before, c.after) for c in change] == [("value", 1, 2)]
    assert plan.steps[-1].step.id == "drop"  # deletes come last


def test_saved_plan_round_trips_exactly(tmp_path, store):
    path = write_profile(tmp_path, [fake("a", on="node"), fake("b", after=["a"])])
    plan = plan_of(path, store)
    again = Plan.from_json(plan.to_json())
    assert again.to_json() == plan.to_json()
    assert again == plan


def test_target_keeps_what_the_target_needs_and_exclude_drops_dependents(tmp_path, store):
    path = write_profile(tmp_path, [fake("power", on="node"), fake("os", on="node",
                                    after=["power"]), fake("join", on="node", after=["os"])])
    ids = {p.step.id for p in plan_of(path, store, targets=("node-2/os",))}
    assert ids == {"node-2/power", "node-2/os"}
    ids = {p.step.id for p in plan_of(path, store, excludes=("node-1/os",))}
    assert "node-1/join" not in ids and "node-1/power" in ids and "node-2/join" in ids
    ids = {p.step.id for p in plan_of(path, store, targets=("node-1",))}
    assert ids == {"node-1/power", "node-1/os", "node-1/join"}
    with pytest.raises(PlanError):
        plan_of(path, store, targets=("nothing*",))


def test_destroy_deletes_only_what_orch_recorded_dependents_first(tmp_path, store):
    path = write_profile(tmp_path, [fake("a"), fake("b", after=["a"]), fake("c", after=["b"])])
    plan = plan_of(path, store, targets=("b",))
    apply(plan, store)
    destroy = plan_of(path, store, mode=Mode.DESTROY)
    assert [(p.step.id, p.action) for p in destroy] == [("b", Action.DELETE),
                                                          ("a", Action.DELETE)]
    apply(destroy, store)
    assert store.records("t") == {}


def test_drift_read_by_the_driver_shows_in_the_plan(tmp_path, store):
    fake_store = tmp_path / "fake.json"
    path = write_profile(tmp_path, [fake("vm", on="node")],
                         drivers={"fake": {"store": str(fake_store)}})
    apply(plan_of(path, store), store)
    assert not plan_of(path, store).has_changes
    data = json.loads(fake_store.read_text())
    del data["created"]["node-2/vm"]  # destroyed behind orch's back
    fake_store.write_text(json.dumps(data))
    plan = plan_of(path, store)
    [changed] = [p for p in plan if p.action.changes]
    assert changed.step.id == "node-2/vm" and changed.action is Action.CREATE
    assert changed.reason.startswith("drift")
    assert not plan_of(path, store, refresh=False).has_changes


def test_when_condition_drops_a_component_and_keeps_order_through_it(tmp_path, store):
    path = write_profile(
        tmp_path, [fake("a"), fake("ha", after=["a"], when={"param": "mode", "equals": "ha"}),
                   fake("c", after=["ha"])],
        parameters={"mode": {"type": "str", "default": "simple"}})
    plan = plan_of(path, store)
    assert [p.step.id for p in plan] == ["a", "c"]
    assert plan.by_id()["c"].step.depends_on == ("a",)


def test_a_layer_when_condition_drops_its_components_and_keeps_order_through_them(
        tmp_path, store):
    layers = [{"name": "base", "components": [fake("a")]},
              {"name": "build", "when": {"param": "cloud", "equals": "deploy"},
               "components": [fake("b1", after=["a"]), fake("b2", after=["b1"])]},
              {"name": "use", "components": [
                  fake("given", after=["a"], when={"param": "cloud", "equals": "existing"}),
                  fake("c", after=["b2", "given"])]}]
    params = {"cloud": {"type": "str", "default": "deploy", "choices": ["deploy", "existing"]}}
    path = write_profile(tmp_path, [], layers=layers, parameters=params)
    built = plan_of(path, store)
    assert [p.step.id for p in built] == ["a", "b1", "b2", "c"]
    assert built.by_id()["c"].step.depends_on == ("a", "b2")  # through `given`, off
    existing = make_plan(load(path, overrides={"cloud": "existing"}), store, PlanOptions())
    assert [p.step.id for p in existing] == ["a", "given", "c"]
    assert existing.by_id()["c"].step.depends_on == ("a", "given")


def test_foreach_disks_gives_one_step_per_disk_with_stable_ids(tmp_path, store):
    roles = {"pve": {"count": 2, "hardware": {"disks": [
        {"name": "nvme0n1", "role": "os"}, {"name": "sdb", "role": "osd"},
        {"name": "sdc", "role": "osd"}]}}}
    path = write_profile(tmp_path, [fake("ceph.osd", on="pve", foreach="disks:osd",
                                         value="/dev/${item.name}")], roles=roles)
    plan = plan_of(path, store)
    assert [p.step.id for p in plan] == ["pve-1/ceph.osd[sdb]", "pve-1/ceph.osd[sdc]",
                                         "pve-2/ceph.osd[sdb]", "pve-2/ceph.osd[sdc]"]
    assert plan.by_id()["pve-2/ceph.osd[sdc]"].step.inputs["value"] == "/dev/sdc"


def test_after_first_n_nodes(tmp_path, store):
    path = write_profile(tmp_path, [fake("os", on="node"),
                                    fake("bootstrap", after=[{"component": "os",
                                                              "nodes": "first", "count": 3}])],
                         roles={"node": {"count": 5}})
    plan = plan_of(path, store)
    assert plan.by_id()["bootstrap"].step.depends_on == ("node-1/os", "node-2/os", "node-3/os")


def test_failed_static_preflight_stops_planning_with_location(tmp_path, store):
    from orchestrator.errors import SourceErrors
    path = write_profile(tmp_path, [fake("a")], roles={"pve": {"count": 2}},
                         preflight=[{"type": "min_nodes", "name": "ceph-quorum",
                                     "with": {"role": "pve", "min": 3}, "why": "MON quorum"}])
    with pytest.raises(SourceErrors) as err:
        plan_of(path, store)
    text = err.value.render()
    assert "ceph-quorum failed" in text and "2 node(s), need ≥ 3" in text and ":" in text


def test_serial_component_runs_one_node_at_a_time(tmp_path, store):
    path = write_profile(tmp_path, [{"name": "upgrade", "type": "fake.step", "on": "node",
                                     "serial": True}], roles={"node": {"count": 3}})
    deps = {p.step.id: p.step.depends_on for p in plan_of(path, store)}
    assert deps == {"node-1/upgrade": (), "node-2/upgrade": ("node-1/upgrade",),
                    "node-3/upgrade": ("node-2/upgrade",)}


def test_interpolation_joins_lists_escapes_shell_and_reads_bmc(tmp_path, store):
    roles = {"mon": {"count": 3}, "client": {"count": 1}}
    path = write_profile(tmp_path, [
        fake("join", on="client", value="mons=${nodes.mon.names|join(',')} ${nodes.mon.names}"),
        fake("shell", on="client", value="echo $${HOME} ${node.name}"),
        fake("each", on="client", foreach="nodes:mon", value="${item.name}@${item.index}")],
        roles=roles)
    plan = plan_of(path, store)
    by = {p.step.id: p.step.inputs["value"] for p in plan}
    assert by["client-1/join"] == "mons=mon-1,mon-2,mon-3 mon-1 mon-2 mon-3"
    assert by["client-1/shell"] == "echo ${HOME} client-1"
    assert by["client-1/each[mon-2]"] == "mon-2@2"


def test_os_install_wait_variants(tmp_path, store):
    roles = {"node": {"count": 1, "bmc": "redfish"}}
    for wait, last in (("ssh", "wait-ssh"), ("none", "power-on"), ("tcp:50000", "wait-port")):
        path = write_profile(tmp_path, [{"name": "os", "type": "os.install", "on": "node",
                                         "with": {"image": "http://x/i.iso", "wait": wait}}],
                             roles=roles, filename=f"{last}.yaml")
        assert plan_of(path, store).steps[-1].step.id == f"node-1/os/{last}"


def test_a_driver_that_never_answers_does_not_hang_the_plan():
    """An unreachable endpoint that accepts and never answers (a frozen remote libvirtd)
    costs the plan at most the observe limit, and the plan says what it could not learn."""
    import threading
    import time

    from orchestrator.driver import Driver
    from orchestrator.plan import FindingStatus
    from orchestrator.planner import observe

    class Hanging(Driver):
        name = "hanging"

        def apply(self, request):
            raise NotImplementedError

        def facts(self, steps):
            threading.Event().wait(30)
            return []

    class Answering(Driver):
        name = "answering"

        def apply(self, request):
            raise NotImplementedError

        def facts(self, steps):
            from orchestrator.plan import Finding
            return [Finding("accelerator", FindingStatus.OK, "KVM usable: yes", "answering")]

    findings = []
    t0 = time.monotonic()
    observe({"hanging": Hanging(), "answering": Answering()}, {}, {}, findings, seconds=0.5)
    assert time.monotonic() - t0 < 2
    assert [(f.check, f.status) for f in findings] == [
        ("accelerator", FindingStatus.OK), ("hanging facts", FindingStatus.WARN)]
    assert "no answer within" in findings[1].detail and "unknown" in findings[1].detail
