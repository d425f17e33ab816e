"""The profiles' OpenStack layers against the test plane, through ``orch`` (issue 12, item 3).

Each profile is planned with ``openstack_cloud=existing`` (77: ``outer_cloud``): the layers
that build the cloud (kolla-ansible, OpenStack-Helm, MAAS + Juju) leave the plan and one
``external`` step names what stands in for them -- here, the plane. The test marks that step
done, as an operator does (``orch state mark-done``), and applies the rest with ``orch
apply``: the step that hands the cloud over runs the real ``common/publish-clouds-yaml.yml``
through the Ansible driver over a real sshd on loopback (the "deploy host" is this machine),
and every ``openstack.*`` step reads the clouds.yaml it published (``published:clouds/NAME``,
the profile's driver setting). What the test substitutes is given as profile parameters, so
the plan shows it: the deploy host's files (a clouds.yaml written as kolla-ansible's
post-deploy writes it -- the plane's admin entry under kolla's cloud name; or the admin
password, printed by ``cat`` where OpenStack-Helm or Juju are asked), the plane's Keystone
URL, and image URLs served from loopback (a small qcow2). Steps the plane cannot carry are
excluded by name, with why. Then a re-plan is a no-op, destroy removes what apply made, and
nothing orch wrote (state, saved plan, logs) holds the plane's password.
"""

from __future__ import annotations

import http.server
import importlib.util
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from os_harness import CloudUnderTest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

#: profile -> (the parameter that says the cloud exists, the external step standing for it,
#:             the step that hands the cloud over, how it gets the clouds.yaml)
PROFILES: dict[str, tuple[str, str, str, str]] = {
    "77-nested-openstack": ("outer_cloud", "outer-cloud.existing",
                            "controller-1/outer-cloud.clouds-yaml", "kolla"),
    "81-k8s-neutron-kuryr": ("openstack_cloud", "neutron.existing",
                             "neutron-1/neutron.clouds-yaml", "kolla"),
    "95-hyperscaler-metal3": ("openstack_cloud", "cloud.existing",
                              "control-1/cloud.clouds-yaml", "password"),
    "96-openstack-on-k8s": ("openstack_cloud", "cloud.existing",
                            "control-1/cloud.clouds-yaml", "password"),
    "109-maas-juju-openstack": ("openstack_cloud", "openstack.existing",
                                "maas-1/openstack.clouds-yaml", "password"),
}
#: image URL parameters served from loopback
IMAGE_PARAMS = {"77-nested-openstack": "l1_image_url", "95-hyperscaler-metal3": "tenant_image",
                "96-openstack-on-k8s": "tenant_image_url",
                "109-maas-juju-openstack": "tenant_image_url"}
#: what the cloud-building layers made, which must have left the plan
BUILDERS = {"77-nested-openstack": ("kolla.deploy", "hosts.os-install", "compute.kvm-nested"),
            "81-k8s-neutron-kuryr": ("kolla.deploy", "network.os-install"),
            "95-hyperscaler-metal3": ("osh.keystone", "ceph.bootstrap", "node.os-install"),
            "96-openstack-on-k8s": ("osh.keystone", "k8s.init", "node.os-install"),
            "109-maas-juju-openstack": ("juju.bootstrap", "maas.install", "openstack.deploy")}
#: profiles whose OpenStack steps are only part of what orch builds on the cloud: the test
#: applies those (`--target`), not the Kubernetes nodes and Kuryr, which need real machines
TARGETS = {"81-k8s-neutron-kuryr": ("pod-network", "service-network")}
#: steps the plane (or this machine) cannot carry out, and why
NOT_HERE = {
    "77-nested-openstack": {
        "controller-1/inner.l2-verify": "asks the inner DevStack cloud, which only real L1 VMs "
                                        "run (the plane's servers are Nova fake-driver ones)"},
    "95-hyperscaler-metal3": {"tenant.vm": "boots from a volume: the plane has no Cinder"},
}


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def image_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Serves one small qcow2 under any path."""
    root = tmp_path_factory.mktemp("images")
    if not shutil.which("qemu-img"):
        pytest.skip("qemu-img (qemu-utils) makes the qcow2 the profiles' images stand for")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(root / "disk.qcow2"),
                    "64M"], check=True)

    class Any_(_Quiet):
        def translate_path(self, path: str) -> str:
            return str(root / "disk.qcow2")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Any_)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    path = ROOT / "tests" / "ssh" / "sshd_server.py"
    spec = importlib.util.spec_from_file_location("orch_test_sshd_server_osprofiles", path)
    assert spec and spec.loader
    helpers = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = helpers
    spec.loader.exec_module(helpers)
    why = helpers.available()
    if why:
        pytest.fail(why)
    with helpers.running_sshd(tmp_path_factory.mktemp("sshd-osprofiles")) as server:
        yield server


def _inventory(work: Path, sshd: Any, count: int = 16) -> Path:
    """Every role's nodes are this machine over the loopback sshd."""
    hosts = "".join(
        f"  - name: node-{i:02d}\n    address: {sshd.address}\n"
        f"    ssh: {{user: root, port: {sshd.port}, private_key: \"file:{sshd.client_key}\"}}\n"
        for i in range(1, count + 1))
    path = work / "inventory.yaml"
    path.write_text(textwrap.dedent(f"""\
        apiVersion: orch/v1
        kind: Inventory
        metadata: {{name: loopback}}
        drivers:
          ansible: {{known_hosts: {work}/known_hosts, python_interpreter: /usr/bin/python3}}
        hosts:
        """) + hosts)
    return path


def _orch(*args: str, cwd: Path, log: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("ORCH_PUBLISHED_DIR", None)
    done = subprocess.run([sys.executable, "-m", "orch_cli.main", "--log-format", "json",
                           *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)
    with log.open("a") as out:
        out.write(f"$ orch {' '.join(args)}\n{done.stdout}\n{done.stderr}\n")
    return done


def _deploy_host_files(node: Path, how: str, os_cloud: CloudUnderTest) -> dict[str, str]:
    """What the deployment tool leaves on its host, and the parameters that point at it."""
    entry = yaml.safe_load(os_cloud.clouds_yaml.read_text())["clouds"][os_cloud.name]
    if how == "kolla":  # post-deploy's /etc/kolla/clouds.yaml, its admin cloud kolla-admin
        src = node / "etc" / "kolla" / "clouds.yaml"
        src.parent.mkdir(parents=True)
        src.write_text(yaml.safe_dump({"clouds": {"kolla-admin": entry}}))
        src.chmod(0o600)
        return {"clouds_yaml_src": str(src)}
    secret = node / "keystone-admin-password"
    secret.write_text(entry["auth"]["password"] + "\n")
    secret.chmod(0o600)
    return {"keystone_url": entry["auth"]["auth_url"],
            "admin_password_command": f"cat {secret}"}


@pytest.mark.parametrize("stem", list(PROFILES))
def test_profile_openstack_layer_applies_through_the_handed_over_clouds_yaml(
        stem: str, os_cloud: CloudUnderTest, image_server: str, sshd: Any,
        tmp_path: Path) -> None:
    if os_cloud.plane is None:
        pytest.skip("the profiles' resources are made and deleted on the test plane only")
    switch, external, publisher, how = PROFILES[stem]
    work = tmp_path / "deploy"
    (work / "profiles").mkdir(parents=True)
    (work / "playbooks").symlink_to(ROOT / "playbooks")
    profile = work / "profiles" / f"{stem}.yaml"
    shutil.copy(ROOT / "profiles" / f"{stem}.yaml", profile)
    node = tmp_path / "node"
    node.mkdir()
    params = {switch: "existing", **_deploy_host_files(node, how, os_cloud)}
    if stem in IMAGE_PARAMS:
        params[IMAGE_PARAMS[stem]] = f"{image_server}/{stem}.qcow2"
    if stem == "109-maas-juju-openstack":
        params["admin_domain"] = "Default"  # the plane's; Charmed OpenStack's is admin_domain
    inventory = _inventory(work, sshd)
    log = tmp_path / "orch-output.log"
    where = ["-i", str(inventory), "--state", "state.orch.db"]
    chosen = [arg for key, value in params.items() for arg in ("-p", f"{key}={value}")]
    skipped = [arg for sid in NOT_HERE.get(stem, {}) for arg in ("--exclude", sid)]
    skipped += [arg for sid in TARGETS.get(stem, ()) for arg in ("--target", sid)]
    rel = f"profiles/{stem}.yaml"

    # the plan names what stands in for the cloud, and builds nothing of it
    planned = _orch("plan", rel, *where, *chosen, "--no-refresh", cwd=work, log=log)
    assert planned.returncode in (0, 2), planned.stderr[-3000:]
    text = planned.stdout
    assert f"+ {external}  [external]" in text and "by hand:" in text, text[:3000]
    for builder in BUILDERS[stem]:
        assert f"{builder}  [" not in text and f"{builder}/" not in text, \
            f"{builder} still planned with {switch}=existing"
    assert f"{publisher}  [ansible.playbook]" in text

    # the operator records the external step as done; apply carries out the rest
    marked = _orch("state", "mark-done", rel, external, *where, *chosen, cwd=work, log=log)
    assert marked.returncode == 0, marked.stdout + marked.stderr
    saved = _orch("plan", rel, *where, *chosen, *skipped, "--out", "plan.json",
                  cwd=work, log=log)
    assert saved.returncode in (0, 2), saved.stderr[-3000:]
    try:
        applied = _orch("apply", "plan.json", "--auto-approve", cwd=work, log=log)
        assert applied.returncode == 0, applied.stdout[-2000:] + applied.stderr[-4000:]

        published = work / "state.orch.db.published" / Path(stem).stem.split("-", 1)[1]
        handed = next(published.glob("clouds/*"))
        assert stat.S_IMODE(handed.stat().st_mode) == 0o600
        assert stat.S_IMODE(handed.parent.stat().st_mode) == 0o700
        plan_doc = (work / "plan.json").read_text()
        steps = [s for s in yaml.safe_load(plan_doc)["steps"]
                 if s["kind"].startswith("openstack.")]
        assert steps, f"{stem} has no openstack.* step"
        outputs = _orch("output", rel, *where, "--format", "json", cwd=work, log=log)
        assert outputs.returncode == 0, outputs.stderr
        recorded = yaml.safe_load(outputs.stdout)
        for step in steps:
            assert step["id"] in recorded, f"{step['id']} not applied"
            if step["kind"] == "openstack.server":
                assert recorded[step["id"]]["status"] == "ACTIVE", step["id"]

        # what was applied is recorded: a second plan reads it back through the hand-off
        again = _orch("plan", rel, *where, *chosen, *skipped, "--detailed-exitcode",
                      cwd=work, log=log)
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    finally:
        # (the excluded steps were never applied: destroy has nothing of theirs to name)
        targets = [arg for sid in TARGETS.get(stem, ()) for arg in ("--target", sid)]
        gone = _orch("destroy", rel, *where, *chosen, *targets, "--auto-approve", cwd=work,
                     log=log)
    assert gone.returncode in (0, 3), gone.stdout[-2000:] + gone.stderr[-3000:]
    left = _orch("output", rel, *where, "--format", "json", cwd=work, log=log)
    remaining = yaml.safe_load(left.stdout or "{}") or {}
    assert not [sid for sid in remaining if sid in {s["id"] for s in steps}], remaining

    # the needle is real (the published file holds it) and nothing else orch wrote does
    password = yaml.safe_load(os_cloud.clouds_yaml.read_text())["clouds"][os_cloud.name][
        "auth"]["password"]
    assert password in handed.read_text()
    written = [p for p in work.iterdir() if p.is_file() and p.name.startswith("state.orch.db")]
    written += [work / "plan.json", log]
    for path in written:
        assert password not in path.read_bytes().decode("latin-1"), f"password in {path.name}"
    saved_plan = (work / "plan.json").read_text()
    assert "$publish" in saved_plan and f"clouds/{published.name}" in saved_plan
