"""The state's storage under faults: disk full before and during a run, a read-only state,
and each kind of damaged state. Every one is a one-line error saying what to do, exit 1, no
traceback, and nothing recorded is lost."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_service
from tests.faults import harness as h


@pytest.fixture
def small_fs(tmp_path):
    """A 3 MiB tmpfs (root only): a disk that can fill up, or be made read-only."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        require_service(f"a tmpfs mount (root): {res.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(mnt: Path) -> Path:
    filler = mnt / "filler"
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    return filler


def one_line_error(res, *words):
    text = res.stdout + res.stderr
    assert res.returncode == 1, text
    assert "Traceback" not in text, text
    err = [ln for ln in res.stderr.splitlines() if ln.startswith("Error:")]
    assert len(err) == 1, res.stderr
    for w in words:
        assert w in res.stderr, res.stderr


@pytest.mark.slow
def test_disk_full_before_a_run(small_fs, tmp_path):
    fake_store = tmp_path / "fake.json"
    profile = h.write_profile(tmp_path, fake_store)
    fill(small_fs)
    res = h.run("apply", str(profile), "--auto-approve", "--state", str(small_fs / "s.db"))
    one_line_error(res, "space")
    assert not h.calls(fake_store), "nothing may act without a journal"


@pytest.mark.slow
def test_disk_full_during_a_run_fails_it_and_loses_nothing(small_fs, tmp_path):
    url = str(small_fs / "s.db")
    fake_store = tmp_path / "fake.json"
    profile = h.write_profile(tmp_path, fake_store, width=1, depth=10, duration=0.3)
    proc = subprocess.Popen(h.orch("apply", str(profile), "--auto-approve", "--state", url),
                            cwd=h.REPO, env=h.child_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert h.wait_for(lambda: len(h.fake_world(fake_store).get("applied", [])) >= 2)
    filler = fill(small_fs)
    out, err = proc.communicate(timeout=120)
    res = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    if proc.returncode != 0:  # the usual case; a run whose writes fit may still finish
        one_line_error(res, "space")
        assert "Apply complete" not in err
    filler.unlink()
    window = {s: 1 for s in h.window(url)}
    final = h.run("apply", str(profile), "--auto-approve", "--state", url)
    assert final.returncode == 0, final.stderr
    o = h.Outcome("disk-full")
    h.check_calls(o, {}, h.calls(fake_store), window)
    recs, _ = h.snapshot(url)
    assert len(recs) == 10 and all(s == "applied" for s, _ in recs.values())
    h.check_runs(o, url)
    assert not o.problems, o.problems


@pytest.mark.slow
def test_a_read_only_state(small_fs, tmp_path):
    url = str(small_fs / "s.db")
    fake_store = tmp_path / "fake.json"
    profile = h.write_profile(tmp_path, fake_store, width=1, depth=2)
    assert h.run("apply", str(profile), "--auto-approve", "--state", url).returncode == 0
    h.write_profile(tmp_path, fake_store, width=1, depth=3)  # one more step to apply
    before = h.snapshot(url)[0]
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    try:
        res = h.run("apply", str(profile), "--auto-approve", "--state", url)
        one_line_error(res)
        assert "read-only" in res.stderr or "readonly" in res.stderr, res.stderr
        assert len(h.calls(fake_store)) == 2
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_fs)], check=True)
    assert h.snapshot(url)[0] == before


def damage_sqlite(path: Path, how: str) -> None:
    conn = sqlite3.connect(path)
    if how == "status":
        conn.execute("UPDATE orch_records SET status='bogus' WHERE step_id='c0-1'")
    elif how == "step-json":
        conn.execute("UPDATE orch_records SET step='{not json' WHERE step_id='c0-1'")
    elif how == "column":
        conn.execute("ALTER TABLE orch_records DROP COLUMN error")
    elif how == "schema":
        conn.execute("UPDATE orch_meta SET value='99' WHERE key='schema'")
    conn.commit()
    conn.close()


@pytest.mark.slow
@pytest.mark.parametrize("how,words", [
    ("status", ["c0-1", "'bogus'", "orch state rm"]),
    ("step-json", ["c0-1", "damaged"]),
    ("column", ["damaged", "orch_records"]),
    ("schema", ["newer orch", "99"]),
])
def test_a_damaged_state_is_a_one_line_error_and_is_left_alone(how, words, tmp_path):
    url = tmp_path / "s.db"
    fake_store = tmp_path / "fake.json"
    profile = h.write_profile(tmp_path, fake_store, width=1, depth=3)
    first = h.run("apply", str(profile), "--auto-approve", "--state", str(url))
    assert first.returncode == 0
    # one more step so that an apply would have something to do
    profile = h.write_profile(tmp_path, fake_store, width=1, depth=4)
    damage_sqlite(url, how)
    copy = tmp_path / "copy.db"
    shutil.copy(url, copy)
    commands = [["plan", str(profile)], ["apply", str(profile), "--auto-approve"],
                ["destroy", str(profile), "--auto-approve"], ["state", "list", str(profile)]]
    if how == "step-json":  # read only when needed (planning compares fingerprints)
        commands = [["destroy", str(profile), "--auto-approve"]]
        res = h.run("plan", str(profile), "--state", str(url))
        assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    for args in commands:
        res = h.run(*args, "--state", str(url))
        one_line_error(res, *words)
    assert sum(h.calls(fake_store).values()) == 3, "nothing acted on a damaged state"
    dump = lambda p: list(sqlite3.connect(p).iterdump())  # noqa: E731
    assert dump(url) == dump(copy), "the damaged state was changed"


@pytest.mark.slow
@pytest.mark.postgres
def test_a_postgres_state_from_a_newer_orch_is_refused(tmp_path):
    import psycopg

    from tests.engine.conftest import drop_schema, postgres_url
    url = postgres_url()
    try:
        fake_store = tmp_path / "fake.json"
        profile = h.write_profile(tmp_path, fake_store, width=1, depth=2)
        assert h.run("apply", str(profile), "--auto-approve", "--state", url).returncode == 0
        with psycopg.connect(url) as conn:
            conn.execute("UPDATE orch_meta SET value='99' WHERE key='schema'")
            conn.execute("UPDATE orch_records SET status='bogus' WHERE step_id='c0-1'")
        res = h.run("plan", str(profile), "--state", url)
        one_line_error(res, "newer orch")
        with psycopg.connect(url) as conn:
            conn.execute("UPDATE orch_meta SET value='1' WHERE key='schema'")
        res = h.run("apply", str(profile), "--auto-approve", "--state", url)
        one_line_error(res, "'bogus'")
    finally:
        drop_schema(url)
