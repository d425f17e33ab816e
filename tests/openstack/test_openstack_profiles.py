"""The profiles' OpenStack layers against the test plane: each profile is planned against the
lab inventory as `orch plan` does, and its `openstack.*` steps are applied in plan order
through the driver, with their inputs exactly as planned except two things this machine
cannot do, named here: image URLs on the internet are served from a loopback copy (a small
qcow2 made with qemu-img), and the steps before them that build the cloud (kolla-ansible,
openstack-helm, Juju) are not run: the plane stands in for the cloud they build. A server
that boots from a volume needs Cinder, which the plane lacks: that step is left out, by name.
"""

from __future__ import annotations

import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from os_harness import CloudUnderTest, run_step

from drivers.openstack import OpenStackDriver
from orchestrator.plan import Action
from tests.plans import golden

pytestmark = pytest.mark.slow

PROFILES = ("77-nested-openstack", "81-k8s-neutron-kuryr", "95-hyperscaler-metal3",
            "96-openstack-on-k8s", "109-maas-juju-openstack")
INVENTORY = golden.ROOT / "inventories" / "lab.yaml"
#: steps the plane cannot carry out, and why
NOT_HERE = {("95-hyperscaler-metal3", "tenant.vm"): "boots from a volume: the plane has no Cinder"}


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


def openstack_steps(stem: str) -> list[Any]:
    plan = golden.make(golden.PROFILES / f"{stem}.yaml", INVENTORY)
    return [p.step for p in plan.steps if p.step.kind.startswith("openstack.")]


@pytest.mark.parametrize("stem", PROFILES)
def test_profile_openstack_layer_applies_against_the_plane(
        stem: str, cloud_driver: OpenStackDriver, os_cloud: CloudUnderTest,
        image_server: str) -> None:
    if os_cloud.plane is None:
        pytest.skip("the profiles' resources are made and deleted on the test plane only")
    steps = openstack_steps(stem)
    assert steps, f"{stem} has no openstack.* step"
    done: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    try:
        for step in steps:
            if (stem, step.id) in NOT_HERE:
                assert step.inputs.get("boot_from_volume")
                continue
            inputs = dict(step.inputs)
            if inputs.get("url"):
                inputs["url"] = f"{image_server}/{Path(str(inputs['url'])).name}"
            result = run_step(cloud_driver, step.kind, inputs, timeout=300)
            done.append((step.kind, inputs, dict(result.outputs)))
            if step.kind == "openstack.server":
                assert result.outputs["status"] == "ACTIVE", step.id
        assert len(done) == len([s for s in steps if (stem, s.id) not in NOT_HERE])
    finally:
        for kind, inputs, outputs in reversed(done):
            run_step(cloud_driver, kind, inputs, action=Action.DELETE, prior=outputs,
                     timeout=300)
