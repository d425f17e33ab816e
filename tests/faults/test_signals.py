"""SIGINT and SIGTERM mid-apply, as Terraform handles them: the first stops starting steps
and lets the ones in progress finish, records every outcome, prints the summary, exits 3;
a second cancels those in progress and still records what it can."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.faults import harness as h


def start(profile, url, env=None):
    return subprocess.Popen(h.orch("apply", str(profile), "--auto-approve", "--state", url),
                            cwd=h.REPO, env=h.child_env(env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_one_signal_lets_steps_in_progress_finish_and_starts_no_more(sig, new_state, tmp_path):
    url = new_state()
    fake_store = tmp_path / "fake.json"
    profile = h.write_profile(tmp_path, fake_store, width=3, depth=3, duration=1.0)
    a = start(profile, url)
    assert h.wait_for(lambda: len(h.calls(fake_store)) >= 3)
    os.kill(a.pid, sig)
    _, err = a.communicate(timeout=60)
    assert a.returncode == 3, err
    assert "Traceback" not in err
    assert "starting no more steps" in err and "Apply interrupted" in err
    recs, runs = h.snapshot(url)
    # the three first steps finished and are recorded; nothing else was started
    assert sorted(recs) == ["c0-0", "c1-0", "c2-0"], recs
    assert all(status == "applied" for status, _ in recs.values())
    assert sum(h.calls(fake_store).values()) == 3
    assert runs[0].status == "interrupted" and runs[0].finished_at
    final = h.run("apply", str(profile), "--auto-approve", "--state", url)
    assert final.returncode == 0, final.stderr
    assert all(n == 1 for n in h.calls(fake_store).values()), h.calls(fake_store)
    out = h.Outcome("signal")
    h.check_runs(out, url)
    assert not out.problems


@pytest.mark.slow
def test_a_second_signal_cancels_the_steps_in_progress_and_records_them(new_state, tmp_path):
    url = new_state()
    fake_store = tmp_path / "fake.json"
    profile = h.write_profile(tmp_path, fake_store, width=2, depth=2, duration=20.0)
    a = start(profile, url)
    assert h.wait_for(lambda: len(h.calls(fake_store)) >= 2)
    os.kill(a.pid, signal.SIGINT)
    time.sleep(0.5)
    t0 = time.monotonic()
    os.kill(a.pid, signal.SIGTERM)
    _, err = a.communicate(timeout=60)
    assert time.monotonic() - t0 < 10  # not the 20 s the steps would take
    assert a.returncode == 3, err
    assert "Traceback" not in err and "Interrupted again" in err
    recs, runs = h.snapshot(url)
    # the cancelled steps' outcomes (failed: cancelled) are recorded, not left pending
    assert {sid: s for sid, (s, _) in recs.items()} == {"c0-0": "failed", "c1-0": "failed"}
    assert runs[0].status == "interrupted"
