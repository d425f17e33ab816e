"""Building small profiles and running orch in-process or as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]


def write_profile(dir: Path, components: list[dict[str, Any]], *, name: str = "t",
                  roles: dict[str, Any] | None = None, parameters: dict[str, Any] | None = None,
                  preflight: list[dict[str, Any]] | None = None,
                  drivers: dict[str, Any] | None = None, layers: list[dict[str, Any]] | None = None,
                  filename: str = "profile.yaml") -> Path:
    doc: dict[str, Any] = {
        "apiVersion": "orch/v1", "kind": "Profile", "metadata": {"name": name},
        "roles": roles if roles is not None else {"node": {"count": 2}},
        "layers": layers if layers is not None else [{"name": "l1", "components": components}],
    }
    if parameters:
        doc["parameters"] = parameters
    if preflight:
        doc["preflight"] = preflight
    if drivers:
        doc["drivers"] = drivers
    path = dir / filename
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def fake(name: str, **with_: Any) -> dict[str, Any]:
    """A fake.step component; `on`, `after`, `foreach` are taken out of with_."""
    comp: dict[str, Any] = {"name": name, "type": "fake.step"}
    for key in ("on", "after", "foreach", "select", "when"):
        if key in with_:
            comp[key] = with_.pop(key)
    if with_:
        comp["with"] = with_
    return comp


def run_orch(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
             timeout: float = 120, input: str | None = None) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "orch_cli.main", *args], cwd=cwd or REPO,
                          env=full_env, capture_output=True, text=True, timeout=timeout,
                          input=input)
