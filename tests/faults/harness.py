"""The fault suite's trials, shared with ``bench/faults.py``: real ``orch`` processes, a fake
driver that counts every driver call, and the checks made after each fault.

After every trial: no step was executed twice except in the documented at-least-once window
(a step whose intent was journaled but whose outcome was not when the process died: it is
``pending`` in the state and the next plan shows it as *interrupted*); nothing lost (every
step applied, or deleted, in state and in the fake world); the final records equal a clean
run's; no Python traceback in any output; and the run records true (no run left
``running``; a killed run marked ``aborted``).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
PROFILE = "faults"
#: the trial graph: WIDTH chains of DEPTH steps, each STEP_SECONDS long
WIDTH, DEPTH, STEP_SECONDS = 3, 4, 0.12


def write_profile(dir: Path, fake_store: Path, width: int = WIDTH, depth: int = DEPTH,
                  duration: float = STEP_SECONDS, name: str = PROFILE) -> Path:
    comps = []
    for w in range(width):
        for i in range(depth):
            comp: dict[str, Any] = {"name": f"c{w}-{i}", "type": "fake.step",
                                    "with": {"duration": duration}}
            if i:
                comp["after"] = [f"c{w}-{i - 1}"]
            comps.append(comp)
    doc = {"apiVersion": "orch/v1", "kind": "Profile", "metadata": {"name": name},
           "roles": {}, "layers": [{"name": "l1", "components": comps}],
           "drivers": {"fake": {"store": str(fake_store)}}}
    path = dir / "profile.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def orch(*args: str, env: dict[str, str] | None = None) -> list[str]:
    return [sys.executable, "-m", "orch_cli.main", *args]


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


def run(*args: str, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(orch(*args), cwd=REPO, env=child_env(env), capture_output=True,
                          text=True, timeout=timeout)


def fake_world(fake_store: Path) -> dict[str, Any]:
    try:
        text = fake_store.read_text()
    except FileNotFoundError:
        return {}
    return json.loads(text) if text.strip() else {}


def calls(fake_store: Path) -> dict[str, int]:
    """Driver calls started, per step."""
    return dict(fake_world(fake_store).get("attempts", {}))


def open_state(url: str) -> Any:
    from orchestrator.state import open_store
    return open_store(url)


def snapshot(url: str) -> tuple[dict[str, tuple[str, str]], list[Any]]:
    """(step id -> (status, fingerprint), runs) of the trial profile."""
    store = open_state(url)
    try:
        recs = {sid: (r.status.value, r.fingerprint) for sid, r in store.records(PROFILE).items()}
        runs = store.runs(PROFILE, limit=100)
    finally:
        store.close()
    return recs, runs


@dataclass
class Outcome:
    """What one trial found; ``problems`` is empty when every check held."""

    name: str
    double: int = 0
    lost: int = 0
    tracebacks: int = 0
    problems: list[str] = field(default_factory=list)
    interrupted: int = 0  # steps in the at-least-once window (allowed a second call)

    def add(self, text: str) -> None:
        self.problems.append(text)


def check_output(out: Outcome, *procs: Any) -> None:
    for p in procs:
        text = (p.stdout or "") + (p.stderr or "")
        if "Traceback" in text:
            out.tracebacks += 1
            out.add("traceback in output:\n" + text[text.index("Traceback"):][-3000:])


def kill_at(cmd_args: list[str], delay: float, env: dict[str, str] | None = None,
            anchor: Path | None = None) -> str:
    """Start orch, SIGKILL it after ``delay`` seconds (if still running); its stderr.

    With ``anchor`` (the fake driver's store), the delay counts from the first driver call
    this run starts, not from the process start: on a loaded machine orch's own start-up
    (imports, planning) can outlast a fixed delay, and every kill would land before any
    step ran."""
    proc = subprocess.Popen(orch(*cmd_args), cwd=REPO, env=child_env(env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if anchor is not None:
        before = sum(calls(anchor).values())
        wait_for(lambda: proc.poll() is not None or sum(calls(anchor).values()) > before,
                 timeout=60)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=30)
    return err


def window(url: str) -> set[str]:
    """Steps left pending (started, outcome not journaled): the at-least-once window."""
    recs, _ = snapshot(url)
    return {sid for sid, (status, _) in recs.items() if status == "pending"}


def check_calls(out: Outcome, before: dict[str, int], after: dict[str, int],
                allowed: dict[str, int]) -> None:
    """Each step called at most once per phase, plus once per time it was left pending."""
    for sid, n in after.items():
        extra = n - before.get(sid, 0)
        limit = 1 + allowed.get(sid, 0)
        if extra > limit:
            out.double += 1
            out.add(f"{sid}: driver called {extra} times (allowed {limit})")


def check_runs(out: Outcome, url: str) -> None:
    _, runs = snapshot(url)
    for r in runs:
        if r.status == "running" or r.finished_at is None:
            out.add(f"run {r.run_id} still says {r.status}")


def clean_records(tmp: Path, url: str, destroy: bool = False) -> dict[str, tuple[str, str]]:
    """The records a clean, uninterrupted apply leaves (the reference)."""
    fake_store = tmp / "clean-fake.json"
    profile = write_profile(tmp, fake_store)
    res = run("apply", str(profile), "--auto-approve", "--state", url)
    assert res.returncode == 0, res.stderr
    if destroy:
        res = run("destroy", str(profile), "--auto-approve", "--state", url)
        assert res.returncode == 0, res.stderr
    return snapshot(url)[0]


def plan_reasons(profile: Path, url: str, destroy: bool = False) -> dict[str, str]:
    """The next plan's reason for each step (in-process: the same planner the CLI runs)."""
    from orchestrator.loader import load
    from orchestrator.plan import Mode
    from orchestrator.planner import PlanOptions, make_plan
    from orchestrator.state import open_store
    store = open_store(url, create=False)
    try:
        plan = make_plan(load(profile), store, PlanOptions(
            Mode.DESTROY if destroy else Mode.NORMAL, refresh=False))
    finally:
        store.close()
    return {p.step.id: f"{p.action.value}: {p.reason}" for p in plan}


def apply_in_process(profile: Path, url: str) -> None:
    """A clean apply without a process start (the setup of a destroy trial)."""
    from orchestrator import log
    from orchestrator.driver import DriverRegistry
    from orchestrator.executor import Executor
    from orchestrator.loader import load
    from orchestrator.planner import make_plan
    from orchestrator.state import open_store
    log.configure(level="warning", fmt="console")
    store = open_store(url)
    try:
        plan = make_plan(load(profile), store)
        assert Executor(plan, store, DriverRegistry()).run().ok
    finally:
        store.close()


def crash_trial(kind: str, seed: int, tmp: Path, url: str,
                reference: dict[str, tuple[str, str]], horizon: float = 1.7) -> Outcome:
    """kill -9 at a seeded random moment of an apply or a destroy (``resume``, and an apply
    with an odd seed: of its resume too); resume to the end; check everything."""
    rng = random.Random(f"{kind}-{seed}")
    out = Outcome(f"{kind}#{seed}")
    fake_store = tmp / "fake.json"
    profile = write_profile(tmp, fake_store)
    base = ["--auto-approve", "--state", url]
    allowed: dict[str, int] = {}
    errs: list[str] = []
    if kind == "destroy":
        apply_in_process(profile, url)
    before = calls(fake_store)
    verb = "destroy" if kind == "destroy" else "apply"
    # even seeds: the moment counts from the first driver call (always inside the walk);
    # odd seeds: from the process start (start-up and planning included)
    anchor = fake_store if seed % 2 == 0 else None
    delay = rng.uniform(0.0, horizon - 0.5) if anchor else rng.uniform(0.5, horizon)
    errs.append(kill_at([verb, str(profile), *base], delay, anchor=anchor))
    for sid in window(url):
        allowed[sid] = allowed.get(sid, 0) + 1
    if kind == "resume" or (kind == "apply" and seed % 2):  # kill the resume too
        errs.append(kill_at(["apply", str(profile), *base], rng.uniform(0.5, horizon)))
        for sid in window(url):
            allowed[sid] = allowed.get(sid, 0) + 1
    reasons = plan_reasons(profile, url, destroy=verb == "destroy")
    for sid in window(url):
        if "interrupted in run" not in reasons.get(sid, ""):
            out.add(f"{sid} pending but the plan does not call it interrupted: "
                    f"{reasons.get(sid)!r}")
    final = run(verb, str(profile), *base)
    check_output(out, final)
    for e in errs:
        if "Traceback" in e:
            out.tracebacks += 1
            out.add("traceback from the killed run:\n" + e[e.index("Traceback"):][-3000:])
    if final.returncode != 0:
        out.add(f"resume exited {final.returncode}: {final.stderr[-800:]}")
    out.interrupted = sum(allowed.values())
    check_calls(out, before, calls(fake_store), allowed)
    recs, _ = snapshot(url)
    world = fake_world(fake_store).get("created", {})
    if kind == "destroy":
        lost = set(recs) | set(world)
    else:
        lost = {sid for sid in reference if recs.get(sid) != reference[sid]} | \
            {sid for sid in reference if sid not in world}
    if lost:
        out.lost += len(lost)
        out.add(f"not as a clean run left them: {sorted(lost)}")
    check_runs(out, url)
    return out


def summary_line(outcomes: list[Outcome]) -> str:
    return (f"trials={len(outcomes)} double={sum(o.double for o in outcomes)} "
            f"lost={sum(o.lost for o in outcomes)} "
            f"tracebacks={sum(o.tracebacks for o in outcomes)} "
            f"failed={sum(1 for o in outcomes if o.problems)} "
            f"interrupted={sum(o.interrupted for o in outcomes)}")


def wait_for(pred: Any, timeout: float = 30, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return False


def pg_schema_url(dsn: str) -> str:
    """A URL to a fresh schema in the PostgreSQL database ``dsn`` (without pytest)."""
    import uuid

    import psycopg
    schema = "f_" + uuid.uuid4().hex[:10]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in dsn else "?"
    return f"{dsn}{sep}options=-csearch_path%3D{schema}"


def drop_pg_schema(dsn: str, url: str) -> None:
    import psycopg
    schema = url.partition("options=-csearch_path%3D")[2].split("&")[0]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
