"""Networks, pools, volumes and domains against the real libvirtd: create, read, adopt,
drift, delete -- and nothing left behind."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest
from conftest import PREFIX, URI, apply, free_cidr, leftovers, step_for

from drivers.libvirt import LibvirtDriver, LibvirtSettings
from drivers.libvirt.connection import Connections, boundary
from lab.image import image_path
from orchestrator.errors import PermanentError, TransientError
from orchestrator.plan import Action

pytestmark = pytest.mark.libvirt


@pytest.fixture
def names(request: pytest.FixtureRequest) -> dict[str, str]:
    tag = request.node.name.replace("test_", "")[:16].replace("_", "-")
    return {k: f"{PREFIX}-{tag}-{k}" for k in ("net", "pool", "vol", "dom")}


def _network(names: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"name": names["net"], "cidr": free_cidr(), "mode": "isolated",
            "hosts": [{"mac": "52:54:00:aa:00:01", "ip": "", "name": "a"}], **extra}


def _fix_leases(net: dict[str, Any]) -> dict[str, Any]:
    base = net["cidr"].rsplit(".", 1)[0]
    for i, host in enumerate(net["hosts"]):
        host["ip"] = f"{base}.{10 + i}"
    return net


def test_network_is_created_adopted_read_and_deleted(driver: LibvirtDriver, conn: Any,
                                                     names: dict[str, str]) -> None:
    net = _fix_leases(_network(names))
    out = apply(driver, "libvirt.network", net)
    libvirt_net = conn.networkLookupByName(names["net"])
    assert libvirt_net.isActive() and libvirt_net.autostart()
    assert ET.fromstring(libvirt_net.XMLDesc(0)).find("forward") is None  # isolated
    assert out["cidr"] == net["cidr"] and out["bridge"] == libvirt_net.bridgeName()

    again = apply(driver, "libvirt.network", net)  # exists with the same shape: adopted
    assert again["uuid"] == out["uuid"]
    observed = driver.read(step_for("libvirt.network", net), out)
    assert observed.exists and observed.drift == {}

    net["hosts"].append({"mac": "52:54:00:aa:00:02", "ip": "", "name": "b"})
    _fix_leases(net)
    assert "hosts" in driver.read(step_for("libvirt.network", net), out).drift
    apply(driver, "libvirt.network", net, Action.UPDATE)  # leases change live
    assert driver.read(step_for("libvirt.network", net), out).drift == {}
    assert "52:54:00:aa:00:02" in conn.networkLookupByName(names["net"]).XMLDesc(0)

    apply(driver, "libvirt.network", net, Action.DELETE)
    apply(driver, "libvirt.network", net, Action.DELETE)  # already gone: fine
    assert not driver.read(step_for("libvirt.network", net), out).exists
    assert leftovers(conn, names["net"]) == []


def test_network_with_another_cidr_is_not_silently_adopted(
        driver: LibvirtDriver, conn: Any, names: dict[str, str]) -> None:
    net = _fix_leases(_network(names))
    apply(driver, "libvirt.network", net)
    try:
        other = dict(net, cidr="10.252.77.0/24", hosts=[])
        assert "cidr" in driver.read(step_for("libvirt.network", other), {}).drift
        with pytest.raises(PermanentError, match="another shape"):
            apply(driver, "libvirt.network", other)
    finally:
        apply(driver, "libvirt.network", net, Action.DELETE)


def test_volumes_made_in_parallel_while_one_uploads_all_succeed(
        driver: LibvirtDriver, conn: Any, names: dict[str, str]) -> None:
    """What `orch lab up` does: the base image uploads while blank disks of the same pool
    are made beside it. libvirt refuses a pool refresh while the upload runs; the driver
    must neither trip over that nor call it permanent."""
    import threading

    pool = {"name": names["pool"]}
    upload = {"pool": names["pool"], "name": names["vol"] + "-base", "source": str(image_path())}
    blanks = [{"pool": names["pool"], "name": f"{names['vol']}-blank{i}", "capacity_gib": 3}
              for i in range(6)]
    errors: list[BaseException] = []

    def make(spec: dict[str, Any]) -> None:
        try:
            apply(driver, "libvirt.volume", spec)
            driver.read(step_for("libvirt.volume", spec), {})
        except BaseException as exc:  # collected: the assertion below names them
            errors.append(exc)

    try:
        apply(driver, "libvirt.pool", pool)
        threads = [threading.Thread(target=make, args=(spec,)) for spec in [upload, *blanks]]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert errors == []
        volumes = {v.name() for v in conn.storagePoolLookupByName(names["pool"])
                   .listAllVolumes()}
        assert volumes == {upload["name"], *(b["name"] for b in blanks)}
    finally:
        for spec in [upload, *blanks]:
            apply(driver, "libvirt.volume", spec, Action.DELETE)
        apply(driver, "libvirt.pool", pool, Action.DELETE)
    assert leftovers(conn, names["pool"]) == []


def test_pool_volumes_and_linked_clone_then_nothing_left(
        driver: LibvirtDriver, conn: Any, names: dict[str, str]) -> None:
    pool = {"name": names["pool"]}
    vol = {"pool": names["pool"], "name": names["vol"] + "-base", "capacity_gib": 1}
    clone = {"pool": names["pool"], "name": names["vol"] + "-clone", "backing": vol["name"]}
    try:
        p = apply(driver, "libvirt.pool", pool)
        assert p["path"] == f"/var/lib/libvirt/images/{names['pool']}"
        base = apply(driver, "libvirt.volume", vol)
        assert base["capacity_bytes"] == 1 << 30 and base["backing"] == ""
        c = apply(driver, "libvirt.volume", clone)
        assert c["backing"] == base["path"]  # a qcow2 overlay on the base: a linked clone
        assert c["capacity_bytes"] == 1 << 30
        assert apply(driver, "libvirt.volume", clone)["key"] == c["key"]  # adopted
        assert driver.read(step_for("libvirt.volume", clone), c).drift == {}
        with pytest.raises(PermanentError, match="still holds volumes"):
            apply(driver, "libvirt.pool", pool, Action.DELETE)
    finally:
        apply(driver, "libvirt.volume", clone, Action.DELETE)
        apply(driver, "libvirt.volume", vol, Action.DELETE)
        apply(driver, "libvirt.volume", vol, Action.DELETE)  # gone: fine
        apply(driver, "libvirt.pool", pool, Action.DELETE)
    assert not driver.read(step_for("libvirt.volume", clone), {}).exists
    assert not driver.read(step_for("libvirt.pool", pool), {}).exists
    assert leftovers(conn, names["pool"]) == []
    assert leftovers(conn, names["vol"]) == []


@pytest.fixture
def small_domain(driver: LibvirtDriver, conn: Any, names: dict[str, str]) -> Any:
    """A 128 MiB guest on an isolated network with a blank disk (SeaBIOS finds nothing to
    boot, so it costs little CPU)."""
    net = _fix_leases(_network(names))
    pool = {"name": names["pool"]}
    vol = {"pool": names["pool"], "name": names["vol"], "capacity_gib": 1}
    dom = {"name": names["dom"], "memory_mib": 128, "vcpus": 1,
           "disks": [{"pool": names["pool"], "volume": names["vol"]}],
           "nics": [{"network": names["net"], "mac": "52:54:00:aa:00:01"}]}
    apply(driver, "libvirt.network", net)
    apply(driver, "libvirt.pool", pool)
    apply(driver, "libvirt.volume", vol)
    yield dom
    apply(driver, "libvirt.domain", dom, Action.DELETE)
    apply(driver, "libvirt.volume", vol, Action.DELETE)
    apply(driver, "libvirt.pool", pool, Action.DELETE)
    apply(driver, "libvirt.network", net, Action.DELETE)
    assert leftovers(conn, PREFIX + "-" + names["dom"].split("-")[2]) == []


def test_domain_runs_reads_and_drift_when_destroyed_behind_our_back(
        driver: LibvirtDriver, conn: Any, small_domain: dict[str, Any]) -> None:
    dom = small_domain
    out = apply(driver, "libvirt.domain", dom)
    virt = conn.lookupByName(dom["name"])
    assert virt.isActive() and out["state"] == "running"
    assert out["macs"] == ["52:54:00:aa:00:01"]
    step = step_for("libvirt.domain", dom)
    assert driver.read(step, out).drift == {}
    assert apply(driver, "libvirt.domain", dom)["uuid"] == out["uuid"]  # adopted

    virt.destroy()  # powered off behind the driver's back
    assert driver.read(step, out).drift["state"].startswith("stopped")
    apply(driver, "libvirt.domain", dom, Action.UPDATE)
    assert conn.lookupByName(dom["name"]).isActive()

    grown = dict(dom, memory_mib=192)
    assert "memory_mib" in driver.read(step_for("libvirt.domain", grown), out).drift
    apply(driver, "libvirt.domain", grown, Action.UPDATE)
    assert driver.read(step_for("libvirt.domain", grown), out).drift == {}

    stopped = dict(grown, state="stopped", shutdown_timeout=3)  # SeaBIOS ignores ACPI
    assert apply(driver, "libvirt.domain", stopped, Action.UPDATE)["state"] == "stopped"

    virt = conn.lookupByName(dom["name"])
    virt.undefine()  # removed behind the driver's back
    assert driver.read(step, out).exists is False


def test_forcing_kvm_in_settings_defines_a_kvm_host_passthrough_domain(
        conn: Any, small_domain: dict[str, Any]) -> None:
    kvm = LibvirtDriver(LibvirtSettings(uri=URI, accelerator="kvm"))
    out = apply(kvm, "libvirt.domain", dict(small_domain, state="stopped"))
    root = ET.fromstring(conn.lookupByName(small_domain["name"]).XMLDesc(0))
    assert root.get("type") == "kvm"
    assert root.find("cpu").get("mode") == "host-passthrough"
    assert root.find("features/tcg") is None
    assert out["accel"] == "kvm" and "forced" in out["accel_reason"]


def test_forcing_tcg_defines_a_qemu_domain_with_a_bounded_tb_cache(
        conn: Any, small_domain: dict[str, Any]) -> None:
    tcg = LibvirtDriver(LibvirtSettings(uri=URI, accelerator="tcg", tb_cache_mib=96))
    apply(tcg, "libvirt.domain", dict(small_domain, state="stopped"))
    root = ET.fromstring(conn.lookupByName(small_domain["name"]).XMLDesc(0))
    assert root.get("type") == "qemu"
    tb = root.find("features/tcg/tb-cache")
    scale = {"KiB": 1 / 1024, "MiB": 1}[tb.get("unit", "KiB")]
    assert int(tb.text) * scale == 96
    assert root.find("cpu") is None or root.find("cpu").get("mode") != "host-passthrough"


def test_invalid_xml_is_a_permanent_error_naming_the_endpoint(conn: Any) -> None:
    with pytest.raises(PermanentError) as info, boundary(URI, "libvirt.domain"):
        conn.defineXML("<domain type='qemu'><name>x</name></domain")
    assert info.value.endpoint == URI and info.value.operation == "libvirt.domain"
    assert not info.value.retryable


def test_unreachable_daemon_is_a_transient_error() -> None:
    uri = "qemu+unix:///system?socket=/nonexistent/libvirt-sock"
    with pytest.raises(TransientError) as info:
        Connections().get(uri)
    assert info.value.endpoint == uri and info.value.retryable


def test_bad_inputs_are_permanent_errors(driver: LibvirtDriver) -> None:
    with pytest.raises(PermanentError, match="memory_mib"):
        apply(driver, "libvirt.domain", {"name": f"{PREFIX}-bad", "memory_mib": "lots"})
