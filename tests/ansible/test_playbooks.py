"""Every playbook under playbooks/ passes ansible-playbook --syntax-check and ansible-lint."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"


def playbook_files() -> list[Path]:
    """YAML files whose top level is a list of plays (templates and vars files excluded)."""
    found = []
    for path in sorted(PLAYBOOKS.rglob("*.yml")):
        if "templates" in path.parts:
            continue
        data = yaml.safe_load(path.read_text())
        if isinstance(data, list) and data and all(
                isinstance(p, dict) and ("hosts" in p or "ansible.builtin.import_playbook" in p
                                         or "import_playbook" in p) for p in data):
            found.append(path)
    return found


def test_the_playbooks_of_deployments_93_and_76_are_there() -> None:
    names = {str(p.relative_to(PLAYBOOKS)) for p in playbook_files()}
    assert {"common/smoke.yml", "common/base.yml", "proxmox/install.yml",
            "proxmox/cluster.yml", "proxmox/ceph.yml", "proxmox/network.yml",
            "proxmox/ha.yml", "proxmox/workloads.yml", "nested-kvm/kvm-host.yml",
            "nested-kvm/guest.yml"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("playbook", playbook_files(),
                         ids=lambda p: str(p.relative_to(PLAYBOOKS)))
def test_syntax_check(playbook: Path) -> None:
    result = subprocess.run(
        ["ansible-playbook", "--syntax-check", "-i", "localhost,", str(playbook)],
        capture_output=True, text=True, timeout=120, cwd=PLAYBOOKS,
        env={**_env(), "ANSIBLE_NOCOLOR": "1"})
    assert result.returncode == 0, result.stderr[-2000:] or result.stdout[-2000:]


OWN = ("common/smoke.yml", "common/base.yml", "common/wait-cloud-init.yml", "proxmox/",
       "nested-kvm/")


def test_every_playbook_has_a_header_naming_its_variables_and_users() -> None:
    for path in playbook_files():
        if not str(path.relative_to(PLAYBOOKS)).startswith(OWN):
            continue
        head = path.read_text().split("\n- ", 1)[0]
        assert head.count("\n#") >= 3, f"{path}: no header comment"
        assert "Used by" in head, f"{path}: header does not say which components use it"


@pytest.mark.slow
def test_ansible_lint_production_profile() -> None:
    lint = shutil.which("ansible-lint")
    assert lint, "ansible-lint is not installed (pip install -e '.[dev]')"
    result = subprocess.run(
        [lint, "-c", str(PLAYBOOKS / ".ansible-lint"), "--nocolor", str(PLAYBOOKS)],
        capture_output=True, text=True, timeout=600, cwd=PLAYBOOKS.parent, env=_env())
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]


def _env() -> dict[str, str]:
    import os
    return dict(os.environ)
