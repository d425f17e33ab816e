"""proxmox/ceph-health.yml (profile 93's ceph.health), run by Ansible on this machine against
a STAND-IN for `ceph status --format json` (a shell script answering with the JSON shapes of
Ceph reef/squid: osdmap.num_osds/num_up_osds/num_in_osds, pgmap.pgs_by_state,
health.checks). What is checked is the playbook's own wait: it passes once the cluster
settles, and fails -- bounded -- on HEALTH_WARN with a raised check, a down OSD, too few
OSDs, or PGs that stay degraded, unless the site allows that check."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from standins import need_ansible, play_local, stub_dir

PLAYBOOK = Path(__file__).resolve().parents[2] / "playbooks" / "proxmox" / "ceph-health.yml"

CEPH = r"""#!/bin/sh
# STAND-IN for `ceph status --format json`: answers status.N for poll N, then the last one
n=$(cat "$STUB/polls" 2>/dev/null || echo 0); echo $((n+1)) > "$STUB/polls"
if test -f "$STUB/status.$n"; then cat "$STUB/status.$n"; else cat "$STUB/status.last"; fi
"""


def _status(up: int = 9, osds: int = 9, clean: int = 129, pgs: int = 129,
            checks: dict[str, object] | None = None) -> str:
    by_state = [{"state_name": "active+clean", "count": clean}]
    if clean < pgs:
        by_state.append({"state_name": "active+undersized+degraded", "count": pgs - clean})
    return json.dumps({
        "health": {"status": "HEALTH_WARN" if checks else "HEALTH_OK", "checks": checks or {}},
        "osdmap": {"epoch": 42, "num_osds": osds, "num_up_osds": up, "num_in_osds": up},
        "pgmap": {"num_pgs": pgs, "pgs_by_state": by_state}})


def _run(tmp_path: Path, polls: list[str], **extra: object) -> subprocess.CompletedProcess[str]:
    need_ansible()
    stub = stub_dir(tmp_path, {"ceph": CEPH})
    for i, text in enumerate(polls):
        (stub / f"status.{i}").write_text(text)
    (stub / "status.last").write_text(polls[-1])
    return play_local(PLAYBOOK, {"ceph_osd_hosts": 3, "ceph_osds_per_host": 3,
                                 "ceph_health_retries": 4, "ceph_health_delay": 0, **extra},
                      stub, stub=stub)


def _polls(tmp_path: Path) -> int:
    return int((tmp_path / "stub" / "polls").read_text())


@pytest.mark.slow
def test_it_waits_for_the_cluster_to_settle_then_passes(tmp_path: Path) -> None:
    degraded = _status(clean=100, checks={"PG_DEGRADED": {"severity": "HEALTH_WARN"}})
    run = _run(tmp_path, [degraded, degraded, _status()])
    assert run.returncode == 0, run.stdout[-3000:]
    assert _polls(tmp_path) == 3


@pytest.mark.slow
def test_health_warn_is_not_health(tmp_path: Path) -> None:
    warn = _status(checks={"MON_CLOCK_SKEW": {"severity": "HEALTH_WARN"}})
    run = _run(tmp_path, [warn])
    assert run.returncode != 0
    assert _polls(tmp_path) == 5  # the first try and 4 retries: bounded


@pytest.mark.slow
def test_a_check_the_site_allows_is_tolerated(tmp_path: Path) -> None:
    warn = _status(checks={"MON_CLOCK_SKEW": {"severity": "HEALTH_WARN"}})
    run = _run(tmp_path, [warn], ceph_health_allowed_checks=["MON_CLOCK_SKEW"])
    assert run.returncode == 0, run.stdout[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("status", [_status(up=8), _status(up=6, osds=6)],
                         ids=["an-osd-down", "too-few-osds"])
def test_missing_or_down_osds_fail(tmp_path: Path, status: str) -> None:
    run = _run(tmp_path, [status])
    assert run.returncode != 0


@pytest.mark.slow
def test_pgs_that_stay_degraded_fail_even_without_a_health_check(tmp_path: Path) -> None:
    run = _run(tmp_path, [_status(clean=120)])
    assert run.returncode != 0
