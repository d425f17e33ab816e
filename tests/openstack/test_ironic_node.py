"""ironic.node against a real standalone Ironic: enroll, manage, inspect, provide, read and
delete; classified errors; no BMC password in errors, logs or outputs."""

from __future__ import annotations

import socket
import time

import pytest
from ironic_service import Ironic
from os_harness import ListLog, ironic_settings, run_step, step_of, unique

from drivers.openstack import OpenStackDriver
from orchestrator.errors import PermanentError, TransientError
from orchestrator.plan import Action
from orchestrator.secrets import Secret

pytestmark = pytest.mark.slow  # starts a real Ironic (about 5 s) for the session


def fake_node(name: str, **extra: object) -> dict[str, object]:
    return {"name": name, "driver": "fake-hardware",
            "driver_info": {"fake_password": Secret("env:FAKE_BMC_PW", "s3cret-bmc-pw")},
            "properties": {"cpus": 4, "memory_mb": 8192, "local_gb": 40, "cpu_arch": "x86_64"},
            **extra}


def node(driver: OpenStackDriver, name: str) -> object:
    return driver.cloud().conn.baremetal.find_node(name, ignore_missing=True)


def test_a_node_is_enrolled_managed_and_provided_to_available(driver: OpenStackDriver,
                                                              ironic: Ironic) -> None:
    name = unique("node")
    log = ListLog()
    result = run_step(driver, "ironic.node",
                      fake_node(name, ports=["52:54:00:AA:00:01"]), log=log)

    assert result.outputs["provision_state"] == "available"
    assert result.outputs["transitions"] == ["manage", "provide"]
    assert result.outputs["endpoint"] == ironic.url
    found = node(driver, name)
    assert found is not None and found.provision_state == "available"  # type: ignore[attr-defined]
    ports = list(driver.cloud().conn.baremetal.ports(node_uuid=result.outputs["uuid"]))
    assert [p.address for p in ports] == ["52:54:00:aa:00:01"]
    assert "s3cret-bmc-pw" not in repr(result.outputs) + " ".join(log.events)


def test_inspection_runs_when_asked_and_provide_false_stops_at_manageable(
        driver: OpenStackDriver) -> None:
    name = unique("node")
    result = run_step(driver, "ironic.node", fake_node(name, inspect=True, provide=False))
    assert result.outputs["provision_state"] == "manageable"
    assert result.outputs["transitions"] == ["manage", "inspect"]


def test_applying_again_is_a_no_op_and_read_shows_the_node(driver: OpenStackDriver) -> None:
    name = unique("node")
    inputs = fake_node(name)
    first = run_step(driver, "ironic.node", inputs)
    second = run_step(driver, "ironic.node", inputs, action=Action.UPDATE,
                      prior=first.outputs)
    assert second.outputs["uuid"] == first.outputs["uuid"]
    assert second.outputs["transitions"] == []

    observed = driver.read(step_of("ironic.node", inputs), second.outputs)
    assert observed.exists and not observed.drift
    assert observed.outputs["provision_state"] == "available"


def test_a_node_moved_back_to_manageable_is_drift_and_apply_provides_it_again(
        driver: OpenStackDriver) -> None:
    name = unique("node")
    inputs = fake_node(name)
    outputs = run_step(driver, "ironic.node", inputs).outputs
    bm = driver.cloud().conn.baremetal
    bm.set_node_provision_state(outputs["uuid"], "manage", wait=True, timeout=30)

    observed = driver.read(step_of("ironic.node", inputs), outputs)
    assert observed.drift == {"provision_state": "node is manageable, the step left it "
                                                 "available"}
    again = run_step(driver, "ironic.node", inputs, action=Action.UPDATE, prior=outputs)
    assert again.outputs["provision_state"] == "available"


def test_delete_removes_the_node_and_read_then_says_gone(driver: OpenStackDriver) -> None:
    name = unique("node")
    inputs = fake_node(name)
    outputs = run_step(driver, "ironic.node", inputs).outputs
    run_step(driver, "ironic.node", inputs, action=Action.DELETE, prior=outputs)

    assert node(driver, name) is None
    assert not driver.read(step_of("ironic.node", inputs), outputs).exists
    run_step(driver, "ironic.node", inputs, action=Action.DELETE, prior=outputs)  # idempotent


def test_a_deployed_node_is_undeployed_before_it_is_deleted(driver: OpenStackDriver) -> None:
    name = unique("node")
    inputs = fake_node(name, interfaces={"deploy": "fake", "boot": "fake"})
    outputs = run_step(driver, "ironic.node", inputs).outputs
    bm = driver.cloud().conn.baremetal
    bm.set_node_provision_state(outputs["uuid"], "active", wait=True, timeout=60)
    assert bm.get_node(outputs["uuid"]).provision_state == "active"

    run_step(driver, "ironic.node", inputs, action=Action.DELETE, prior=outputs, timeout=90)
    assert node(driver, name) is None


def test_an_unknown_driver_is_permanent_and_names_ironic(driver: OpenStackDriver,
                                                         ironic: Ironic) -> None:
    with pytest.raises(PermanentError) as info:
        run_step(driver, "ironic.node", {**fake_node(unique("node")),
                                         "driver": "no-such-hardware"})
    err = info.value
    assert "HTTP 400" in str(err) and "no-such-hardware" in str(err)
    assert err.endpoint == ironic.url and err.operation.startswith("create node ")
    assert "s3cret-bmc-pw" not in err.render()


def test_an_unreachable_redfish_bmc_is_permanent_with_ironics_reason(
        driver: OpenStackDriver) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inputs = {"name": unique("rf"), "driver": "redfish",
              "bmc": {"address": f"http://127.0.0.1:{port}", "username": "admin",
                      "password": Secret("env:BMC_PW", "rf-pw-never-shown"),
                      "system_id": "/redfish/v1/Systems/1"}}
    with pytest.raises(PermanentError) as info:
        run_step(driver, "ironic.node", inputs, timeout=60)
    assert "manage failed" in str(info.value)
    assert "rf-pw-never-shown" not in info.value.render()
    found = node(driver, inputs["name"])  # type: ignore[arg-type]
    assert found.driver_info["redfish_password"] == "******"  # type: ignore[attr-defined]
    run_step(driver, "ironic.node", inputs, action=Action.DELETE)


def test_ironic_down_is_transient_and_fails_within_a_bounded_time() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = OpenStackDriver(ironic_settings(f"http://127.0.0.1:{port}", api_timeout=3.0))
    started = time.monotonic()
    with pytest.raises(TransientError) as info:
        run_step(down, "ironic.node", fake_node("unreachable"))
    assert time.monotonic() - started < 5
    assert info.value.endpoint == f"http://127.0.0.1:{port}"
    down.close()


def test_bad_inputs_are_permanent_before_any_request(driver: OpenStackDriver) -> None:
    with pytest.raises(PermanentError, match="needs `name` and `driver`"):
        run_step(driver, "ironic.node", {"name": "x"})
    with pytest.raises(PermanentError, match=r"bmc\.system_id has no meaning for driver ipmi"):
        run_step(driver, "ironic.node", {"name": "x", "driver": "ipmi",
                                         "bmc": {"system_id": "1"}})

