"""Failures against a real Keystone and Nova: refused credentials, a token the cloud no longer
accepts, an API stopped while a step waits; and the password never in what orch says."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from os_harness import CloudUnderTest, ListLog, run_step, unique
from plane import Plane

from drivers.openstack import OpenStackDriver
from orchestrator.errors import DriverError, PermanentError, TransientError
from orchestrator.plan import Action

pytestmark = pytest.mark.slow


def test_refused_credentials_fail_permanently_without_the_password(
        os_cloud: CloudUnderTest, tmp_path: Path) -> None:
    doc = yaml.safe_load(os_cloud.clouds_yaml.read_text())
    wrong = "wrong-Pa55-" + unique("x")
    doc["clouds"][os_cloud.name]["auth"]["password"] = wrong
    bad = tmp_path / "clouds.yaml"
    bad.write_text(yaml.safe_dump(doc))
    driver = OpenStackDriver(os_cloud.settings(clouds_yaml=str(bad)))
    log = ListLog()
    try:
        with pytest.raises(PermanentError) as err:
            run_step(driver, "openstack.flavor", {"name": unique("orch-f"), "vcpus": 1,
                                                  "ram": 64}, log=log)
    finally:
        driver.close()
    text = f"{err.value} {err.value.hint}"
    assert "authentication failed" in text and "credentials" in text
    assert wrong not in text and wrong not in " ".join(log.events)


def test_a_token_the_cloud_no_longer_accepts_is_renewed(cloud_driver: OpenStackDriver,
                                                        os_cloud: CloudUnderTest) -> None:
    """What an expired token looks like from the API's side (401 on a token Keystone no
    longer validates), made at once by revoking it: the driver's session authenticates
    again and the step succeeds."""
    session = cloud_driver.cloud(os_cloud.name).conn.session
    old = session.get_token()
    auth_url = session.auth.auth_url.rstrip("/")
    revoked = session.delete(f"{auth_url}/auth/tokens", authenticated=False,
                             headers={"X-Auth-Token": old, "X-Subject-Token": old})
    assert revoked.status_code == 204
    # Keystone itself now refuses it
    check = session.get(f"{auth_url}/auth/tokens", authenticated=False, raise_exc=False,
                        headers={"X-Auth-Token": old, "X-Subject-Token": old})
    assert check.status_code in (401, 404)
    name = unique("orch-tok")
    out = run_step(cloud_driver, "openstack.flavor", {"name": name, "vcpus": 1, "ram": 64})
    assert session.get_token() != old
    run_step(cloud_driver, "openstack.flavor", {"name": name}, action=Action.DELETE,
             prior=out.outputs)


def test_nova_api_stopped_mid_wait_is_transient_and_bounded(
        cloud_driver: OpenStackDriver, os_cloud: CloudUnderTest, plane: Plane) -> None:
    inputs = {"name": unique("orch-midwait"), "image": os_cloud.image,
              "flavor": os_cloud.flavor}
    result: dict[str, Any] = {}

    def apply() -> None:
        try:
            result["out"] = run_step(cloud_driver, "openstack.server", inputs, timeout=600)
        except DriverError as exc:
            result["error"], result["at"] = exc, time.monotonic()

    admin = plane.connect()
    worker = threading.Thread(target=apply)
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while admin.compute.find_server(inputs["name"], ignore_missing=True) is None:
            assert time.monotonic() < deadline and worker.is_alive(), result
            time.sleep(0.2)
        stopped = time.monotonic()
        plane.services["nova"].stop()
        worker.join(timeout=60)
        assert not worker.is_alive()
        assert isinstance(result.get("error"), TransientError), result
        assert result["at"] - stopped < 30  # ended by the next poll, not the step deadline
        assert "refused" in str(result["error"]) or "connect" in str(result["error"])
    finally:
        plane.restart("nova")
        admin.close()
    # applied again once Nova is back: the same server, waited for until ACTIVE
    out = run_step(cloud_driver, "openstack.server", inputs, timeout=600).outputs
    assert out["status"] == "ACTIVE"
    run_step(cloud_driver, "openstack.server", inputs, action=Action.DELETE, prior=out,
             timeout=300)
