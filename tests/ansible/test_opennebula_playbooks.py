"""The OpenNebula playbooks of profile 97 (opennebula/oneke-service.yml and
opennebula/resources.yml), run by Ansible on this machine against STAND-INS for
OpenNebula's CLIs (oneflow, oneflow-template, onevm, onedatastore, onevnet): shell scripts
that record every call and answer with the shapes OpenNebula documents (OneFlow's JSON
DOCUMENT.TEMPLATE.BODY.state and roles[].nodes[].deploy_id, ONEKE_KUBECONFIG in the master
VM's user template). No OpenNebula runs here. What is checked is the playbooks' logic: the
OneFlow wait ends on RUNNING and fails, bounded, on FAILED_DEPLOYING or a service that
never runs; the kubeconfig comes from the master role's VM; the datastores carry the
libvirt secret; only missing objects are created; the CLIs run with oneadmin's ONE_AUTH."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
from standins import need_ansible, play_local, stub_dir

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks" / "opennebula"

CLI = r"""#!/bin/sh
# STAND-IN for OpenNebula's CLIs: name from $0, state under $STUB
name=$(basename "$0")
echo "$name $* ONE_AUTH=$ONE_AUTH" >> "$STUB/log"
case "$name $*" in
  "oneflow show oneke-1") test -f "$STUB/instantiated";;
  "oneflow-template instantiate "*) touch "$STUB/instantiated";;
  "oneflow show oneke-1 --json")
    n=$(cat "$STUB/polls" 2>/dev/null || echo 0); echo $((n+1)) > "$STUB/polls"
    if test "$n" -ge 1; then s=$(cat "$STUB/final_state"); else s=1; fi
    roles='[{"name":"vnf","nodes":[{"deploy_id":40}]},{"name":"master","nodes":[{"deploy_id":41}]}]'
    printf '{"DOCUMENT":{"TEMPLATE":{"BODY":{"state":%s,"roles":%s}}}}\n' "$s" "$roles";;
  "onevm show 41 --json")
    printf '{"VM":{"USER_TEMPLATE":{"ONEKE_KUBECONFIG":"%s"}}}\n' "$(cat "$STUB/kubeconfig.b64")";;
  "onedatastore show ceph-images") test -f "$STUB/have-images";;
  "onedatastore show "*|"onevnet show "*) exit 255;;
  *" create "*) :;;
  *) exit 3;;
esac
"""


def _stub(tmp_path: Path, final_state: int = 2) -> Path:
    need_ansible()
    stub = stub_dir(tmp_path, dict.fromkeys(
        ("oneflow", "oneflow-template", "onevm", "onedatastore", "onevnet"), CLI))
    (stub / "final_state").write_text(str(final_state))
    config = base64.b64encode(b"apiVersion: v1\nkind: Config\n").decode()
    (stub / "kubeconfig.b64").write_text(config)
    return stub


def _play(book: str, stub: Path, extra: dict[str, object]) -> subprocess.CompletedProcess[str]:
    return play_local(PLAYBOOKS / book, extra, stub, stub=stub)


def _oneke(stub: Path, timeout: int = 60) -> subprocess.CompletedProcess[str]:
    return _play("oneke-service.yml", stub, {
        "oneke_template": "oneke", "oneke_service": "oneke-1", "oneke_timeout": timeout,
        "oneke_kubeconfig": str(stub / "kube" / "admin.conf"), "oneke_poll_delay": 0})


@pytest.mark.slow
def test_oneke_waits_for_running_then_writes_the_master_roles_kubeconfig(tmp_path: Path) -> None:
    stub = _stub(tmp_path)
    run = _oneke(stub)
    assert run.returncode == 0, run.stdout[-3000:]
    config = stub / "kube" / "admin.conf"
    assert config.read_text() == "apiVersion: v1\nkind: Config\n"
    assert oct(config.stat().st_mode & 0o777) == "0o600"
    log = (stub / "log").read_text()
    assert "oneflow-template instantiate oneke --name oneke-1" in log
    assert "onevm show 41 --json" in log
    assert "ONE_AUTH=/var/lib/one/.one/one_auth" in log


@pytest.mark.slow
def test_a_failed_deployment_ends_the_wait_and_fails(tmp_path: Path) -> None:
    stub = _stub(tmp_path, final_state=7)  # FAILED_DEPLOYING
    run = _oneke(stub, timeout=600)
    assert run.returncode != 0
    assert int((stub / "polls").read_text()) == 2  # ended at once, not after 600 s of polls
    assert not (stub / "kube" / "admin.conf").exists()


@pytest.mark.slow
def test_a_service_that_never_runs_fails_when_time_is_up(tmp_path: Path) -> None:
    stub = _stub(tmp_path, final_state=1)  # DEPLOYING for ever
    run = _oneke(stub, timeout=40)
    assert run.returncode != 0
    assert int((stub / "polls").read_text()) == 3  # the first try and 2 retries


@pytest.mark.slow
def test_datastores_carry_the_libvirt_secret_and_only_missing_objects_are_created(
        tmp_path: Path) -> None:
    stub = _stub(tmp_path)
    (stub / "have-images").touch()
    run = _play("resources.yml", stub, {
        "one_ceph_hosts": ["10.0.0.1", "10.0.0.2"], "one_ceph_secret_uuid": "uuid-1",
        "one_bridge_list": ["10.0.1.1"], "one_bridge": "br0", "one_vnet_first_ip": "10.97.0.100",
        "one_template_dir": str(stub / "tmpl")})
    assert run.returncode == 0, run.stdout[-3000:]
    system = (stub / "tmpl" / "ceph-system.tmpl").read_text()
    assert 'CEPH_SECRET="uuid-1"' in system and 'TYPE="SYSTEM_DS"' in system
    assert 'CEPH_HOST="10.0.0.1 10.0.0.2"' in system and "DS_MAD" not in system
    assert 'DS_MAD="ceph"' in (stub / "tmpl" / "ceph-images.tmpl").read_text()
    assert 'BRIDGE="br0"' in (stub / "tmpl" / "public.tmpl").read_text()
    creates = [c.split(" ONE_AUTH")[0] for c in (stub / "log").read_text().splitlines()
               if " create " in c]
    assert creates == [f"onedatastore create {stub}/tmpl/ceph-system.tmpl",
                       f"onevnet create {stub}/tmpl/public.tmpl"]
