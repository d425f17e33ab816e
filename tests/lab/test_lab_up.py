"""`orch lab up` end to end: guests from a profile, configured by a real playbook through
the engine, checked by testinfra, drift seen by the libvirt driver, and `orch lab down`
leaving nothing behind (checked with libvirt)."""

from __future__ import annotations

import json
import urllib.request
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from labhelpers import DATA, URI, force_down, leftovers, orch, processes, profile_copy, unique

pytestmark = [pytest.mark.slow, pytest.mark.libvirt]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("lab")
    name = unique("labsmoke")
    profile = profile_copy(tmp, DATA / "profiles" / "labsmoke.yaml", name)
    inventory = tmp / "inventory.yaml"
    up = orch("lab", "up", str(profile), "--out", str(inventory), timeout=1200)
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        yield {"name": name, "profile": profile, "inventory": inventory, "tmp": tmp,
               "up": up, "state": tmp / "state.db",
               "data": yaml.safe_load(inventory.read_text())}
    finally:
        down = orch("lab", "down", str(profile), timeout=600)
        if down.returncode != 0:
            force_down(name)
        assert down.returncode == 0, down.stderr[-3000:]
        assert leftovers(f"orch-{name}") == []
        assert processes(f"labs/{name}/bmc") == [], "BMC emulators left running"
        assert not inventory.exists(), "the lab inventory was left behind"
        assert not (Path.home() / ".cache/orch/lab/labs" / name).exists()


def test_guests_get_distinct_fixed_addresses_and_host_keys(lab: dict[str, Any]) -> None:
    hosts = lab["data"]["hosts"]
    assert [h["name"] for h in hosts] == ["node-1", "node-2"]
    assert len({h["address"] for h in hosts}) == 2
    assert all(h["libvirt"]["domain"] == f"orch-{lab['name']}-{h['name']}" for h in hosts)
    known = Path(lab["data"]["drivers"]["ssh"]["known_hosts"]).read_text().splitlines()
    keys = {line.split()[0]: line.split(None, 1)[1] for line in known if line.strip()}
    assert set(keys) >= {h["address"] for h in hosts}
    assert len({keys[h["address"]] for h in hosts}) == 2, "clones share a host key"


def test_guests_have_an_emulated_bmc(lab: dict[str, Any]) -> None:
    host = lab["data"]["hosts"][0]
    bmc = host["bmc"]
    password = Path(bmc["password"].removeprefix("file:")).read_text().strip()
    req = urllib.request.Request(f"{bmc['endpoint']}/redfish/v1/Systems/{bmc['system']}")
    token = b64encode(f"{bmc['username']}:{password}".encode()).decode()
    req.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        system = json.load(resp)
    assert system["PowerState"] == "On"


def test_apply_configures_the_guests_with_a_playbook(lab: dict[str, Any]) -> None:
    result = orch("apply", str(lab["profile"]), "-i", str(lab["inventory"]),
                  "--state", str(lab["state"]), "--auto-approve", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Apply complete" in result.stderr
    assert "8 succeeded, 0 failed" in result.stderr
    # the bare-metal steps went through the emulated BMCs orch lab up started
    for node in ("node-1", "node-2"):
        assert f"succeeded {node}/hardware-check" in result.stderr
        assert f"succeeded {node}/power-on" in result.stderr


def test_verify_runs_the_declared_checks_on_every_guest(lab: dict[str, Any]) -> None:
    result = orch("verify", str(lab["profile"]), "-i", str(lab["inventory"]), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "== 6 passed, 0 failed" in result.stdout
    assert result.stdout.count("PASSED [node-") == 6


def test_second_apply_changes_nothing(lab: dict[str, Any]) -> None:
    result = orch("apply", str(lab["profile"]), "-i", str(lab["inventory"]),
                  "--state", str(lab["state"]), "--auto-approve", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "No changes" in result.stderr


def test_lab_plan_shows_the_accelerator_verdict(lab: dict[str, Any]) -> None:
    result = orch("lab", "plan", lab["name"], timeout=300)
    assert result.returncode == 0, result.stderr
    line = next(ln for ln in result.stdout.splitlines() if "KVM usable:" in ln)
    assert "→ TCG" in line or "→ KVM" in line
    assert "No changes" in result.stdout or "0 to create" in result.stdout


def test_a_guest_removed_behind_orchs_back_shows_as_drift(lab: dict[str, Any]) -> None:
    import libvirt

    conn = libvirt.open(URI)
    try:
        dom = conn.lookupByName(f"orch-{lab['name']}-node-2")
        dom.destroy()
        dom.undefine()
    finally:
        conn.close()
    result = orch("lab", "plan", lab["name"], timeout=300)
    assert result.returncode == 0, result.stderr
    assert "node-2.domain" in result.stdout
    assert "drift: recorded, but the driver no longer finds it" in result.stdout
    assert "1 to create" in result.stdout


def test_lab_up_refuses_more_guests_than_allowed(tmp_path: Path) -> None:
    profile = profile_copy(tmp_path, DATA / "profiles" / "labsmoke.yaml", unique("toomany"))
    result = orch("lab", "up", str(profile), "--max-guests", "1", timeout=60)
    assert result.returncode == 1
    assert "needs 2 guests, more than --max-guests 1 allows" in result.stderr
