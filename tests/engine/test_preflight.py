"""Readiness before acting: findings in the plan, and apply refusing before anything runs.

The plug-in tests install real entry points: a ``*.dist-info`` directory on PYTHONPATH is
what pip leaves behind, so ``importlib.metadata`` finds them as it finds any plug-in.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.engine.helpers import REPO, fake, run_orch, write, write_profile


def _plugin_env(tmp_path: Path, entry_points: str, modules: dict[str, str]) -> dict[str, str]:
    site = tmp_path / "site"
    info = site / "orch_test_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: orch-test-plugin\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    for name, text in modules.items():
        (site / f"{name}.py").write_text(text)
    return {"PYTHONPATH": os.pathsep.join([str(REPO), str(site)])}


NEEDY_DRIVER = '''
from orchestrator.driver import ApplyResult, Driver

class NeedyDriver(Driver):
    name = "needy"
    description = "needs a module nobody installed"
    step_kinds = {"needy.step": "nothing"}
    requires = ("orch_no_such_module_for_tests",)

    def apply(self, request):
        import orch_no_such_module_for_tests  # noqa: F401  (what a real driver would do)
        return ApplyResult({})
'''

NEEDY_COMPONENT = '''
from orchestrator.components import ComponentType, StepDraft, registry

registry.register(ComponentType("needy.step", "a step of the needy driver",
                                lambda inst: [StepDraft("needy.step", "needy", {})],
                                drivers=("needy",)))
'''


def test_a_missing_driver_dependency_is_a_finding_naming_the_install(tmp_path):
    env = _plugin_env(tmp_path, "[orch.drivers]\nneedy = needy_driver:NeedyDriver\n"
                      "[orch.components]\nneedy = needy_component\n",
                      {"needy_driver": NEEDY_DRIVER, "needy_component": NEEDY_COMPONENT})
    profile = write_profile(tmp_path, [{"name": "n", "type": "needy.step"}])
    state = ["--state", str(tmp_path / "s.db")]
    res = run_orch("plan", str(profile), *state, env=env)
    assert res.returncode == 0, res.stderr
    assert "[FAIL] driver needy: missing Python module(s) orch_no_such_module_for_tests" \
        in res.stdout
    assert "apply would refuse this plan" in res.stderr
    res = run_orch("apply", str(profile), *state, "--auto-approve", env=env)
    assert res.returncode == 1 and "not ready to apply" in res.stderr
    assert "nothing was done" in res.stderr and "Traceback" not in res.stderr
    assert run_orch("state", "list", str(profile), *state, env=env).stdout == ""


def test_drivers_names_the_pip_extra_for_a_missing_dependency(tmp_path):
    env = _plugin_env(tmp_path, "[orch.drivers]\nneedy = needy_driver:NeedyDriver\n",
                      {"needy_driver": NEEDY_DRIVER})
    res = run_orch("drivers", env=env)
    assert "missing: orch_no_such_module_for_tests" in res.stdout
    assert "install: pip install orch_no_such_module_for_tests" in res.stdout
    data = {d["name"]: d for d in json.loads(run_orch("drivers", "--format", "json",
                                                      env=env).stdout)}
    assert data["needy"]["available"] is False and data["fake"]["available"] is True


def test_install_hint_names_orchs_extra_for_its_own_drivers():
    from orchestrator.preflight import install_hint
    hint = install_hint("redfish", ["sushy"])
    assert "[redfish]'" in hint and hint.startswith("pip install '")
    assert "pip install -e '.[redfish]'" in hint
    assert install_hint("somebody-elses", ["x"]) == "pip install x"


def test_a_broken_plugin_is_reported_with_its_error(tmp_path):
    env = _plugin_env(tmp_path, "[orch.components]\nbroken = broken_plugin\n",
                      {"broken_plugin": "import orch_no_such_module_either\n"})
    profile = write_profile(tmp_path, [{"name": "x", "type": "broken.thing"}])
    res = run_orch("validate", str(profile), env=env)
    assert res.returncode == 1
    assert "plug-in broken (broken_plugin) failed to load: ModuleNotFoundError" in res.stderr
    res = run_orch("components", env=env)
    assert "plug-in broken (broken_plugin) failed to load" in res.stderr


def test_secret_references_are_checked_without_reading_them(tmp_path):
    key = tmp_path / "key"
    key.write_text("the-value-never-shown")
    profile = write_profile(tmp_path, [fake("a", secret="env:ORCH_TEST_UNSET_SECRET"),
                                       fake("b", secret=f"file:{key}"),
                                       fake("c", secret="file:missing-key")])
    state = ["--state", str(tmp_path / "s.db")]
    env = {"ORCH_TEST_UNSET_SECRET": ""}
    res = run_orch("plan", str(profile), *state, "--format", "json")
    findings = {f["check"]: f for f in json.loads(res.stdout)["findings"]}
    assert findings["secret env:ORCH_TEST_UNSET_SECRET"]["status"] == "fail"
    assert findings[f"secret file:{key}"]["status"] == "ok"
    missing = findings["secret file:missing-key"]
    assert missing["status"] == "fail" and str(tmp_path / "missing-key") in missing["detail"]
    assert "the-value-never-shown" not in res.stdout + res.stderr
    assert "apply would refuse" in res.stderr  # not a silent exit 0
    res = run_orch("apply", str(profile), *state, "--auto-approve")
    assert res.returncode == 1 and "FAIL secret env:ORCH_TEST_UNSET_SECRET" in res.stderr
    # set (even empty) and the relative file created beside the profile: ready
    (tmp_path / "missing-key").write_text("x")
    res = run_orch("apply", str(profile), *state, "--auto-approve", env=env)
    assert res.returncode == 0, res.stderr


def test_a_saved_plan_is_checked_again_where_it_is_applied(tmp_path):
    profile = write_profile(tmp_path, [fake("a", secret="env:ORCH_TEST_LATE_SECRET")])
    out = tmp_path / "plan.json"
    res = run_orch("plan", str(profile), "--state", str(tmp_path / "s.db"), "--out", str(out),
                   env={"ORCH_TEST_LATE_SECRET": "x"})
    assert res.returncode == 0 and "apply would refuse" not in res.stderr
    res = run_orch("apply", str(out))
    assert res.returncode == 1 and "not set" in res.stderr
    assert run_orch("apply", str(out), env={"ORCH_TEST_LATE_SECRET": "x"}).returncode == 0


def test_an_inventory_is_required_when_steps_contact_hosts(tmp_path):
    profile = write_profile(tmp_path, [{"name": "hello", "type": "ssh.command", "on": "node",
                                        "with": {"command": "true"}}])
    state = ["--state", str(tmp_path / "s.db")]
    res = run_orch("plan", str(profile), *state, "--no-refresh")
    assert "[FAIL] inventory: no inventory (-i): 2 step(s) on nodes (ssh)" in res.stdout
    res = run_orch("apply", str(profile), *state, "--auto-approve")
    assert res.returncode == 1 and "give -i INVENTORY" in res.stderr
    # the fake driver contacts nothing: a profile of fake steps plans and applies without -i
    fake_only = write_profile(tmp_path, [fake("a", on="node")], filename="fake.yaml")
    res = run_orch("plan", str(fake_only), *state)
    assert "inventory" not in res.stdout and "apply would refuse" not in res.stderr


def test_orch_inventory_refuses_nodes_without_addresses(tmp_path):
    profile = write_profile(tmp_path, [fake("a", on="node")])
    res = run_orch("inventory", str(profile))
    assert res.returncode == 1 and "2 node(s) have no address" in res.stderr
    assert "ansible_host: ''" in res.stderr and "give -i INVENTORY" in res.stderr
    inv = write(tmp_path / "inv.yaml", """
        apiVersion: orch/v1
        kind: Inventory
        metadata: {name: i}
        hosts:
          - {name: h1, address: 192.0.2.1}
          - {name: h2, address: 192.0.2.2}
        roles: {node: [h1, h2]}
    """)
    res = run_orch("inventory", str(profile), "-i", str(inv))
    assert res.returncode == 0, res.stderr
    assert "ansible_host: 192.0.2.1" in res.stdout
