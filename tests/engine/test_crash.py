"""A real `orch apply` process killed with SIGKILL, then resumed; two applies at once.

Run against both state backends.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from orchestrator.state import RecordStatus, open_store
from tests.engine.helpers import REPO, fake, run_orch, write_profile


def chain_profile(tmp_path, fake_store, n=6, width=4, duration=0.25):
    comps = []
    for w in range(width):
        for i in range(n):
            after = [f"c{w}.{i - 1}"] if i else []
            comps.append(fake(f"c{w}.{i}", duration=duration, after=after))
    return write_profile(tmp_path, comps, name="crash",
                         drivers={"fake": {"store": str(fake_store)}})


def applied(fake_store):
    """The steps the fake driver has applied (the store is replaced whole, never torn)."""
    try:
        return json.loads(fake_store.read_text()).get("applied", [])
    except FileNotFoundError:
        return []


@pytest.mark.slow
def test_sigkill_mid_apply_then_a_second_apply_finishes_without_redoing(tmp_path, state_url):
    fake_store = tmp_path / "fake.json"
    profile = chain_profile(tmp_path, fake_store)
    proc = subprocess.Popen(
        [sys.executable, "-m", "orch_cli.main", "apply", str(profile), "--auto-approve",
         "--parallelism", "4", "--state", state_url], cwd=REPO,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(applied(fake_store)) < 9 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    store = open_store(state_url)
    recs = store.records("crash")
    done_before = {sid for sid, r in recs.items() if r.status is RecordStatus.APPLIED}
    half_done = {sid for sid, r in recs.items() if r.status is RecordStatus.PENDING}
    store.close()
    assert 4 <= len(done_before) < 24  # killed part-way, some steps finished
    assert half_done, "a killed run leaves the steps it had started recorded as pending"

    plan = run_orch("plan", str(profile), "--state", state_url)
    assert plan.returncode == 0, plan.stderr
    for sid in half_done:
        assert f"{sid}  [fake.step] create: interrupted in run" in plan.stdout

    before = len(applied(fake_store))
    second = run_orch("apply", str(profile), "--auto-approve", "--state", state_url)
    assert second.returncode == 0, second.stderr
    redone = applied(fake_store)[before:]
    assert not set(redone) & done_before, "finished steps were applied again"
    assert set(redone) >= half_done
    store = open_store(state_url)
    final = store.records("crash")
    store.close()
    assert len(final) == 24 and all(r.status is RecordStatus.APPLIED for r in final.values())
    third = run_orch("plan", str(profile), "--state", state_url, "--detailed-exitcode")
    assert third.returncode == 0 and "No changes" in third.stdout


@pytest.mark.slow
def test_two_concurrent_applies_one_runs_the_other_fails_fast_naming_it(tmp_path, state_url):
    fake_store = tmp_path / "fake.json"
    profile = chain_profile(tmp_path, fake_store, n=4, width=2, duration=1.0)
    first = subprocess.Popen(
        [sys.executable, "-m", "orch_cli.main", "apply", str(profile), "--auto-approve",
         "--state", state_url], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    deadline = time.monotonic() + 30
    while not applied(fake_store) and time.monotonic() < deadline:
        time.sleep(0.02)
    t0 = time.monotonic()
    second = run_orch("apply", str(profile), "--auto-approve", "--state", state_url)
    assert time.monotonic() - t0 < 10
    assert second.returncode == 1
    assert f"locked by pid {first.pid}" in second.stderr
    _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    # a third run that waits for the lock gets it once the first has finished
    waiting = subprocess.Popen(
        [sys.executable, "-m", "orch_cli.main", "apply", str(profile), "--auto-approve",
         "--state", state_url, "--lock-timeout", "30"], cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    _, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0 and "No changes" in err
    assert sorted(applied(fake_store)) == sorted(set(applied(fake_store)))  # nothing twice
