"""Every Redfish step kind against the sushy-tools emulator, checked through libvirt.

Each test proves what the BMC did to the domain -- running or not, the first device in the
persistent boot order, the image attached -- not only what the BMC answered.
"""

from __future__ import annotations

import threading
import time

import pytest

from drivers.redfish import RedfishDriver
from drivers.redfish.settings import RedfishSettings
from orchestrator.errors import NotSupportedError, PermanentError
from tests.bmc.conftest import MACS, RecordingLog, RedfishUnderTest, apply_step, no_secret
from tests.bmc.doubles import FaultProxy

pytestmark = [pytest.mark.bmc, pytest.mark.libvirt]

FAST = RedfishSettings(poll_interval=0.3, power_timeout=30, graceful_timeout=3,
                       retry_initial_wait=0.2, retry_max_wait=1)


@pytest.fixture
def driver() -> RedfishDriver:
    return RedfishDriver(FAST)


def test_power_on_restart_graceful_off_and_off_change_the_domain(
        driver: RedfishDriver, redfish_bmc: RedfishUnderTest) -> None:
    log = RecordingLog()
    dom = redfish_bmc.domain
    out = apply_step(driver, "redfish.power", redfish_bmc.inputs(state="on"), log)
    assert out["power"] == "on"
    if dom:
        assert dom.active()
        assert out["reset_type"] == "On"
    again = apply_step(driver, "redfish.power", redfish_bmc.inputs(state="on"), log)
    assert again["reset_type"] is None, "power on of a running host must send nothing"

    out = apply_step(driver, "redfish.power", redfish_bmc.inputs(state="restart"), log)
    assert out["power"] == "on" and out["reset_type"] == "ForceRestart"
    if dom:
        assert dom.active()

    # A diskless guest has no OS to honour ACPI: the graceful request times out and the
    # step forces the power off, as it was told to.
    out = apply_step(driver, "redfish.power",
                     redfish_bmc.inputs(state="graceful-off", force_after_graceful=True), log)
    assert out["power"] == "off" and out["forced"] is True
    if dom:
        assert not dom.active()

    apply_step(driver, "redfish.power", redfish_bmc.inputs(state="on"), log)
    out = apply_step(driver, "redfish.power", redfish_bmc.inputs(state="off"), log)
    assert out["reset_type"] == "ForceOff" and out["power"] == "off"
    if dom:
        assert not dom.active()
    no_secret(redfish_bmc.password, log.text(), repr(out))


def test_graceful_off_without_force_times_out_permanently(
        driver: RedfishDriver, redfish_bmc: RedfishUnderTest) -> None:
    if redfish_bmc.domain is None:
        pytest.skip("needs a host that ignores ACPI shutdown")
    apply_step(driver, "redfish.power", redfish_bmc.inputs(state="on"))
    with pytest.raises(PermanentError, match="waiting for power off"):
        apply_step(driver, "redfish.power", redfish_bmc.inputs(state="graceful-off"))
    assert redfish_bmc.domain.active()


@pytest.mark.parametrize(("device", "libvirt_dev"),
                         [("pxe", "network"), ("cd", "cdrom"), ("disk", "hd")])
def test_boot_device_rewrites_the_persistent_boot_order(
        driver: RedfishDriver, redfish_bmc: RedfishUnderTest, device: str,
        libvirt_dev: str) -> None:
    out = apply_step(driver, "redfish.boot_device",
                     redfish_bmc.inputs(device=device, persistence="continuous"))
    assert out["device"] == device
    if redfish_bmc.domain:
        assert redfish_bmc.domain.first_boot_device() == libvirt_dev


def test_boot_mode_the_bmc_does_not_advertise_is_refused_before_sending(
        driver: RedfishDriver, bmc_lab: object, domain_a: object, password: object) -> None:
    proxy = FaultProxy(bmc_lab.redfish_endpoint)  # type: ignore[attr-defined]
    try:
        inputs = RedfishUnderTest(proxy.url, domain_a.name, "admin", password,  # type: ignore
                                  domain_a).inputs(device="disk", mode="uefi")
        with pytest.raises(NotSupportedError, match="BootSourceOverrideMode"):
            apply_step(driver, "redfish.boot_device", inputs)
        assert proxy.count("GET") > 0, "the driver read the system first"
        assert proxy.count("PATCH") == 0 and proxy.count("POST") == 0
    finally:
        proxy.close()


def test_boot_device_the_bmc_does_not_list_is_refused_naming_allowed_values(
        driver: RedfishDriver, bmc_lab: object, domain_a: object, password: object) -> None:
    """A BMC advertising only Cd and Hdd (the proxy drops Pxe) is never sent Pxe."""
    proxy = FaultProxy(bmc_lab.redfish_endpoint)  # type: ignore[attr-defined]

    def without_pxe(_path: str, body: dict) -> dict:
        boot = body.get("Boot") or {}
        key = "BootSourceOverrideTarget@Redfish.AllowableValues"
        if key in boot:
            boot[key] = [v for v in boot[key] if v != "Pxe"]
        return body
    proxy.rewrite = without_pxe
    before = domain_a.first_boot_device()  # type: ignore[attr-defined]
    try:
        inputs = RedfishUnderTest(proxy.url, domain_a.name, "admin", password,  # type: ignore
                                  domain_a).inputs(device="pxe")
        with pytest.raises(PermanentError, match="allowed values: Cd, Hdd"):
            apply_step(driver, "redfish.boot_device", inputs)
        assert proxy.count("PATCH") == 0
        assert domain_a.first_boot_device() == before  # type: ignore[attr-defined]
    finally:
        proxy.close()


def test_virtual_media_insert_with_boot_once_then_eject(
        driver: RedfishDriver, redfish_bmc: RedfishUnderTest, iso_url: str) -> None:
    if redfish_bmc.domain is None:
        pytest.skip("the emulator's ISO URL is on 127.0.0.1, a real BMC cannot fetch it")
    dom = redfish_bmc.domain
    out = apply_step(driver, "redfish.virtual_media",
                     redfish_bmc.inputs(action="insert", url=iso_url, boot_once=True))
    assert out["inserted"] is True and out["image"] == iso_url
    assert out["boot"]["target"] == "Cd"
    sources = dom.cdrom_sources()
    assert len(sources) == 1 and "orch-bmctest-iso" in sources[0], sources  # the downloaded copy
    assert dom.first_boot_device() == "cdrom"
    again = apply_step(driver, "redfish.virtual_media",
                       redfish_bmc.inputs(action="insert", url=iso_url))
    assert again["image"] == iso_url

    out = apply_step(driver, "redfish.virtual_media", redfish_bmc.inputs(action="eject"))
    assert out["inserted"] is False and out["image"] is None
    assert dom.cdrom_sources() == []


def test_install_sequence_composes_from_the_step_kinds(
        driver: RedfishDriver, redfish_bmc: RedfishUnderTest, iso_url: str) -> None:
    """power off, insert + boot once from CD, power on, wait for the installer to power
    off (simulated: the guest is destroyed 3 s later), eject, boot disk, power on."""
    dom = redfish_bmc.domain
    if dom is None:
        pytest.skip("the installer's power-off is simulated through libvirt")
    run = [("redfish.power", {"state": "off"}),
           ("redfish.virtual_media", {"action": "insert", "url": iso_url, "boot_once": True}),
           ("redfish.power", {"state": "on"})]
    for kind, extra in run:
        apply_step(driver, kind, redfish_bmc.inputs(**extra))
    assert dom.active() and dom.first_boot_device() == "cdrom"
    installer = threading.Timer(3.0, lambda: dom.dom().destroy())
    installer.start()
    start = time.monotonic()
    out = apply_step(driver, "redfish.wait_power", redfish_bmc.inputs(state="off", timeout=60))
    assert out["power"] == "off" and 2.5 < time.monotonic() - start < 20
    for kind, extra in [("redfish.virtual_media", {"action": "eject"}),
                        ("redfish.boot_device", {"device": "disk"}),
                        ("redfish.power", {"state": "on"})]:
        apply_step(driver, kind, redfish_bmc.inputs(**extra))
    assert dom.active() and dom.cdrom_sources() == [] and dom.first_boot_device() == "hd"


def test_wait_power_gives_up_after_its_timeout(driver: RedfishDriver,
                                                redfish_bmc: RedfishUnderTest) -> None:
    apply_step(driver, "redfish.power", redfish_bmc.inputs(state="off"))
    start = time.monotonic()
    with pytest.raises(PermanentError, match="still off"):
        apply_step(driver, "redfish.wait_power", redfish_bmc.inputs(state="on", timeout=2))
    assert time.monotonic() - start < 10


def test_inventory_reports_what_differs_from_the_profile(
        driver: RedfishDriver, redfish_bmc: RedfishUnderTest) -> None:
    hardware = {"cpu": 4, "memory_gib": 1, "macs": [MACS["orch-bmctest-a"]]}
    inputs = redfish_bmc.inputs()
    inputs["host"]["hardware"] = hardware
    out = apply_step(driver, "redfish.inventory", inputs)
    observed = out["observed"]
    if redfish_bmc.domain:
        assert observed["cpu"] == 1 and observed["memory_gib"] == 1
        assert observed["macs"] == [MACS["orch-bmctest-a"]]
        assert out["mismatches"] == ["cpu: profile wants 4, BMC reports 1"]
    inputs["strict"] = True
    if out["mismatches"]:
        with pytest.raises(PermanentError, match="hardware differs"):
            apply_step(driver, "redfish.inventory", inputs)


def test_bios_attribute_is_staged_and_an_unknown_name_refused(
        driver: RedfishDriver, redfish_bmc: RedfishUnderTest) -> None:
    if redfish_bmc.domain is None:
        pytest.skip("attribute names differ per vendor")
    out = apply_step(driver, "redfish.bios",
                     redfish_bmc.inputs(attributes={"ProcTurboMode": "Disabled"}))
    assert out["changed"] == ["ProcTurboMode"] and out["reboot_required"]
    with pytest.raises(PermanentError, match="no attribute"):
        apply_step(driver, "redfish.bios", redfish_bmc.inputs(attributes={"NoSuch": "x"}))


@pytest.mark.parametrize("how", ["name", "mac", "uuid"])
def test_system_is_found_by_name_mac_or_id(driver: RedfishDriver, bmc_lab: object,
                                           domain_a: object, password: object,
                                           how: str) -> None:
    name = domain_a.name  # type: ignore[attr-defined]
    wanted = {"name": name, "mac": MACS[name],
              "uuid": domain_a.dom().UUIDString()}[how]  # type: ignore[attr-defined]
    inputs = RedfishUnderTest(bmc_lab.redfish_endpoint, wanted, "admin",  # type: ignore
                              password, None).inputs()  # type: ignore[arg-type]
    out = apply_step(driver, "redfish.inventory", inputs)
    assert out["system"] == domain_a.dom().UUIDString()  # type: ignore[attr-defined]


def test_unknown_system_is_refused_listing_the_systems(driver: RedfishDriver, bmc_lab: object,
                                                      password: object) -> None:
    inputs = RedfishUnderTest(bmc_lab.redfish_endpoint, "no-such-host", "admin",  # type: ignore
                              password, None).inputs()  # type: ignore[arg-type]
    with pytest.raises(PermanentError, match="orch-bmctest-a") as err:
        apply_step(driver, "redfish.inventory", inputs)
    assert "orch-bmctest-b" in str(err.value)


def test_read_reports_power_drift(driver: RedfishDriver, redfish_bmc: RedfishUnderTest) -> None:
    from orchestrator.step import Step

    if redfish_bmc.domain is None:
        pytest.skip("drift is made through libvirt")
    from orchestrator.secrets import ref

    apply_step(driver, "redfish.power", redfish_bmc.inputs(state="on"))
    inputs = redfish_bmc.inputs(state="on")
    inputs["host"]["bmc"]["password"] = ref(redfish_bmc.password.reference)
    step = Step(id="lab-a/power", kind="redfish.power", driver="redfish", component="bmc",
                layer="hardware", inputs=inputs)
    assert driver.read(step, {}).drift == {}
    redfish_bmc.domain.dom().destroy()
    assert "power is off" in driver.read(step, {}).drift["state"]
