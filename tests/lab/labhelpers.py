"""Helpers for the lab tests (a plain module, since `conftest` is imported by name in
tests/libvirt): the orch CLI run as a subprocess, unique lab names, and a check with
libvirt that a lab left nothing behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
URI = "qemu:///system"


def orch(*args: str, timeout: float = 900.0, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Run the orch CLI (as an operator would); stdout and stderr captured as text."""
    return subprocess.run([sys.executable, "-m", "orch_cli.main", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, check=False)


def profile_copy(tmp: Path, source: Path, name: str) -> Path:
    """``source`` copied to ``tmp/profiles/`` under a new metadata name, with playbooks/
    beside it (the Ansible component looks for playbooks next to the profile's folder)."""
    text = source.read_text()
    old = yaml.safe_load(text)["metadata"]["name"]
    text = text.replace(f"  name: {old}\n", f"  name: {name}\n", 1)
    (tmp / "profiles").mkdir(parents=True, exist_ok=True)
    link = tmp / "playbooks"
    if not link.exists():
        link.symlink_to(REPO / "playbooks")
    path = tmp / "profiles" / source.name
    path.write_text(text)
    return path


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:5]}"


def leftovers(prefix: str) -> list[str]:
    """Domains, networks, pools and volumes (any pool) whose name carries ``prefix``."""
    import libvirt

    conn = libvirt.open(URI)
    try:
        found = [f"domain {d.name()}" for d in conn.listAllDomains() if prefix in d.name()]
        found += [f"network {n.name()}" for n in conn.listAllNetworks() if prefix in n.name()]
        for p in conn.listAllStoragePools():
            if prefix in p.name():
                found.append(f"pool {p.name()}")
            elif p.isActive():
                p.refresh(0)
                found += [f"volume {p.name()}/{v}" for v in p.listVolumes() if prefix in v]
        return found
    finally:
        conn.close()


def processes(text: str) -> list[str]:
    out = subprocess.run(["pgrep", "-af", text], capture_output=True, text=True,
                         check=False).stdout
    return [line for line in out.splitlines() if "pgrep" not in line]


def force_down(name: str) -> None:
    """Last resort after a failed test: `orch lab down`, bounded."""
    orch("lab", "down", name, timeout=300)
    shutil.rmtree(Path.home() / ".cache/orch/lab/labs" / name, ignore_errors=True)


def opt_in(variable: str, why: str) -> pytest.MarkDecorator:
    """Skip unless ``variable`` is set: for the lab tests that do not yet fit CI's time limit
    under QEMU TCG (``why`` says what was measured); set it to run them."""
    return pytest.mark.skipif(not os.environ.get(variable),
                              reason=f"set {variable}=1 to run: {why}")
