"""playbooks/cloudstack/zone.yml (profile 98), run by Ansible on this machine against a
STAND-IN of CloudMonkey: a CloudStack management server needs MySQL, a Java server and an
XCP-ng pool, none of which runs here. The stand-in `cmk` keeps the objects the playbook
creates in a JSON file and answers `list` calls the way cmk's JSON output does (nothing at
all for an empty list, otherwise `{"count": n, "<object>": [...]}`); a physical network
comes with a disabled VirtualRouter provider, as CloudStack's does; the secondary storage VM
and console proxy run once the zone is enabled with an image store. What is checked is the
playbook's own logic: the objects in the wizard's order and with the wanted arguments, a
second run that creates nothing, secrets kept out of the output, and the system-VM wait
that fails when they never run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from standins import need_ansible, play_local, stub_dir

PLAYBOOK = Path(__file__).resolve().parents[2] / "playbooks" / "cloudstack" / "zone.yml"

CMK = r'''#!PYTHON
# STAND-IN for CloudMonkey (cmk) talking to a CloudStack management server
import json, os, sys, uuid
stub = os.environ["STUB"]
with open(os.path.join(stub, "log"), "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\n")
path = os.path.join(stub, "state.json")
state = json.load(open(path)) if os.path.exists(path) else {}
verb, kind, *args = sys.argv[1:]
kv = dict(a.split("=", 1) for a in args)
# list verb -> (where the stand-in keeps them, the key cmk's JSON answer uses)
KEYS = {"zones": ("zone", "zone"), "physicalnetworks": ("physicalnetwork", "physicalnetwork"),
        "traffictypes": ("traffictype", "traffictype"), "pods": ("pod", "pod"),
        "networkserviceproviders": ("networkserviceprovider", "networkserviceprovider"),
        "virtualrouterelements": ("virtualrouterelement", "virtualrouterelement"),
        "vlanipranges": ("vlaniprange", "vlaniprange"), "clusters": ("cluster", "cluster"),
        "hosts": ("host", "host"), "secondarystagingstores": ("staging", "imagestore"),
        "imagestores": ("imagestore", "imagestore"), "storagepools": ("storagepool", "storagepool"),
        "systemvms": ("systemvm", "systemvm")}
def add(key, obj):
    obj = {"id": str(uuid.uuid4()), **obj}
    state.setdefault(key, []).append(obj)
    return obj
def find(key, wanted):
    return [o for o in state.get(key, []) if all(str(o.get(k)) == v for k, v in wanted.items())]
if verb == "list":
    where, key = KEYS[kind]
    if kind == "systemvms":
        zone = find("zone", {"id": kv["zoneid"]})
        up = (zone and zone[0]["allocationstate"] == "Enabled" and state.get("imagestore")
              and not os.path.exists(os.path.join(stub, "no-ssvm")))
        found = ([{"id": "s1", "systemvmtype": "secondarystoragevm", "state": "Running"},
                  {"id": "c1", "systemvmtype": "consoleproxy", "state": "Running"}] if up else
                 [{"id": "s1", "systemvmtype": "secondarystoragevm", "state": "Starting"}])
    else:
        found = find(where, kv)
    if found:
        print(json.dumps({"count": len(found), key: found}))
elif verb == "create" and kind == "zone":
    add("zone", {**kv, "allocationstate": "Disabled"})
elif verb == "create" and kind == "physicalnetwork":
    net = add("physicalnetwork", {**kv, "state": "Disabled"})
    nsp = add("networkserviceprovider", {"name": "VirtualRouter", "physicalnetworkid": net["id"],
                                         "state": "Disabled"})
    add("virtualrouterelement", {"nspid": nsp["id"], "enabled": False})
elif verb == "add" and kind == "traffictype":
    add("traffictype", kv)
elif verb == "configure" and kind == "virtualrouterelement":
    find("virtualrouterelement", {"id": kv["id"]})[0]["enabled"] = kv["enabled"] == "true"
elif verb == "update":
    key = {"networkserviceprovider": "networkserviceprovider", "physicalnetwork": "physicalnetwork",
           "zone": "zone"}[kind]
    find(key, {"id": kv.pop("id")})[0].update(kv)
elif verb == "create" and kind == "pod":
    add("pod", kv)
elif verb == "create" and kind == "vlaniprange":
    add("vlaniprange", {**kv, "forvirtualnetwork": "true"})
elif verb == "add" and kind == "cluster":
    add("cluster", {**kv, "name": kv["clustername"]})
elif verb == "add" and kind == "host":
    add("host", {"clusterid": kv["clusterid"], "type": "Routing", "name": "xcpng-1"})
elif verb == "create" and kind == "secondarystagingstore":
    add("staging", kv)
elif verb == "add" and kind == "imagestores3":
    add("imagestore", {"provider": "S3", "name": kv["bucket"]})
elif verb == "create" and kind == "storagepool":
    add("storagepool", kv)
else:
    sys.exit(f"stand-in cmk: unknown call {verb} {kind}")
json.dump(state, open(path, "w"))
'''

VARS = {"dns": "192.0.2.53", "internal_dns": "192.0.2.53", "guest_vlans": "500-599",
        "mgmt_label": "net0", "guest_label": "net0", "public_label": "net1",
        "pod_gateway": "192.0.2.1", "pod_netmask": "255.255.255.0",
        "pod_start_ip": "192.0.2.150", "pod_end_ip": "192.0.2.170",
        "public_gateway": "198.51.100.1", "public_netmask": "255.255.255.0",
        "public_start_ip": "198.51.100.10", "public_end_ip": "198.51.100.50",
        "pool_master": "192.0.2.21", "xen_password": "xen-s3cret",
        "staging_url": "nfs://192.0.2.10/export/staging", "s3_endpoint": "192.0.2.31:80",
        "s3_bucket": "cloudstack-secondary", "s3_access_key": "AK-s3cret",
        "s3_secret_key": "SK-s3cret", "primary_sr": "ceph-rbd"}


def _stub(tmp_path: Path) -> Path:
    return stub_dir(tmp_path, {"cmk": CMK.replace("PYTHON", sys.executable, 1)})


def _play(stub: Path, **over: object) -> subprocess.CompletedProcess[str]:
    return play_local(PLAYBOOK, {**VARS, **over}, stub, stub=stub,
                      args=("-e", "ansible_become=false"), timeout=600)


def _changes(stub: Path) -> list[str]:
    return [c for c in (stub / "log").read_text().splitlines() if not c.startswith("list ")]


@pytest.mark.slow
def test_zone_built_in_wizard_order_then_left_alone(tmp_path: Path) -> None:
    need_ansible()
    stub = _stub(tmp_path)
    run = _play(stub)
    assert run.returncode == 0, run.stdout[-3000:]
    for secret in ("xen-s3cret", "AK-s3cret", "SK-s3cret"):
        assert secret not in run.stdout
    made = [" ".join(c.split()[:2]) for c in _changes(stub)]
    assert made == ["create zone", "create physicalnetwork",
                    "add traffictype", "add traffictype", "add traffictype",
                    "configure virtualrouterelement", "update networkserviceprovider",
                    "update physicalnetwork", "create pod", "create vlaniprange", "add cluster",
                    "add host", "create secondarystagingstore", "add imagestores3",
                    "create storagepool", "update zone"]
    calls = _changes(stub)
    assert "networktype=Advanced" in calls[0] and "vlan=500-599" in calls[1]
    labels = sorted(c.split("traffictype=")[1] for c in calls if c.startswith("add traffictype"))
    assert labels == ["Guest xennetworklabel=net0", "Management xennetworklabel=net0",
                      "Public xennetworklabel=net1"]
    host = next(c for c in calls if c.startswith("add host"))
    assert "hypervisor=XenServer" in host and "url=http://192.0.2.21" in host
    pool = next(c for c in calls if c.startswith("create storagepool"))
    assert "url=presetup://localhost/ceph-rbd" in pool and "scope=cluster" in pool
    assert calls[-1].endswith("allocationstate=Enabled")

    (stub / "log").unlink()
    again = _play(stub)
    assert again.returncode == 0, again.stdout[-3000:]
    assert _changes(stub) == []


@pytest.mark.slow
def test_zone_fails_when_the_system_vms_never_run(tmp_path: Path) -> None:
    need_ansible()
    stub = _stub(tmp_path)
    (stub / "no-ssvm").touch()
    run = _play(stub, systemvm_wait_minutes=0, systemvm_poll_seconds=1)
    assert run.returncode != 0
    assert "Secondary storage VM and console proxy running" in run.stdout
    assert "update zone" in (stub / "log").read_text()
