"""kill -9 at seeded random moments of an apply, a destroy, and an apply's resume, on SQLite
and PostgreSQL; after each, the checks of tests/faults/harness.py.

Trials per backend: 20 of apply, the 10 with an odd seed killing the resume too, and 10 of
destroy (``bench/faults.py`` runs more). Every trial is reproducible from its seed.
"""

from __future__ import annotations

import pytest

from tests.faults import harness as h

TRIALS = {"apply": 20, "destroy": 10}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(TRIALS))
def test_kill_9_at_random_moments(kind, new_state, tmp_path):
    reference = {} if kind == "destroy" else h.clean_records(tmp_path, new_state())
    outcomes = []
    for seed in range(TRIALS[kind]):
        d = tmp_path / f"t{seed}"
        d.mkdir()
        outcomes.append(h.crash_trial(kind, seed, d, new_state(), reference))
    bad = [f"{o.name}: {p}" for o in outcomes for p in o.problems]
    assert not bad, h.summary_line(outcomes) + "\n" + "\n".join(bad[:10])
    # the trials did hit the window they exist for: some steps were left in flight
    assert sum(o.interrupted for o in outcomes) > 0, h.summary_line(outcomes)


@pytest.mark.slow
def test_intents_are_journaled_when_a_step_starts_not_when_it_is_ready(tmp_path):
    """30 independent steps, parallelism 2, killed once steps are running: at most 2 steps
    are pending (started), not the 28 merely queued."""
    import os
    import signal
    import subprocess

    fake_store = tmp_path / "fake.json"
    profile = h.write_profile(tmp_path, fake_store, width=30, depth=1, duration=0.5)
    url = str(tmp_path / "state.db")
    proc = subprocess.Popen(h.orch("apply", str(profile), "--auto-approve", "--parallelism",
                                   "2", "--state", url), cwd=h.REPO, env=h.child_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert h.wait_for(lambda: sum(h.calls(fake_store).values()) >= 3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    started = sum(h.calls(fake_store).values())
    pending = h.window(url)
    assert 1 <= len(pending) <= 2, pending
    assert len(pending) <= started
