"""The driver conformance kit (orchestrator.testing) on the Redfish and IPMI drivers, against
the lab's real BMC emulators (sushy-tools and virtualbmc over a libvirt domain). The BMC
password is given as a secret reference, as an inventory gives it, so the kit can check it
never comes back in outputs, reads or errors. A power state is a setting, not an object: a
read cannot tell a "deleted" power step from one left on (observable_delete=False)."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from drivers.ipmi import IpmiDriver
from drivers.redfish import RedfishDriver
from drivers.redfish.settings import RedfishSettings
from orchestrator.step import Step
from orchestrator.testing import CHECKS, Case
from tests.bmc.conftest import DomainView


def _closed_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _host(kind: str, endpoint: str, system: str, password_ref: str) -> dict[str, Any]:
    return {"name": "lab-a", "bmc": {
        "kind": kind, "endpoint": endpoint, "system": system, "username": "admin",
        "password": {"$secret": password_ref}, "verify_tls": True, "ca_bundle": None}}


def _case(kind: str, endpoint: str, dead: str, system: str, lab: Any, password: Any) -> Case:
    step_kind = f"{kind}.power"
    step = Step("lab-a/power", step_kind, kind, "power", "hardware",
                {"host": _host(kind, endpoint, system, lab.password_ref), "state": "on"},
                endpoint=endpoint)
    failing = Step("lab-a/refused", step_kind, kind, "refused", "hardware",
                   {"host": _host(kind, dead, system, lab.password_ref), "state": "on"},
                   endpoint=dead)
    return Case(step, failing, secrets=(password.reveal(),), timeout=90,
                observable_delete=False)


@pytest.mark.bmc
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_the_redfish_driver_conforms(check, bmc_lab: Any, password: Any,
                                     domain_a: DomainView) -> None:
    driver = RedfishDriver(RedfishSettings(poll_interval=0.3, power_timeout=30))
    dead = f"http://127.0.0.1:{_closed_port()}"
    check(driver, _case("redfish", bmc_lab.redfish_endpoint, dead, domain_a.name, bmc_lab,
                        password))


@pytest.mark.bmc
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_the_ipmi_driver_conforms(check, bmc_lab: Any, password: Any,
                                  domain_a: DomainView) -> None:
    driver = IpmiDriver()
    endpoint = bmc_lab.domains[domain_a.name].ipmi_endpoint
    dead = f"127.0.0.1:{_closed_port(socket.SOCK_DGRAM)}"
    check(driver, _case("ipmi", endpoint, dead, "", bmc_lab, password))
