"""`orch plan` and `orch apply` of OpenStack steps against the test plane, the cloud handed
over as a clouds.yaml secret reference (`cloud: {name, clouds_yaml: {$secret: file:PATH}}`,
what the layer that builds a cloud publishes): the password is in no output, log, plan or
state, and a second apply changes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from os_harness import CloudUnderTest, unique

from tests.engine.helpers import run_orch, write_profile

pytestmark = pytest.mark.slow


def test_apply_with_a_handed_over_clouds_yaml_leaks_no_password(
        os_cloud: CloudUnderTest, tmp_path: Path) -> None:
    if os_cloud.plane is None:
        pytest.skip("greps for the plane's own password")
    password = os_cloud.plane.password
    handed = tmp_path / "secrets" / "clouds.yaml"  # what the cloud-building layer writes
    handed.parent.mkdir()
    shutil.copy(os_cloud.clouds_yaml, handed)
    cloud = {"name": os_cloud.name, "clouds_yaml": {"$secret": f"file:{handed}"}}
    disk = tmp_path / "disk.raw"
    disk.write_bytes(b"\0" * 65536)
    tag = unique("orch-cli")
    profile = write_profile(tmp_path, [
        {"name": "flavor", "type": "openstack.flavor",
         "with": {"cloud": cloud, "name": f"{tag}-flavor", "vcpus": 1, "ram": 64, "disk": 1}},
        {"name": "image", "type": "openstack.image",
         "with": {"cloud": cloud, "name": f"{tag}-image", "file": str(disk),
                  "disk_format": "raw"}},
        {"name": "network", "type": "openstack.network",
         "with": {"cloud": cloud, "name": f"{tag}-net", "cidr": "10.253.0.0/24"}},
        {"name": "server", "type": "openstack.server", "after": ["flavor", "image", "network"],
         "with": {"cloud": cloud, "name": f"{tag}-vm", "flavor": f"{tag}-flavor",
                  "image": f"{tag}-image", "network": f"{tag}-net"}},
    ], roles={}, drivers={"openstack": {"poll_interval": 1.0}})
    state = str(tmp_path / "state.db")
    outputs = [run_orch("plan", str(profile), "--state", state, "--out",
                        str(tmp_path / "plan.json"))]
    applied = run_orch("--log-format", "json", "--log-level", "debug", "apply",
                       str(tmp_path / "plan.json"), timeout=900)
    outputs.append(applied)
    assert applied.returncode == 0, applied.stderr[-3000:]
    outputs.append(run_orch("state", "show", str(profile), "server", "--state", state))
    assert "ACTIVE" in outputs[-1].stdout
    again = run_orch("plan", str(profile), "--state", state, "--format", "json")
    outputs.append(again)
    assert {a for s in json.loads(again.stdout)["steps"] for a in s["actions"]} == {"no-op"}, \
        again.stdout
    destroyed = run_orch("--log-level", "debug", "destroy", str(profile), "--state", state,
                         "--auto-approve", timeout=900)
    outputs.append(destroyed)
    assert destroyed.returncode == 0, destroyed.stderr[-3000:]
    for res in outputs:
        assert password not in res.stdout and password not in res.stderr, res.args
    for path in tmp_path.rglob("*"):
        if path.is_file() and path != handed:
            assert password.encode() not in path.read_bytes(), path
    assert f"file:{handed}" in (tmp_path / "plan.json").read_text()  # the reference only
