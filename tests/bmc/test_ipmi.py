"""The IPMI driver against virtualbmc, checked through libvirt (and ipmitool).

virtualbmc completes only cipher suite 3 with pyghmi's client: the driver must negotiate
down from 17 and say so.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
from typing import Any

import pytest

from drivers.ipmi import IpmiDriver
from drivers.ipmi.settings import IpmiSettings
from orchestrator.errors import DriverError, NotSupportedError, PermanentError, TransientError
from orchestrator.secrets import Secret
from tests.bmc.conftest import RecordingLog, apply_step, host_inputs, no_secret, timed

pytestmark = [pytest.mark.bmc, pytest.mark.libvirt]

FAST = IpmiSettings(poll_interval=0.3, power_timeout=30, graceful_timeout=3,
                    retry_initial_wait=0.2, retry_max_wait=1.0)


@pytest.fixture
def ipmi(bmc_lab: Any, domain_a: Any, password: Secret) -> Any:
    endpoint = bmc_lab.domains[domain_a.name].ipmi_endpoint

    def inputs(**extra: Any) -> dict[str, Any]:
        return {**host_inputs("ipmi", endpoint, password), **extra}
    inputs.endpoint = endpoint  # type: ignore[attr-defined]
    return inputs


def _ipmitool_power(endpoint: str, password: Secret) -> str:
    host, port = endpoint.rsplit(":", 1)
    # -E reads the password from IPMI_PASSWORD: it never shows on a command line.
    out = subprocess.run(["ipmitool", "-I", "lanplus", "-H", host, "-p", port, "-U", "admin",
                          "-E", "power", "status"], capture_output=True, text=True, timeout=30,
                         env={**os.environ, "IPMI_PASSWORD": password.reveal()}, check=True)
    return out.stdout.strip()


def test_negotiates_cipher_suite_3_with_virtualbmc_and_reports_it(
        ipmi: Any, password: Secret, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    log = RecordingLog()
    out = apply_step(IpmiDriver(FAST), "ipmi.power", ipmi(state="off"), log)
    assert out["cipher_suite"] == 3
    session_lines = [line for line in log.lines if "ipmi.session" in line]
    assert session_lines and "'cipher_suite': 3" in session_lines[0]
    assert "17: 'protocol mismatch" in session_lines[0]
    no_secret(password, log.text(), caplog.text, repr(out))


def test_suite_17_alone_is_refused_as_not_supported(ipmi: Any, password: Secret) -> None:
    driver = IpmiDriver(IpmiSettings(cipher_suites=[17], retry_attempts=1))
    with timed() as elapsed, pytest.raises(NotSupportedError, match="no cipher suite") as err:
        apply_step(driver, "ipmi.power", ipmi(state="on"))
    print(f"\n  NotSupportedError in {elapsed[0]:.2f} s: {err.value}")
    no_secret(password, str(err.value))


def test_power_on_restart_graceful_off_and_off_change_the_domain(
        ipmi: Any, domain_a: Any, password: Secret) -> None:
    driver = IpmiDriver(FAST)
    out = apply_step(driver, "ipmi.power", ipmi(state="on"))
    assert out["action"] == "on" and domain_a.active()
    if shutil.which("ipmitool"):
        assert _ipmitool_power(ipmi.endpoint, password) == "Chassis Power is on"
    assert apply_step(driver, "ipmi.power", ipmi(state="on"))["action"] is None
    out = apply_step(driver, "ipmi.power", ipmi(state="restart"))
    assert out["action"] == "reset" and domain_a.active()
    out = apply_step(driver, "ipmi.power", ipmi(state="graceful-off", force_after_graceful=True))
    assert out["forced"] is True and not domain_a.active()
    apply_step(driver, "ipmi.power", ipmi(state="on"))
    out = apply_step(driver, "ipmi.power", ipmi(state="off"))
    assert out["action"] == "off" and out["power"] == "off" and not domain_a.active()


def test_wait_power_sees_the_host_power_off_by_itself(ipmi: Any, domain_a: Any) -> None:
    import threading

    driver = IpmiDriver(FAST)
    apply_step(driver, "ipmi.power", ipmi(state="on"))
    threading.Timer(2.0, lambda: domain_a.dom().destroy()).start()
    out = apply_step(driver, "ipmi.wait_power", ipmi(state="off", timeout=30))
    assert out["power"] == "off"


@pytest.mark.parametrize(("device", "libvirt_dev"),
                         [("pxe", "network"), ("cd", "cdrom"), ("disk", "hd")])
def test_boot_device_rewrites_the_persistent_boot_order(
        ipmi: Any, domain_a: Any, device: str, libvirt_dev: str) -> None:
    out = apply_step(IpmiDriver(FAST), "ipmi.boot_device", ipmi(device=device))
    assert out["confirmed"] and out["readback"]["device"] == device
    assert domain_a.first_boot_device() == libvirt_dev


def test_bad_boot_device_is_refused_before_any_packet(password: Secret) -> None:
    # The endpoint is a port nobody answers on: a packet sent would cost seconds.
    with timed() as elapsed, pytest.raises(PermanentError, match="device 'usb'"):
        apply_step(IpmiDriver(FAST), "ipmi.boot_device",
                   {**host_inputs("ipmi", "127.0.0.1:9", password), "device": "usb"})
    assert elapsed[0] < 0.5


def _failure(inputs: dict[str, Any], password: Secret, caplog: Any, capsys: Any,
             settings: IpmiSettings) -> tuple[DriverError, float, RecordingLog]:
    caplog.set_level(logging.DEBUG)
    log = RecordingLog()
    with timed() as elapsed, pytest.raises(DriverError) as err:
        apply_step(IpmiDriver(settings), "ipmi.power", inputs, log)
    out, errout = capsys.readouterr()
    for text in (str(err.value), err.value.render(), log.text(), caplog.text, out, errout):
        no_secret(password, text)
    with capsys.disabled():
        print(f"\n  {type(err.value).__name__} in {elapsed[0]:.2f} s: {err.value}")
    return err.value, elapsed[0], log


def test_wrong_password_is_permanent_and_quick(ipmi: Any, caplog: Any, capsys: Any) -> None:
    wrong = Secret("env:WRONG_IPMI_PASSWORD", "Wr0ngPass-xyz")
    inputs = ipmi(state="on")
    inputs["host"]["bmc"]["password"] = wrong
    error, seconds, log = _failure(inputs, wrong, caplog, capsys, FAST)
    assert isinstance(error, PermanentError) and "authentication failed" in str(error)
    assert not any("ipmi.retry" in line for line in log.lines) and seconds < 3


def test_silent_bmc_is_transient_within_the_budget(password: Secret, caplog: Any,
                                                   capsys: Any) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:  # nobody answers there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = IpmiSettings(retry_attempts=2, retry_total_seconds=8, retry_initial_wait=0.2,
                            retry_max_wait=1.0)
    error, seconds, log = _failure(
        {**host_inputs("ipmi", f"127.0.0.1:{port}", password), "state": "on"}, password,
        caplog, capsys, settings)
    assert isinstance(error, TransientError) and "no answer" in str(error)
    assert sum("ipmi.retry" in line for line in log.lines) == 1
    assert seconds < 15  # pyghmi gives up a session setup after ~5 s
