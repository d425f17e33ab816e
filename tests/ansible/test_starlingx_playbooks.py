"""The StarlingX playbooks (profile 100), run by Ansible on this machine against STAND-INS of
StarlingX's `dcmanager` and `system` CLIs: those exist only on a StarlingX System Controller,
so small shell scripts record every call and answer like the real CLIs (deploy status,
availability, administrative state, disks). What is checked is the playbooks' own logic:
the values files they write, the CLI calls in order, the waits, the idempotent second run,
the secrets kept out of the output, and the refusals."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from standins import need_ansible, play_local, stub_dir

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks" / "starlingx"

DCMANAGER = r"""#!/bin/sh
# STAND-IN for StarlingX's dcmanager CLI
echo "dcmanager $*" >> "$STUB/log"
test "$OS_PASSWORD" = 'pw=x' || { echo "no openrc environment" >&2; exit 3; }
case "$*" in
  "subcloud show "*" -c deploy_status -f value")
    n=$(cat "$STUB/polls" 2>/dev/null || echo 0); echo $((n+1)) > "$STUB/polls"
    if test "$n" -ge 1; then cat "$STUB/final_status"; else echo installing; fi;;
  "subcloud show "*" -c region_name -f value") echo 2f0c1e9a;;
  "subcloud show "*) test -f "$STUB/added";;
  "subcloud add "*) touch "$STUB/added";;
esac
"""

SYSTEM = r"""#!/bin/sh
# STAND-IN for StarlingX's system (sysinv) CLI
echo "system $*" >> "$STUB/log"
case "$*" in
  *"host-list --format value -c hostname"*)
    echo controller-0; if test -f "$STUB/c1"; then echo controller-1; fi;;
  *"host-update 2 personality=controller"*) touch "$STUB/c1";;
  *"-c availability -f value"*) test -f "$STUB/unlocked" && echo available || echo online;;
  *"-c administrative -f value"*) test -f "$STUB/unlocked" && echo unlocked || echo locked;;
  *interface-network-list*) echo mgmt;;
  *host-disk-list*) echo "uuid-a /dev/nvme0n1"; echo "uuid-b /dev/nvme1n1";;
  *host-unlock*) touch "$STUB/unlocked";;
esac
exit 0
"""


def _stub(tmp_path: Path, final_status: str = "complete") -> Path:
    stub = stub_dir(tmp_path, {"dcmanager": DCMANAGER, "system": SYSTEM})
    (stub / "openrc").write_text("export OS_USERNAME=admin OS_PASSWORD='pw=x'\n")
    (stub / "final_status").write_text(final_status + "\n")
    return stub


def _play(book: str, extra: dict[str, object], stub: Path) -> subprocess.CompletedProcess[str]:
    return play_local(PLAYBOOKS / book, extra, stub, stub=stub)


def _add(stub: Path, **over: object) -> dict[str, object]:
    return {"subcloud_name": "subcloud-dx-2", "system_mode": "duplex", "site_number": 52,
            "bootstrap_values": "name: {NAME}\nsystem_mode: {MODE}\n"
                                "management_subnet: 192.168.{N}.0/24\n",
            "bootstrap_address": "198.51.100.20", "nexthop_gateway": "198.51.100.1",
            "bmc_address": "https://10.0.0.9:8443/redfish/v1", "bmc_password": "bmc-s3cret",
            "sysadmin_password": "sys-s3cret", "osd_device": "/dev/nvme1n1",
            "values_dir": str(stub), "openrc_file": str(stub / "openrc"), "poll_seconds": 1,
            **over}


def _calls(stub: Path) -> list[str]:
    return (stub / "log").read_text().splitlines()


@pytest.mark.slow
def test_subcloud_add_installs_bootstraps_configures_and_unlocks(tmp_path: Path) -> None:
    need_ansible()
    stub = _stub(tmp_path)
    run = _play("subcloud.yml", _add(stub), stub)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "bmc-s3cret" not in run.stdout and "sys-s3cret" not in run.stdout
    boot = yaml.safe_load((stub / "subcloud-dx-2-bootstrap.yml").read_text())
    assert boot == {"name": "subcloud-dx-2", "system_mode": "duplex",
                    "management_subnet": "192.168.52.0/24"}
    install = yaml.safe_load((stub / "subcloud-dx-2-install.yml").read_text())
    assert install["bmc_address"] == "10.0.0.9"
    assert install["bootstrap_address"] == "198.51.100.20"
    assert install["software_version"] == "24.09" and install["install_type"] == 2
    assert oct((stub / "subcloud-dx-2-install.yml").stat().st_mode & 0o777) == "0o600"
    calls = _calls(stub)
    add = next(c for c in calls if c.startswith("dcmanager subcloud add"))
    assert "--install-values" in add and "--bmc-password bmc-s3cret" in add
    region = "system --os-region-name 2f0c1e9a "
    wanted = ["host-if-modify controller-0 oam0 -c platform",
              "interface-network-assign controller-0 oam0 oam",
              "storage-backend-add ceph --confirmed", "host-stor-add controller-0 uuid-b",
              "host-unlock controller-0"]
    done = [c.removeprefix(region) for c in calls if c.startswith(region)]
    assert [c for c in done if c in wanted] == wanted
    # the deploy status was polled until complete, the unlock before the last availability
    assert sum("deploy_status" in c for c in calls) == 2
    assert done[-1] == "host-show controller-0 -c availability -f value"

    (stub / "log").unlink()
    again = _play("subcloud.yml", _add(stub), stub)
    assert again.returncode == 0, again.stdout[-3000:]
    assert not any("subcloud add" in c or "host-unlock" in c for c in _calls(stub))


@pytest.mark.slow
def test_a_failed_remote_install_fails_the_step(tmp_path: Path) -> None:
    need_ansible()
    stub = _stub(tmp_path, final_status="install-failed")
    run = _play("subcloud.yml", _add(stub), stub)
    assert run.returncode != 0
    assert "install-failed" in run.stdout
    assert not any("host-unlock" in c for c in _calls(stub))


@pytest.mark.slow
def test_second_controller_of_an_aio_dx_site(tmp_path: Path) -> None:
    need_ansible()
    stub = _stub(tmp_path)
    run = _play("subcloud.yml", {"stage": "controller-1", "subcloud_name": "subcloud-dx-2",
                                 "system_mode": "duplex", "osd_device": "/dev/nvme1n1",
                                 "openrc_file": str(stub / "openrc"), "poll_seconds": 1}, stub)
    assert run.returncode == 0, run.stdout[-3000:]
    calls = _calls(stub)
    assert not [c for c in calls if "subcloud add" in c or "storage-backend-add" in c]
    assert any(c.endswith("host-update 2 personality=controller") for c in calls)
    assert any(c.endswith("host-unlock controller-1") for c in calls)


@pytest.mark.slow
def test_subcloud_add_refuses_missing_values(tmp_path: Path) -> None:
    need_ansible()
    stub = _stub(tmp_path)
    run = _play("subcloud.yml", _add(stub, bmc_password=""), stub)
    assert run.returncode != 0 and "stage add needs" in run.stdout
    assert not (stub / "log").exists()


@pytest.mark.slow
def test_bootstrap_overrides(tmp_path: Path) -> None:
    need_ansible()
    out = tmp_path / "localhost.yml"
    base = {"external_oam_subnet": "192.0.2.0/24", "external_oam_gateway_address": "192.0.2.1",
            "external_oam_floating_address": "192.0.2.240", "admin_password": "adm-s3cret",
            "overrides_file": str(out)}
    stub = _stub(tmp_path)
    refused = _play("bootstrap.yml", {**base, "system_mode": "duplex"}, stub)
    assert refused.returncode != 0 and "needs external_oam_node_0_address" in refused.stdout
    assert not out.exists()
    run = _play("bootstrap.yml", {**base, "system_mode": "duplex",
                                  "distributed_cloud_role": "systemcontroller",
                                  "dns_servers": "192.0.2.53, 192.0.2.54",
                                  "external_oam_node_0_address": "192.0.2.241",
                                  "external_oam_node_1_address": "192.0.2.242"}, stub)
    # the last task runs StarlingX's own bootstrap playbook, absent here
    assert "stx-ansible/playbooks/bootstrap.yml" in run.stdout
    assert "adm-s3cret" not in run.stdout
    written = yaml.safe_load(out.read_text())
    assert written["distributed_cloud_role"] == "systemcontroller"
    assert written["dns_servers"] == ["192.0.2.53", "192.0.2.54"]
    assert written["external_oam_node_1_address"] == "192.0.2.242"
    assert written["admin_password"] == written["ansible_become_pass"] == "adm-s3cret"
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    simplex = _play("bootstrap.yml", {**base, "system_mode": "simplex"}, stub)
    assert "stx-ansible/playbooks/bootstrap.yml" in simplex.stdout
    written = yaml.safe_load(out.read_text())
    assert "distributed_cloud_role" not in written and "external_oam_node_0_address" not in written
