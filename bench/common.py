"""Shared pieces of the benchmarks: the same graph for orch and Terraform, and timing.

Both tools run as child processes of the benchmark, side by side on the same machine;
wall time and peak RSS come from GNU time (``/usr/bin/time -f``), or from ``wait4`` when it
is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Measure:
    seconds: float
    peak_rss_mib: float
    returncode: int
    stderr: str = ""


def measure(cmd: list[str], cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 3600) -> Measure:
    """Run ``cmd`` once; wall seconds and peak RSS of the process tree's largest member."""
    full_env = dict(os.environ)
    full_env.pop("PYTHONDONTWRITEBYTECODE", None)
    full_env.update(env or {})
    with tempfile.TemporaryFile(mode="w+") as err:  # a pipe could fill up and block
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=subprocess.DEVNULL,
                                stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        err.seek(0)
        stderr = err.read()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 2):
        raise SystemExit(f"{' '.join(cmd)} failed ({code}):\n{stderr[-2000:]}")
    return Measure(wall, usage.ru_maxrss / 1024, code, stderr)


def orch_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "orch_cli.main", *args]


# -- the graphs ------------------------------------------------------------------------
def fleet_nodes(size: int) -> int:
    """Fleet: per node power → OS install → join, plus one bootstrap: 3n + 1 steps."""
    return max(3, (size - 1) // 3)


def orch_profile(shape: str, size: int, duration: str = "0") -> str:
    if shape == "fleet":
        n = fleet_nodes(size)
        return f"""apiVersion: orch/v1
kind: Profile
metadata: {{name: bench-fleet}}
roles:
  node: {{count: {n}}}
layers:
  - name: fleet
    components:
      - {{name: power, type: fake.step, on: node, with: {{duration: {duration}}}}}
      - {{name: os.install, type: fake.step, on: node, after: [power],
          with: {{duration: {duration}}}}}
      - {{name: cluster.bootstrap, type: fake.step,
          after: [{{component: os.install, nodes: first, count: 3}}]}}
      - {{name: cluster.join, type: fake.step, on: node,
          after: [os.install, cluster.bootstrap], with: {{duration: {duration}}}}}
"""
    return f"""apiVersion: orch/v1
kind: Profile
metadata: {{name: bench-chain}}
roles:
  node: {{count: {size}}}
layers:
  - name: chain
    components:
      - {{name: step, type: fake.step, on: node, serial: true}}
"""


def terraform_config(shape: str, size: int) -> str:
    if shape == "fleet":
        n = fleet_nodes(size)
        return f"""
resource "terraform_data" "power" {{
  count = {n}
  input = "power-${{count.index}}"
}}
resource "terraform_data" "os_install" {{
  count = {n}
  input = terraform_data.power[count.index].id
}}
resource "terraform_data" "cluster_bootstrap" {{
  input = [for i in range(3) : terraform_data.os_install[i].id]
}}
resource "terraform_data" "cluster_join" {{
  count = {n}
  input = [terraform_data.os_install[count.index].id, terraform_data.cluster_bootstrap.id]
}}
"""
    blocks = ['resource "terraform_data" "s0" {\n  input = "start"\n}\n']
    for i in range(1, size):
        blocks.append(f'resource "terraform_data" "s{i}" {{\n'
                      f'  input = terraform_data.s{i - 1}.id\n}}\n')
    return "".join(blocks)


def terraform() -> str:
    tf = shutil.which("terraform")
    if not tf:
        raise SystemExit("terraform is not on PATH: the baseline cannot be measured here")
    return tf


def prepare(workdir: Path, shape: str, size: int, duration: str = "0") -> tuple[Path, Path]:
    """Write both tools' inputs; ``terraform init`` (offline: built-in provider only)."""
    orch_dir = workdir / "orch"
    tf_dir = workdir / "terraform"
    orch_dir.mkdir(parents=True, exist_ok=True)
    tf_dir.mkdir(parents=True, exist_ok=True)
    (orch_dir / "profile.yaml").write_text(orch_profile(shape, size, duration))
    (tf_dir / "main.tf").write_text(terraform_config(shape, size))
    subprocess.run([terraform(), "init", "-input=false", "-no-color"], cwd=tf_dir,
                   check=True, capture_output=True, env=tf_env())
    return orch_dir, tf_dir


def tf_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1", TF_CLI_CONFIG_FILE="/dev/null")
    return env


def steps_of(shape: str, size: int) -> int:
    return 3 * fleet_nodes(size) + 1 if shape == "fleet" else size
