"""Saved plans and state identity (issue 8, items 3, 4 and 13): a saved plan is applied from
any directory against the state it was made from, exactly as reviewed, or refused naming
what differs; each profile and inventory has its own state."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.helpers import REPO, fake, run_orch, write, write_profile

INVENTORY = """\
apiVersion: orch/v1
kind: Inventory
metadata: {{name: {name}}}
hosts:
  - {{name: h1, address: 192.0.2.1}}
  - {{name: h2, address: 192.0.2.2}}
"""


def ok(res: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def refused(res: subprocess.CompletedProcess[str], *words: str) -> str:
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    for w in words:
        assert w in res.stderr, res.stderr
    return res.stderr


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """tmp/proj/p.yaml applied once with its default state; tmp/elsewhere exists."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (tmp_path / "elsewhere").mkdir()
    write_profile(proj, [fake("a", on="node", value=1)], filename="p.yaml")
    ok(run_orch("apply", "proj/p.yaml", "--auto-approve", cwd=tmp_path))
    assert (proj / "p.orch.db").exists()
    write_profile(proj, [fake("a", on="node", value=1), fake("b", after=["a"])],
                  filename="p.yaml")
    return proj


def test_a_saved_plan_applied_from_elsewhere_uses_its_own_state(project):
    tmp = project.parent
    ok(run_orch("plan", "proj/p.yaml", "--out", "plan.json", cwd=tmp))
    saved = json.loads((tmp / "plan.json").read_text())
    assert saved["state_url"] == "proj/p.orch.db" and saved["profile_path"] == "proj/p.yaml"
    assert len(saved["state_id"]) == 32
    res = ok(run_orch("apply", "../plan.json", cwd=tmp / "elsewhere"))
    assert "1 succeeded" in res.stderr  # only b: a was done in the first apply
    assert list((tmp / "elsewhere").iterdir()) == []
    res = ok(run_orch("plan", "proj/p.yaml", "--detailed-exitcode", cwd=tmp))
    assert "No changes" in res.stdout


def test_a_saved_plan_never_creates_a_state_and_refuses_another(project, tmp_path):
    ok(run_orch("plan", "proj/p.yaml", "--out", "plan.json", cwd=tmp_path))
    other = tmp_path / "other.db"
    ok(run_orch("apply", "proj/p.yaml", "--state", str(other), "--auto-approve",
                cwd=tmp_path))
    ok(run_orch("state", "rm", "proj/p.yaml", "node-1/a", "node-2/a", "b", "--state",
                str(other), cwd=tmp_path))  # the same (empty) content, another state
    refused(run_orch("apply", "plan.json", "--state", str(other), cwd=tmp_path),
            "made against state")
    shutil.move(project / "p.orch.db", tmp_path / "moved.db")
    refused(run_orch("apply", "plan.json", cwd=tmp_path), "is not at", "nothing was done")
    assert not (project / "p.orch.db").exists()
    res = ok(run_orch("apply", "plan.json", "--state", str(tmp_path / "moved.db"),
                      cwd=tmp_path))
    assert "1 succeeded" in res.stderr


def test_a_plan_made_before_any_state_existed_creates_it_but_not_over_another(tmp_path):
    profile = write_profile(tmp_path, [fake("a")], filename="p.yaml")
    ok(run_orch("plan", str(profile), "--out", str(tmp_path / "plan.json")))
    assert json.loads((tmp_path / "plan.json").read_text())["state_id"] == ""
    ok(run_orch("apply", str(profile), "--state", str(tmp_path / "x.db"), "--auto-approve"))
    ok(run_orch("state", "rm", str(profile), "a", "--state", str(tmp_path / "x.db")))
    refused(run_orch("apply", str(tmp_path / "plan.json"), "--state", str(tmp_path / "x.db")),
            "when no state existed")
    res = ok(run_orch("apply", str(tmp_path / "plan.json")))
    assert "1 succeeded" in res.stderr and (tmp_path / "p.orch.db").exists()


@pytest.mark.parametrize("edit, words", [
    (lambda s: s.update(inputs={**s["inputs"], "value": 2}), "step node-1/a: inputs.value differs"),
    (lambda s: s.update(driver="ssh"), "step node-1/a: driver 'fake' became 'ssh'"),
    (lambda s: s.update(depends_on=["b"]), "step node-1/a: depends_on differs"),
    (lambda s: s.update(actions=["no-op"]), "no step differs"),
], ids=["inputs", "driver", "dependencies", "action"])
def test_an_edited_plan_is_refused_naming_what_differs(project, edit, words):
    tmp = project.parent
    ok(run_orch("plan", "proj/p.yaml", "--out", "plan.json", "--state", "s.db", cwd=tmp))
    data = json.loads((tmp / "plan.json").read_text())
    step = next(s for s in data["steps"] if s["id"] == "node-1/a")
    edit(step)
    (tmp / "plan.json").write_text(json.dumps(data, indent=1))
    refused(run_orch("apply", "plan.json", cwd=tmp), "digest does not match", words)
    assert not (tmp / "s.db").exists()


def test_a_plan_whose_profile_changed_is_stale(project):
    tmp = project.parent
    ok(run_orch("plan", "proj/p.yaml", "--out", "plan.json", cwd=tmp))
    (project / "p.yaml").write_text((project / "p.yaml").read_text() + "\n")
    refused(run_orch("apply", "plan.json", cwd=tmp), "changed since the plan was made")


def test_flags_that_would_change_a_saved_plan_are_refused(project):
    tmp = project.parent
    ok(run_orch("plan", "proj/p.yaml", "--out", "plan.json", cwd=tmp))
    (tmp / "vars.yaml").write_text("n: 1\n")
    for flags in (["-i", "x.yaml"], ["-p", "n=1"], ["-P", "vars.yaml"], ["--target", "b"],
                  ["--exclude", "b"]):
        refused(run_orch("apply", "plan.json", *flags, cwd=tmp), flags[0],
                "cannot change a saved plan")
    refused(run_orch("apply", "plan.json", "-i", "x.yaml", cwd=tmp,
                     env={"ORCH_INVENTORY": "y.yaml"}), "-i", "cannot change a saved plan")
    # an ORCH_INVENTORY default is not a flag: the plan names its own inventory
    res = ok(run_orch("apply", "plan.json", cwd=tmp, env={"ORCH_INVENTORY": "x.yaml"}))
    assert "succeeded" in res.stderr


def test_a_plan_is_recognised_by_content_not_by_name(project, tmp_path):
    ok(run_orch("plan", "proj/p.yaml", "--out", "reviewed.plan", cwd=tmp_path))
    assert "1 succeeded" in ok(run_orch("apply", "reviewed.plan", cwd=tmp_path)).stderr
    # a profile written in JSON (YAML's subset) is a profile, whatever its name
    doc = {"apiVersion": "orch/v1", "kind": "Profile", "metadata": {"name": "j"},
           "roles": {}, "layers": [{"name": "l", "components": [fake("x")]}]}
    (tmp_path / "j.json").write_text(json.dumps(doc))
    res = ok(run_orch("apply", "j.json", "--auto-approve", cwd=tmp_path))
    assert "1 succeeded" in res.stderr


def test_a_non_utf8_plan_is_a_located_error(tmp_path):
    bad = tmp_path / "plan.json"
    bad.write_bytes(b'{"format_version": 2,\n "profile": "t\xff"}\n')
    refused(run_orch("apply", str(bad)), "plan.json:2:15", "not UTF-8")
    refused(run_orch("show", str(bad)), "plan.json:2:15", "not UTF-8")


def test_each_inventory_has_its_own_default_state(tmp_path):
    profile = write_profile(tmp_path, [fake("a", on="node")], filename="p.yaml")
    staging = write(tmp_path / "staging.yaml", INVENTORY.format(name="staging"))
    prod = write(tmp_path / "prod.yaml", INVENTORY.format(name="prod"))
    ok(run_orch("apply", str(profile), "-i", str(staging), "--auto-approve"))
    assert (tmp_path / "p.staging.orch.db").exists() and not (tmp_path / "p.orch.db").exists()
    res = run_orch("plan", str(profile), "-i", str(prod), "--detailed-exitcode")
    assert res.returncode == 2 and "Plan: 2 to create, 0 to change" in res.stdout
    listing = ok(run_orch("state", "list", str(profile), "-i", str(staging))).stdout
    assert "applied  node-1/a" in listing
    # the commands flow added find the same state: ORCH_INVENTORY, output, state mv
    listing = ok(run_orch("state", "list", str(profile), "--format", "json",
                          env={"ORCH_INVENTORY": str(staging)})).stdout
    assert [r["id"] for r in json.loads(listing)] == ["node-1/a", "node-2/a"]
    assert "node-1/a" in ok(run_orch("output", str(profile), "-i", str(staging))).stdout
    res = ok(run_orch("state", "mv", str(profile), "a", "b", "-i", str(staging), "--dry-run"))
    assert "node-1/a -> node-1/b" in res.stdout
    assert not (tmp_path / "p.orch.db").exists() and not (tmp_path / "p.prod.orch.db").exists()


def test_a_state_built_with_another_inventory_is_refused_without_the_flag(tmp_path):
    profile = write_profile(tmp_path, [fake("a", on="node")], filename="p.yaml")
    staging = write(tmp_path / "staging.yaml", INVENTORY.format(name="staging"))
    prod = write(tmp_path / "prod.yaml", INVENTORY.format(name="prod"))
    state = ["--state", str(tmp_path / "shared.db")]
    ok(run_orch("apply", str(profile), "-i", str(staging), *state, "--auto-approve"))
    refused(run_orch("plan", str(profile), "-i", str(prod), *state),
            "built for 't' with inventory 'staging'; this plan uses 'prod'",
            "--allow-inventory-change")
    refused(run_orch("apply", str(profile), "-i", str(prod), *state, "--auto-approve"),
            "with inventory 'staging'")
    res = ok(run_orch("plan", str(profile), "-i", str(prod), *state,
                      "--allow-inventory-change"))
    assert "inventory changed" in res.stdout and "'staging'" in res.stdout


def test_a_state_shared_by_every_inventory_gets_a_migration_message(tmp_path):
    profile = write_profile(tmp_path, [fake("a", on="node")], filename="p.yaml")
    staging = write(tmp_path / "staging.yaml", INVENTORY.format(name="staging"))
    ok(run_orch("apply", str(profile), "-i", str(staging), "--state",
                str(tmp_path / "p.orch.db"), "--auto-approve"))  # where orch kept it before
    err = refused(run_orch("plan", str(profile), "-i", str(staging)), "p.staging.orch.db")
    assert f"mv {tmp_path / 'p.orch.db'} {tmp_path / 'p.staging.orch.db'}" in err
    shutil.move(tmp_path / "p.orch.db", tmp_path / "p.staging.orch.db")
    res = ok(run_orch("plan", str(profile), "-i", str(staging)))
    assert "No changes" in res.stdout


def test_state_commands_never_create_a_state(tmp_path):
    profile = write_profile(tmp_path, [fake("a")], filename="p.yaml")
    typo = tmp_path / "typo" / "stat.db"
    for verb in ("list", "runs"):
        refused(run_orch("state", verb, str(profile), "--state", str(typo)), "no state at")
    refused(run_orch("state", "show", str(profile), "a", "--state", str(typo)), "no state at")
    assert not (tmp_path / "typo").exists()
    res = ok(run_orch("state", "list", str(profile)))
    assert res.stdout == "" and "no state yet" in res.stderr
    assert not (tmp_path / "p.orch.db").exists()


def test_plan_reads_a_state_in_a_read_only_directory(tmp_path):
    """A read-only bind mount in a private mount namespace (root): SQLite cannot create the
    WAL's -shm file there, so the state must be opened read-only."""
    profile = write_profile(tmp_path, [fake("a", on="node")], filename="p.yaml")
    ok(run_orch("apply", str(profile), "--auto-approve"))
    probe = subprocess.run(["unshare", "-m", "sh", "-c",
                            f"mount --bind -o ro {tmp_path} {tmp_path}"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        from tests.conftest import require_service
        require_service(f"a private mount namespace (unshare -m, as root): {probe.stderr}")
    script = (f"mount --bind -o ro {tmp_path} {tmp_path} && "
              f"exec {sys.executable} -m orch_cli.main plan {profile} --detailed-exitcode")
    res = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True,
                         text=True, cwd=REPO, timeout=60)
    assert res.returncode == 0 and "No changes" in res.stdout, res.stdout + res.stderr


def test_a_saved_plan_keeps_to_its_state_on_either_backend(tmp_path, state_url):
    """The state id lives in the state itself: SQLite and PostgreSQL alike."""
    profile = write_profile(tmp_path, [fake("a")], filename="p.yaml")
    ok(run_orch("apply", str(profile), "--state", state_url, "--auto-approve"))
    write_profile(tmp_path, [fake("a"), fake("b")], filename="p.yaml")
    plan = str(tmp_path / "plan.json")
    ok(run_orch("plan", str(profile), "--state", state_url, "--out", plan))
    other = str(tmp_path / "other.db")
    ok(run_orch("apply", str(profile), "--state", other, "--target", "a", "--auto-approve"))
    refused(run_orch("apply", plan, "--state", other), "made against state")
    # (a plan shows a PostgreSQL URL without its password: give the state again)
    assert "1 succeeded" in ok(run_orch("apply", plan, "--state", state_url)).stderr
