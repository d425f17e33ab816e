"""Playbook interfaces: every playbook a profile calls declares its variables in a sidecar
``<stem>.argument_specs.yml`` (Ansible's role argument_specs format), validates them as its
first task, reads every variable it declares, and `orch validate` refuses what does not fit
at the profile's line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from orchestrator.components import argspec, builtin_registry
from orchestrator.errors import SourceError, SourceErrors
from orchestrator.expand import expand
from orchestrator.loader import load

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ROOT / "playbooks"
PROFILES = sorted((ROOT / "profiles").glob("*.yaml"))


def called_playbooks() -> dict[str, set[str]]:
    """Playbook path -> profile stems whose components call it (helm.release included)."""
    out: dict[str, set[str]] = {}
    for path in PROFILES:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for layer in doc.get("layers") or []:
            for comp in layer.get("components") or []:
                with_ = comp.get("with") or {}
                if comp.get("type") == "ansible.playbook":
                    out.setdefault(with_["playbook"], set()).add(path.stem)
                elif comp.get("type") == "helm.release":
                    out.setdefault("common/helm-release.yml", set()).add(path.stem)
    return out


CALLED = sorted(called_playbooks())


def test_the_catalog_calls_playbooks() -> None:
    assert {"kubeadm/prepare.yml", "kubeadm/init.yml", "kubeadm/join.yml"} <= set(CALLED)


@pytest.mark.parametrize("playbook", CALLED)
def test_every_called_playbook_declares_its_variables(playbook: str) -> None:
    options = argspec.load_options(PLAYBOOKS / playbook)
    assert options is not None, f"playbooks/{playbook} has no " \
        f"{Path(playbook).stem}{argspec.SUFFIX} beside it"
    doc = yaml.safe_load(argspec.spec_path(PLAYBOOKS / playbook).read_text())
    assert doc["argument_specs"]["main"]["short_description"]
    for name, opt in options.items():
        assert opt.get("description"), f"{playbook}: {name} has no description"
        assert opt.get("type", "str") in ("str", "int", "bool", "list", "dict", "path",
                                          "float", "raw"), f"{playbook}: {name} type"
        if opt.get("type") == "list":
            assert opt.get("elements"), f"{playbook}: list {name} names no elements"


@pytest.mark.parametrize("playbook", CALLED)
def test_the_first_task_validates_against_the_sidecar(playbook: str) -> None:
    plays = yaml.safe_load((PLAYBOOKS / playbook).read_text())
    first = (plays[0].get("tasks") or [{}])[0]
    module = first.get("ansible.builtin.validate_argument_spec")
    assert module is not None, f"{playbook}: first task is {first.get('name')!r}"
    assert f"/{Path(playbook).stem}{argspec.SUFFIX}'" in module["argument_spec"]


def _reads(playbook: Path) -> str:
    """The playbook, its task files and templates, without comments and the sidecar
    lookup: where a variable can be read."""
    texts = [playbook.read_text()]
    for extra in ("tasks", "templates"):
        folder = playbook.parent / extra
        if folder.is_dir():
            texts += [p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()]
    text = "\n".join(texts)
    return "\n".join(line for line in text.splitlines()
                     if not line.lstrip().startswith("#") and argspec.SUFFIX not in line)


@pytest.mark.parametrize("playbook", CALLED)
def test_every_declared_variable_is_read(playbook: str) -> None:
    options = argspec.load_options(PLAYBOOKS / playbook) or {}
    text = _reads(PLAYBOOKS / playbook)
    # a read: the name anywhere but as the key of a `vars:` default (`  name: value`)
    unread = [name for name in options
              if not re.search(rf"\b{re.escape(name)}\b(?!\s*:(\s|$))", text)]
    assert not unread, f"{playbook} declares variables it never reads: {unread}"


def test_every_profile_passes_only_declared_variables() -> None:
    # what `orch validate` checks, over the whole catalog (the loader raises otherwise)
    for path in PROFILES:
        expand(load(path), builtin_registry())


# -- the refusals, each at the profile's file:line ----------------------------------------
def _profile(tmp_path: Path, vars_text: str, playbook: str = "kubeadm/join.yml") -> Path:
    (tmp_path / "playbooks").symlink_to(PLAYBOOKS)
    (tmp_path / "profiles").mkdir()
    path = tmp_path / "profiles" / "p.yaml"
    path.write_text(textwrap.dedent(f"""\
        apiVersion: orch/v1
        kind: Profile
        metadata: {{name: p, title: interface check}}
        roles:
          control: {{count: 2}}
        layers:
          - name: k8s
            components:
              - name: k8s.join
                type: ansible.playbook
                on: control
                with:
                  playbook: {playbook}
                  once: true
                  vars: {vars_text}
        """))
    return path


def _refusal(path: Path) -> SourceError:
    with pytest.raises((SourceError, SourceErrors)) as info:
        expand(load(path), builtin_registry())
    exc = info.value
    return exc.errors[0] if isinstance(exc, SourceErrors) else exc


def test_an_undeclared_variable_is_refused_with_did_you_mean(tmp_path: Path) -> None:
    err = _refusal(_profile(tmp_path, '{k8s_first: "${nodes.control[0].address}", '
                                      'k8s_control_role: [control]}'))
    assert "does not declare variable 'k8s_control_role'" in str(err)
    assert "did you mean 'k8s_control_roles'" in err.hint
    assert err.location is not None and err.location.line == 15


def test_a_missing_required_variable_is_refused(tmp_path: Path) -> None:
    err = _refusal(_profile(tmp_path, "{k8s_control_roles: [control]}"))
    assert "needs variable 'k8s_first'" in str(err)
    assert err.location is not None and err.location.line == 15


def test_a_wrong_type_is_refused(tmp_path: Path) -> None:
    err = _refusal(_profile(tmp_path, '{k8s_first: "${nodes.control[0].address}", '
                                      "k8s_control_roles: {a: 1}}"))
    assert "'k8s_control_roles' of kubeadm/join.yml must be list, not dict" in str(err)


def test_a_value_outside_the_choices_is_refused(tmp_path: Path) -> None:
    err = _refusal(_profile(tmp_path, '{k8s_first: "${nodes.control[0].address}", '
                                      "k8s_cni: weave}"))
    assert "'k8s_cni' of kubeadm/join.yml is 'weave'" in str(err)
    assert "calico" in err.expected


def test_what_fits_is_accepted(tmp_path: Path) -> None:
    path = _profile(tmp_path, '{k8s_first: "${nodes.control[0].address}", '
                              "k8s_control_roles: [control], k8s_cni: bridge}")
    assert expand(load(path), builtin_registry()).steps


@pytest.mark.parametrize(("kind", "good", "bad"), [
    ("str", ["a", 1, 1.5], [[1], {"a": 1}, True]),
    ("int", [3, "42"], ["x", 1.5, True]),
    ("bool", [True, "yes", "false", 0], ["maybe", [True]]),
    ("list", [[1], "a,b"], [{"a": 1}, 3]),
    ("dict", [{"a": 1}], [[1], "a"]),
])
def test_types_follow_ansible(kind: str, good: list[object], bad: list[object]) -> None:
    options = {"v": {"type": kind}}
    for value in good:
        argspec.check(options, {"v": value}, "x.yml")
    for value in bad:
        with pytest.raises(argspec.SpecProblem):
            argspec.check(options, {"v": value}, "x.yml")


def test_secret_references_and_placeholders_are_not_type_checked() -> None:
    options = {"v": {"type": "int"}}
    argspec.check(options, {"v": {"$secret": "env:X"}}, "x.yml")
    argspec.check(options, {"v": "${params.x}"}, "x.yml")
    argspec.check({"v": {"type": "str"}}, {"v": {"$publish": "kubeconfig/mgmt"}}, "x.yml")


# -- Ansible itself enforces the same sidecar -------------------------------------------
def _ansible_validates(tmp_path: Path, playbook: str, extra: dict[str, object]) -> \
        subprocess.CompletedProcess[str]:
    plays = yaml.safe_load((PLAYBOOKS / playbook).read_text())
    check = [{"name": "only the interface check", "hosts": "all", "gather_facts": False,
              "tasks": [plays[0]["tasks"][0]]}]
    copy = tmp_path / Path(playbook).name
    copy.write_text(yaml.safe_dump(check))
    shutil.copy(argspec.spec_path(PLAYBOOKS / playbook), tmp_path)
    (tmp_path / "extra.yml").write_text(yaml.safe_dump(extra))
    return subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "-c", "local", str(copy),
         "-e", f"@{tmp_path / 'extra.yml'}"],
        capture_output=True, text=True, timeout=180,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
             "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp")})


@pytest.mark.slow
def test_ansible_enforces_the_sidecar_when_the_playbook_runs(tmp_path: Path) -> None:
    if not shutil.which("ansible-playbook"):
        if os.environ.get("CI") == "true":
            pytest.fail("ansible-playbook is not installed")
        pytest.skip("ansible-playbook is not installed")
    ok = _ansible_validates(tmp_path, "kubeadm/join.yml",
                            {"k8s_first": "10.0.0.1", "k8s_control_roles": ["control"]})
    assert ok.returncode == 0, ok.stdout[-2000:]
    bad = _ansible_validates(tmp_path, "kubeadm/join.yml",
                             {"k8s_first": "10.0.0.1", "k8s_cni": "weave"})
    assert bad.returncode != 0
    assert "k8s_cni" in bad.stdout and "weave" in bad.stdout, bad.stdout[-2000:]
    missing = _ansible_validates(tmp_path, "kubeadm/join.yml", {"k8s_cni": "calico"})
    assert missing.returncode != 0
    assert "k8s_first" in missing.stdout, missing.stdout[-2000:]
