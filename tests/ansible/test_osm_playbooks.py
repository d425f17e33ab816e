"""The OSM playbooks (profile 72), run by Ansible on this machine against STAND-INS of
osmclient's `osm` and of `kubectl`: OSM runs only on a host its installer built, so small
shell scripts record every call and answer like the real CLIs (`*-show` fails for what OSM
does not have, `k8scluster-show --literal` prints the record with its operational state).
What is checked is the playbooks' own logic: NBI found through its Ingress for every osm
call, the cluster's kubeconfig read on the control plane and written 0600 for the OSM user,
the dummy VIM and the cluster added only when missing, `--wait`, a cluster OSM left in ERROR
failing the step, and the password kept out of the output."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from standins import need_ansible, play_local, stub_dir

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks" / "osm"

OSM = r"""#!/bin/sh
# STAND-IN for osmclient's osm CLI
echo "osm $* @$OSM_HOSTNAME" >> "$STUB/log"
case "$1" in
  vim-show) test -f "$STUB/vim-$2";;
  vim-create) touch "$STUB/vim-$3";;
  k8scluster-show)
    test -f "$STUB/cluster-$2" || exit 1
    printf '_admin:\n  operationalState: %s\nname: %s\n' "$(cat "$STUB/state")" "$2";;
  k8scluster-add) touch "$STUB/cluster-$2";;
  *) exit 2;;
esac
"""

KUBECTL = r"""#!/bin/sh
# STAND-IN for kubectl on the OSM host: NBI's Ingress
echo "kubectl $*" >> "$STUB/log"
case "$*" in
  *"ingress nbi-ingress"*) printf 'nbi.192.0.2.10.nip.io';;
  *) exit 2;;
esac
"""


def _stub(tmp_path: Path, state: str = "ENABLED") -> Path:
    stub = stub_dir(tmp_path, {"osm": OSM, "kubectl": KUBECTL})
    (stub / "state").write_text(state)
    (stub / "admin.conf").write_text(
        "apiVersion: v1\nkind: Config\nusers: [{name: a, user: {token: k-s3cret}}]\n")
    (stub / "home").mkdir()
    return stub


def _play(book: str, extra: dict[str, object], stub: Path,
          hosts: str = "osm-1,cp-1,") -> subprocess.CompletedProcess[str]:
    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    # the playbooks become the OSM user; here that is the user running the test
    return play_local(PLAYBOOKS / book, extra, stub, stub=stub, hosts=hosts,
                      args=("-e", f"osm_user={user}"),
                      env={"ANSIBLE_BECOME_METHOD": "su" if user == "root" else "sudo"})


def _vim(stub: Path) -> dict[str, object]:
    return {"k8s_first": "cp-1", "k8s_version": "1.30", "k8s_vim_name": "k8s-vim",
            "osm_home": str(stub / "home"), "k8s_admin_kubeconfig": str(stub / "admin.conf")}


def _calls(stub: Path) -> list[str]:
    return (stub / "log").read_text().splitlines() if (stub / "log").exists() else []


@pytest.mark.slow
def test_vim_registers_the_cluster_once_behind_a_dummy_vim(tmp_path: Path) -> None:
    need_ansible()
    stub = _stub(tmp_path)
    run = _play("vim.yml", _vim(stub), stub)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "k-s3cret" not in run.stdout
    written = stub / "home" / "cnf-cluster.kubeconfig"
    assert written.read_text() == (stub / "admin.conf").read_text()
    assert oct(written.stat().st_mode & 0o777) == "0o600"
    osm = [c for c in _calls(stub) if c.startswith("osm ")]
    assert all(c.endswith("@nbi.192.0.2.10.nip.io") for c in osm), osm
    creates = [c for c in osm if c.startswith("osm vim-create")]
    assert len(creates) == 1 and "--account_type dummy" in creates[0]
    [add] = [c for c in osm if c.startswith("osm k8scluster-add")]
    assert f"--creds {written}" in add and "--vim k8s-vim" in add
    assert "--version 1.30" in add and "--wait" in add and '{"net1": null}' in add

    (stub / "log").unlink()
    again = _play("vim.yml", _vim(stub), stub)
    assert again.returncode == 0, again.stdout[-3000:]
    assert not [c for c in _calls(stub) if "vim-create" in c or "k8scluster-add" in c]


@pytest.mark.slow
def test_a_cluster_osm_cannot_reach_fails_the_step(tmp_path: Path) -> None:
    need_ansible()
    stub = _stub(tmp_path, state="ERROR")
    run = _play("vim.yml", _vim(stub), stub)
    assert run.returncode != 0
    assert "not ENABLED" in run.stdout


@pytest.mark.slow
def test_vim_refuses_a_control_plane_outside_the_run(tmp_path: Path) -> None:
    need_ansible()
    stub = _stub(tmp_path)
    run = _play("vim.yml", {**_vim(stub), "k8s_first": "192.0.2.99"}, stub)
    assert run.returncode != 0 and "run vim.yml once" in run.stdout
    assert not _calls(stub)


@pytest.mark.slow
def test_openstack_vim_keeps_the_password_out_and_is_created_once(tmp_path: Path) -> None:
    need_ansible()
    stub = _stub(tmp_path)
    extra = {"auth_url": "https://keystone.example:5000/v3", "user": "osm",
             "project": "nfv", "password": "os-s3cret"}
    run = _play("openstack-vim.yml", extra, stub, hosts="osm-1,")
    assert run.returncode == 0, run.stdout[-3000:]
    assert "os-s3cret" not in run.stdout
    [create] = [c for c in _calls(stub) if c.startswith("osm vim-create")]
    assert "--name openstack-vim --account_type openstack" in create
    assert "--tenant nfv" in create
    (stub / "log").unlink()
    again = _play("openstack-vim.yml", extra, stub, hosts="osm-1,")
    assert again.returncode == 0
    assert not [c for c in _calls(stub) if "vim-create" in c]
