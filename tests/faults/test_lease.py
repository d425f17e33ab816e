"""The lease under faults: a stopped holder, a store too busy to write, a table lock.

``ORCH_LEASE_SECONDS`` and ``ORCH_SQLITE_BUSY_TIMEOUT`` shorten the lease and SQLite's
busy timeout so that these tests wait seconds, not minutes.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
import time

import pytest

from tests.faults import harness as h

FAST = {"ORCH_LEASE_SECONDS": "1"}


def start(profile, url, env=None, *extra):
    return subprocess.Popen(h.orch("apply", str(profile), "--auto-approve", "--state", url,
                                   *extra), cwd=h.REPO, env=h.child_env(env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_and_check(profile, url, fake_store, out, allowed=None):
    final = h.run("apply", str(profile), "--auto-approve", "--state", url)
    h.check_output(out, final)
    assert final.returncode == 0, final.stderr
    h.check_calls(out, {}, h.calls(fake_store), allowed or {})
    recs, _ = h.snapshot(url)
    assert recs and all(status == "applied" for status, _ in recs.values()), recs
    assert set(h.fake_world(fake_store).get("created", {})) == set(recs)
    h.check_runs(out, url)
    assert not out.problems, out.problems


@pytest.mark.slow
def test_a_stopped_run_past_its_lease_keeps_it_from_a_competing_run(new_state, tmp_path):
    """kill -STOP an apply mid-step past the lease; a second apply on this host must not
    take the lease of a live process; after kill -CONT the first one finishes, and no
    step runs twice."""
    url = new_state()
    fake_store = tmp_path / "fake.json"
    profile = h.write_profile(tmp_path, fake_store, width=2, depth=3, duration=0.4)
    a = start(profile, url, FAST)
    assert h.wait_for(lambda: h.calls(fake_store))
    os.kill(a.pid, signal.SIGSTOP)
    try:
        time.sleep(2.5)  # 2.5 lease periods
        b = h.run("apply", str(profile), "--auto-approve", "--state", url, env=FAST)
    finally:
        os.kill(a.pid, signal.SIGCONT)
    out = h.Outcome("sigstop")
    h.check_output(out, b)
    # refused: by the lease, or (stopped in a SQLite commit) by the write lock it holds
    assert b.returncode == 1 and (f"locked by pid {a.pid}" in b.stderr or
                                  "another process writing to the state" in b.stderr), b.stderr
    _, err = a.communicate(timeout=60)
    assert "Traceback" not in err
    # the stopped run either goes on (its lease still its own) or, had it lost it, stops
    assert a.returncode in (0, 1), err
    finish_and_check(profile, url, fake_store, out, {s: 1 for s in h.window(url)})


@pytest.mark.slow
def test_a_competing_sqlite_writer_past_busy_timeout_loses_nothing(tmp_path):
    """Another process holds SQLite's write lock for longer than busy_timeout mid-run: the
    journal write is retried (or the run fails); it never reports success with an outcome
    unwritten, and never commits an entry after one that failed."""
    url = str(tmp_path / "state.db")
    fake_store = tmp_path / "fake.json"
    profile = h.write_profile(tmp_path, fake_store, width=1, depth=8, duration=0.3)
    env = {"ORCH_SQLITE_BUSY_TIMEOUT": "0.5"}
    a = start(profile, url, env)
    assert h.wait_for(lambda: len(h.fake_world(fake_store).get("applied", [])) >= 2)
    blocker = sqlite3.connect(url, timeout=10, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    blocker.execute("UPDATE orch_meta SET value=value")
    time.sleep(2.0)  # four busy timeouts
    blocker.execute("COMMIT")
    blocker.close()
    _, err = a.communicate(timeout=60)
    assert "Traceback" not in err
    recs, runs = h.snapshot(url)
    if a.returncode == 0:
        assert "Apply complete" in err
        assert all(status == "applied" for status, _ in recs.values()) and len(recs) == 8
    else:
        assert a.returncode == 1 and "Apply complete" not in err, err
        assert runs[0].status == "failed"
    out = h.Outcome("busy")
    finish_and_check(profile, url, fake_store, out, {s: 1 for s in h.window(url)})


@pytest.mark.slow
@pytest.mark.postgres
def test_a_postgres_table_lock_past_the_lease_does_not_let_a_second_run_in(tmp_path):
    """Another session holds LOCK TABLE orch_records IN EXCLUSIVE MODE for several lease
    periods: the journal waits, but the lease is renewed on its own connection, so a
    second run is refused, and no step runs twice."""
    import psycopg

    from tests.engine.conftest import drop_schema, postgres_url
    url = postgres_url()
    try:
        fake_store = tmp_path / "fake.json"
        profile = h.write_profile(tmp_path, fake_store, width=1, depth=6, duration=0.3)
        a = start(profile, url, FAST)
        assert h.wait_for(lambda: len(h.fake_world(fake_store).get("applied", [])) >= 1)
        released = threading.Event()
        with psycopg.connect(url) as conn:
            conn.execute("LOCK TABLE orch_records IN EXCLUSIVE MODE")
            time.sleep(3.0)  # three lease periods
            b = h.run("apply", str(profile), "--auto-approve", "--state", url, env=FAST)
            conn.rollback()
            released.set()
        out = h.Outcome("lock-table")
        h.check_output(out, b)
        assert b.returncode == 1 and "locked by" in b.stderr, b.stderr
        _, err = a.communicate(timeout=60)
        assert a.returncode == 0 and "Traceback" not in err, err
        finish_and_check(profile, url, fake_store, out)
    finally:
        drop_schema(url)


@pytest.mark.slow
def test_a_locked_sqlite_state_is_a_one_line_error_within_the_lock_timeout(tmp_path):
    """A writer outside orch holds the database: apply does not hang for busy_timeout nor
    print a traceback; it waits up to --lock-timeout and names the cause."""
    url = str(tmp_path / "state.db")
    fake_store = tmp_path / "fake.json"
    profile = h.write_profile(tmp_path, fake_store, width=1, depth=1)
    assert h.run("apply", str(profile), "--auto-approve", "--state", url).returncode == 0
    profile = h.write_profile(tmp_path, fake_store, width=1, depth=2)
    blocker = sqlite3.connect(url, timeout=10, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        t0 = time.monotonic()
        res = h.run("apply", str(profile), "--auto-approve", "--state", url,
                    "--lock-timeout", "3")
        took = time.monotonic() - t0
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    assert "another process writing to the state" in res.stderr, res.stderr
    assert 3 <= took < 15
    assert sum(h.calls(fake_store).values()) == 1
