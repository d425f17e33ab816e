"""The Nutanix cluster check (profile 90), run by Ansible on this machine against a STAND-IN
for the AHV host's `ssh` to its CVM: a real CVM runs only on Nutanix's AOS, so a small shell
script answers `cluster status` and `ncli cluster get-redundancy-state` the way Nutanix
documents them. What is checked is the playbook's own logic: a healthy RF2 cluster passes,
a DOWN service, an unreachable CVM or another replication factor fail the step."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from standins import need_ansible, play_local, stub_dir

PLAYBOOK = Path(__file__).resolve().parents[2] / "playbooks" / "nutanix" / "cluster-health.yml"

SSH = r"""#!/bin/sh
# STAND-IN for ssh nutanix@192.168.5.254 CMD on an AHV host
echo "ssh $*" >> "$STUB/log"
test -f "$STUB/unreachable" && { echo "ssh: connect to host: No route to host" >&2; exit 255; }
case "$*" in
  *"cluster status") cat "$STUB/status" >&2;;
  *"get-redundancy-state") cat "$STUB/redundancy";;
  *) exit 127;;
esac
"""

HEALTHY = """2026-12-01 INFO zookeeper_session.py:191 cluster is attempting to connect to Zookeeper
2026-12-01 INFO cluster:2729 Executing action status on SVMs 10.0.0.31,10.0.0.32,10.0.0.33
The state of the cluster: start
Lockdown mode: Disabled

        CVM: 10.0.0.31 Up
                                Zeus   UP       [4521, 4553, 4554]
                           Scavenger   UP       [12220, 12335]
                            Stargate   UP       [14211, 14299]
                             Curator   UP       [15012, 15100]

        CVM: 10.0.0.32 Up, ZeusLeader
                                Zeus   UP       [4410, 4442]
                            Stargate   UP       [14102, 14190]
2026-12-01 INFO cluster:2888 Success!
"""

REDUNDANCY = """    Current Redundancy Factor : 2
    Desired Redundancy Factor : {rf}
    Redundancy Factor Status  : kCassandraPrepareDone=true;kZookeeperPrepareDone=true
"""


def _run(tmp_path: Path, status: str = HEALTHY, rf: int = 2, want: int = 2,
         unreachable: bool = False) -> subprocess.CompletedProcess[str]:
    need_ansible()
    stub = stub_dir(tmp_path, {"ssh": SSH})
    (stub / "status").write_text(status)
    (stub / "redundancy").write_text(REDUNDANCY.format(rf=rf))
    if unreachable:
        (stub / "unreachable").touch()
    return play_local(PLAYBOOK, {"nutanix_replication_factor": want}, stub, stub=stub)


@pytest.mark.slow
def test_a_healthy_rf2_cluster_passes_asking_the_local_cvm(tmp_path: Path) -> None:
    run = _run(tmp_path)
    assert run.returncode == 0, run.stdout[-3000:]
    log = (tmp_path / "stub" / "log").read_text()
    assert "nutanix@192.168.5.254 /usr/local/nutanix/cluster/bin/cluster status" in log


@pytest.mark.slow
def test_a_down_service_fails_and_is_named(tmp_path: Path) -> None:
    run = _run(tmp_path, status=HEALTHY.replace("Curator   UP       [15012, 15100]",
                                                 "Curator   DOWN     []"))
    assert run.returncode != 0
    assert "Curator   DOWN" in run.stdout


@pytest.mark.slow
def test_an_unreachable_cvm_fails_rather_than_passing_on_empty_output(tmp_path: Path) -> None:
    run = _run(tmp_path, unreachable=True)
    assert run.returncode != 0
    assert "rc 255" in run.stdout


@pytest.mark.slow
def test_another_desired_replication_factor_fails(tmp_path: Path) -> None:
    run = _run(tmp_path, rf=2, want=3)
    assert run.returncode != 0
    assert "expected RF3" in run.stdout
