"""Running a real playbook on this machine (``-c local``) against stand-in commands.

A test puts small shell scripts named like the vendor's CLI (``ceph``, ``system``, ``osm``,
``cmk`` ...) in ``STUB/bin``, first on the playbook's PATH, and the scripts keep their state
and a log of their calls under ``$STUB``. Each script says it is a STAND-IN in its first
lines; what the tests prove is the playbook's own logic (order, idempotence, waits that end,
secrets kept out of the output), not the vendor tool.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest


def need_ansible() -> None:
    """Fail under CI (everything is installed there), else skip, without ansible-playbook."""
    if not shutil.which("ansible-playbook"):
        if os.environ.get("CI") == "true":
            pytest.fail("ansible-playbook is not installed")
        pytest.skip("ansible-playbook is not installed")


def stub_dir(tmp_path: Path, commands: Mapping[str, str]) -> Path:
    """``tmp_path/stub`` with each of ``commands`` (name -> script text) in its bin/."""
    stub = tmp_path / "stub"
    (stub / "bin").mkdir(parents=True)
    for name, text in commands.items():
        (stub / "bin" / name).write_text(text)
        (stub / "bin" / name).chmod(0o755)
    return stub


def play_local(playbook: Path, extra: Mapping[str, object], work: Path, *,
               stub: Path | None = None, hosts: str = "localhost,",
               args: tuple[str, ...] = (), env: Mapping[str, str] | None = None,
               timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``ansible-playbook -c local`` of ``playbook`` with ``extra`` as its variables (written
    to ``work/extra.json``), the stand-ins of ``stub`` first on PATH and ``$STUB`` set."""
    need_ansible()
    (work / "extra.json").write_text(json.dumps(extra))
    environ = {**os.environ, "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_PYTHON_INTERPRETER": sys.executable, **(env or {})}
    if stub is not None:
        environ.update(STUB=str(stub), PATH=f"{stub / 'bin'}:{os.environ['PATH']}")
    return subprocess.run(
        ["ansible-playbook", "-i", hosts, "-c", "local", str(playbook),
         "-e", f"@{work / 'extra.json'}", *args],
        capture_output=True, text=True, timeout=timeout, env=environ, check=False)
