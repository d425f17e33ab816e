"""Failure modes of a Redfish BMC, each ending in the right classified error in bounded time.

Refused connections, a BMC that goes away mid-operation, 500s, 409s and a BMC that accepts
connections and never answers are transient (retried within the budget, then reported);
wrong credentials are permanent (reported at once). The password appears in no exception,
log line, captured log record or printed output.
"""

from __future__ import annotations

import base64
import logging
import os
import signal
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from drivers.redfish import RedfishDriver
from drivers.redfish.settings import RedfishSettings
from orchestrator.errors import DriverError, PermanentError, TransientError
from orchestrator.secrets import Secret
from tests.bmc.conftest import RecordingLog, apply_step, host_inputs, no_secret, timed
from tests.bmc.doubles import DROP, FaultProxy, SilentServer

pytestmark = [pytest.mark.bmc, pytest.mark.libvirt]

# Budget: 3 attempts within 8 s; one request may take 1.5 s to answer.
BOUNDED = RedfishSettings(connect_timeout=1.0, read_timeout=1.5, retry_attempts=3,
                          retry_total_seconds=8.0, retry_initial_wait=0.2, retry_max_wait=1.0,
                          poll_interval=0.3, power_timeout=30)
LIMIT = 12.0  # seconds any failure may take to be classified under BOUNDED


def _classify(endpoint: str, system: str, password: Secret, caplog: pytest.LogCaptureFixture,
              capsys: pytest.CaptureFixture[str], *, username: str = "admin",
              driver: RedfishDriver | None = None, kind: str = "redfish.power",
              **extra: Any) -> tuple[DriverError, float, RecordingLog]:
    caplog.set_level(logging.DEBUG)
    driver = driver or RedfishDriver(BOUNDED)
    log = RecordingLog()
    inputs = host_inputs("redfish", endpoint, password, system, username)
    inputs.update(extra or {"state": "on"})
    with timed() as elapsed, pytest.raises(DriverError) as err:
        apply_step(driver, kind, inputs, log)
    out, errout = capsys.readouterr()
    basic = base64.b64encode(f"{username}:{password.reveal()}".encode()).decode()
    for text in (str(err.value), err.value.render(), repr(err.value), log.text(), caplog.text,
                 out, errout):
        no_secret(password, text)
        assert basic not in text, "the Basic auth header leaked"
    assert endpoint in str(err.value) and "redfish." in str(err.value)
    with capsys.disabled():
        print(f"\n  {type(err.value).__name__} in {elapsed[0]:.2f} s: {err.value}")
    return err.value, elapsed[0], log


def _retries(log: RecordingLog) -> int:
    return sum("redfish.retry" in line for line in log.lines)


def test_connection_refused_is_transient_and_bounded(password: Secret, caplog: Any,
                                                     capsys: Any) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error, seconds, log = _classify(f"http://127.0.0.1:{port}", "x", password, caplog, capsys)
    assert isinstance(error, TransientError) and "connection refused" in str(error)
    assert _retries(log) == 2 and seconds < LIMIT


def test_bmc_going_away_mid_operation_is_transient(bmc_lab: Any, domain_a: Any,
                                                   password: Secret, caplog: Any,
                                                   capsys: Any) -> None:
    proxy = FaultProxy(bmc_lab.redfish_endpoint)

    def vanish_on_reset(method: str, _path: str) -> int | None:
        if method == "POST":  # the reset request: the BMC dies before answering
            threading.Thread(target=proxy.stop_listening, daemon=True).start()
            return DROP
        return None
    proxy.rules.append(vanish_on_reset)
    try:
        error, seconds, _log = _classify(proxy.url, domain_a.name, password, caplog, capsys)
    finally:
        proxy.close()
    assert isinstance(error, TransientError)
    assert "connection refused" in str(error)  # what the last attempt met
    assert proxy.count("POST") == 1 and seconds < LIMIT
    assert not domain_a.active(), "the reset never reached the BMC"


def test_the_real_emulator_frozen_is_transient_and_bounded(
        bmc_lab: Any, domain_a: Any, password: Secret, caplog: Any, capsys: Any) -> None:
    """sushy-emulator itself stopped with SIGSTOP: the kernel still accepts connections, the
    process never answers (a wedged BMC web server)."""
    pid = int((Path(bmc_lab.state_dir) / "sushy.pid").read_text())
    os.kill(pid, signal.SIGSTOP)
    try:
        error, seconds, log = _classify(bmc_lab.redfish_endpoint, domain_a.name, password,
                                        caplog, capsys)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert isinstance(error, TransientError) and "timed out" in str(error)
    assert _retries(log) == 2 and seconds < LIMIT


def test_the_real_emulator_killed_mid_operation_is_transient(
        domains: Any, domain_a: Any, caplog: Any, capsys: Any,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """A second, private sushy-emulator is SIGKILLed while the driver waits for a graceful
    shutdown the diskless guest ignores: the next reads meet a refused connection."""
    from lab import bmc

    state = tmp_path_factory.mktemp("doomed-bmc")
    lab = bmc.start([domain_a.name], state)
    try:
        own = Secret(lab.password_ref, Path(lab.password_file).read_text().strip())
        apply_step(RedfishDriver(BOUNDED), "redfish.power",
                   {**host_inputs("redfish", lab.redfish_endpoint, own, domain_a.name),
                    "state": "on"})
        pid = int((Path(lab.state_dir) / "sushy.pid").read_text())
        killer = threading.Timer(2.0, os.kill, (pid, signal.SIGKILL))
        killer.start()
        error, seconds, _log = _classify(lab.redfish_endpoint, domain_a.name, own, caplog,
                                         capsys, state="graceful-off", graceful_timeout=60)
        killer.join()
    finally:
        bmc.stop(state)
    assert isinstance(error, TransientError) and "connection refused" in str(error)
    assert 2.0 <= seconds < 2.0 + LIMIT
    assert domain_a.active(), "the guest ignored ACPI: only the BMC went away"


def test_server_errors_are_transient_and_retried_a_bounded_number_of_times(
        bmc_lab: Any, domain_a: Any, password: Secret, caplog: Any, capsys: Any) -> None:
    proxy = FaultProxy(bmc_lab.redfish_endpoint)
    proxy.rules.append(lambda _m, _p: 500)
    try:
        error, seconds, log = _classify(proxy.url, domain_a.name, password, caplog, capsys)
    finally:
        proxy.close()
    assert isinstance(error, TransientError) and "HTTP 500" in str(error)
    # 3 attempts, each a GET of the service root that sushy repeats at most once.
    assert proxy.count("GET") <= 6 and _retries(log) == 2 and seconds < LIMIT


def test_a_few_server_errors_are_ridden_out(bmc_lab: Any, domain_a: Any,
                                            password: Secret) -> None:
    proxy = FaultProxy(bmc_lab.redfish_endpoint)
    failures = iter([503, 503])
    proxy.rules.append(lambda m, _p: next(failures, None) if m == "POST" else None)
    # Default request timeouts: starting the guest behind the reset can take seconds here.
    driver = RedfishDriver(RedfishSettings(retry_initial_wait=0.2, retry_max_wait=1.0,
                                           poll_interval=0.3))
    try:
        out = apply_step(driver, "redfish.power",
                         {**host_inputs("redfish", proxy.url, password, domain_a.name),
                          "state": "on"})
    finally:
        proxy.close()
    assert out["power"] == "on" and domain_a.active()
    assert proxy.count("POST") == 3


def test_conflict_is_transient(bmc_lab: Any, domain_a: Any, password: Secret, caplog: Any,
                               capsys: Any) -> None:
    proxy = FaultProxy(bmc_lab.redfish_endpoint)
    proxy.rules.append(lambda m, _p: 409 if m == "PATCH" else None)
    try:
        error, seconds, _log = _classify(proxy.url, domain_a.name, password, caplog, capsys,
                                         kind="redfish.boot_device", device="pxe")
    finally:
        proxy.close()
    assert isinstance(error, TransientError) and "HTTP 409" in str(error)
    assert seconds < LIMIT


def test_hanging_bmc_times_out_as_transient(password: Secret, caplog: Any,
                                            capsys: Any) -> None:
    silent = SilentServer()
    try:
        error, seconds, log = _classify(silent.url, "x", password, caplog, capsys)
    finally:
        silent.close()
    assert isinstance(error, TransientError) and "timed out" in str(error)
    assert _retries(log) == 2
    assert 3 * BOUNDED.read_timeout <= seconds < LIMIT


def test_wrong_credentials_are_permanent_and_not_retried(
        bmc_lab: Any, domain_a: Any, caplog: Any, capsys: Any) -> None:
    wrong = Secret("env:WRONG_BMC_PASSWORD", "Wr0ng-pa55word-xyz")
    error, seconds, log = _classify(bmc_lab.redfish_endpoint, domain_a.name, wrong, caplog,
                                    capsys)
    assert isinstance(error, PermanentError) and "authentication failed" in str(error)
    assert _retries(log) == 0 and seconds < 3
    assert error.hint


def test_retry_waits_use_the_injected_sleep(password: Secret) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    waits: list[float] = []
    driver = RedfishDriver(RedfishSettings(retry_attempts=5, retry_total_seconds=300,
                                           retry_initial_wait=4, retry_max_wait=30))
    driver.retry_sleep = waits.append
    with timed() as elapsed, pytest.raises(TransientError):
        apply_step(driver, "redfish.power",
                   {**host_inputs("redfish", f"http://127.0.0.1:{port}", password), "state": "on"})
    assert len(waits) == 4 and all(0 < w <= 30 for w in waits)
    assert waits[-1] > waits[0], "waits grow exponentially"
    assert elapsed[0] < 2, "no real time was spent waiting"


def test_a_bmc_target_holding_the_revealed_password_never_shows_it() -> None:
    from drivers.ipmi.target import IpmiTarget
    from drivers.redfish.session import BmcTarget

    secret = Secret("env:BMC_PW", "Rev3aled-pa55")
    redfish = BmcTarget.from_inputs(host_inputs("redfish", "http://127.0.0.1:1", secret, "s"))
    ipmi = IpmiTarget.from_inputs(host_inputs("ipmi", "127.0.0.1:623", secret))
    for target in (redfish, ipmi):
        assert target.password == "Rev3aled-pa55"
        assert "Rev3aled" not in repr(target) and "Rev3aled" not in str(target)
