"""The README's quickstart: the sandbox profile applies in seconds with the fake driver, and
the first command, run as written, works in a fresh virtual environment."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.engine.helpers import REPO, run_orch

SANDBOX = REPO / "examples" / "sandbox.yaml"


def _sandbox_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "sandbox.yaml"
    shutil.copy(SANDBOX, copy)
    return copy


def test_sandbox_plan_apply_replan_grow_destroy(tmp_path):
    profile = str(_sandbox_copy(tmp_path))
    res = run_orch("plan", profile)
    assert res.returncode == 0 and "Plan: 11 to create" in res.stdout
    assert f"State: {tmp_path / 'sandbox.orch.db'}" in res.stderr  # the first plan says so
    assert f"Next:  orch apply {profile}" in res.stderr
    assert "FAIL" not in res.stdout  # the fake driver needs no inventory, no secret
    started = time.monotonic()
    res = run_orch("apply", profile, "--auto-approve")
    assert res.returncode == 0 and "11 succeeded" in res.stderr, res.stderr
    assert time.monotonic() - started < 30
    res = run_orch("plan", profile, "--detailed-exitcode")
    assert res.returncode == 0 and "No changes" in res.stdout and "State:" not in res.stderr
    res = run_orch("plan", profile, "-p", "nodes=5")
    assert "Plan: 6 to create, 0 to change" in res.stdout, res.stdout  # 2 new nodes x 3 steps
    res = run_orch("destroy", profile, "--auto-approve")
    assert res.returncode == 0 and "11 succeeded" in res.stderr


def test_sandbox_is_not_in_the_catalog():
    # the numbered profiles in profiles/ are the catalog (and the golden plans); the sandbox
    # lives apart so it never shows up as a deployment
    assert not (REPO / "profiles" / "sandbox.yaml").exists()
    assert "sandbox" not in (REPO / "profiles" / "README.md").read_text()


def _readme_block(heading: str) -> str:
    text = (REPO / "README.md").read_text()
    section = text[text.index(heading):]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def test_readme_starts_with_a_venv_and_needs_no_sudo():
    first = _readme_block("## On a fresh machine")
    assert "python3 -m venv .venv" in first and ".venv/bin/pip install -e ." in first
    assert "python3-venv" in first and "sudo" not in first
    assert "sudo bash" not in (REPO / "README.md").read_text()


@pytest.mark.slow
def test_readme_first_command_works_in_a_fresh_venv(tmp_path):
    """Runs the README's venv line as written, in a copy of the sources (so the checkout
    gets no build files), with Debian's own python3 when there is one (CI: python3-venv is
    in .ci/apt-packages.txt). About 30-60 s: pip installs orch's few dependencies."""
    line = next(ln for ln in _readme_block("## On a fresh machine").splitlines()
                if ln.startswith("python3 -m venv"))
    src = tmp_path / "orch"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for name in ("orchestrator", "orch_cli", "drivers", "lab", "examples", "playbooks"):
        shutil.copytree(REPO / name, src / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.orch.db"))
    system_python = Path("/usr/bin/python3")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    if system_python.exists():
        (bindir / "python3").symlink_to(system_python)
    env = {"PATH": f"{bindir}:/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path),
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    import os
    for key in ("PIP_FIND_LINKS", "PIP_CERT", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL",
                "PIP_CONFIG_FILE", "PIP_DEFAULT_TIMEOUT", "http_proxy", "https_proxy",
                "HTTP_PROXY", "HTTPS_PROXY", "no_proxy", "NO_PROXY"):
        if key in os.environ:
            env[key] = os.environ[key]
    res = subprocess.run(["bash", "-euo", "pipefail", "-c", line], cwd=src, env=env,
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert "Plan: 11 to create" in res.stdout
    assert "State: examples/sandbox.orch.db" in res.stderr and "Next:  orch apply" in res.stderr
    res = subprocess.run([str(src / ".venv" / "bin" / "orch"), "apply", "examples/sandbox.yaml",
                          "--auto-approve"], capture_output=True, text=True, cwd=src, env=env)
    assert res.returncode == 0 and "11 succeeded" in res.stderr, res.stderr
    version = subprocess.run([str(src / ".venv" / "bin" / "orch"), "--version"],
                             capture_output=True, text=True, cwd=src)
    assert version.stdout.startswith("orch ")
