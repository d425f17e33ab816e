"""The Vagrant lab (vagrant/Vagrantfile) boots three guests from the lab image as a local
box and destroys them: the comparison bench/lab_up.py times against `orch lab up`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labhelpers import leftovers

from lab.guests import pick_cidr
from lab.vagrantbox import add_box, isolated_network, vagrant, vagrant_env

pytestmark = [pytest.mark.slow, pytest.mark.vagrant, pytest.mark.libvirt]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tag = f"orch-vgt-{uuid.uuid4().hex[:5]}"
    cidr = pick_cidr(tag)
    add_box()
    isolated_network(tag, cidr)
    dotfile = tmp_path_factory.mktemp("vagrant") / ".vagrant"
    e = vagrant_env(tag, cidr, tag, dotfile)
    try:
        yield {"env": e, "tag": tag}
    finally:
        vagrant(["destroy", "-f"], e, timeout=600)
        isolated_network(tag, cidr, create=False)


def test_vagrant_up_and_destroy_three_guests(env: dict[str, Any]) -> None:
    up = vagrant(["up", "--provider", "libvirt"], env["env"], timeout=1200)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    for node in ("node-1", "node-2", "node-3"):
        ssh = vagrant(["ssh", node, "-c", "cat /etc/machine-id"], env["env"], timeout=120)
        assert ssh.returncode == 0, ssh.stderr[-2000:]
        assert len(ssh.stdout.strip()) == 32
    down = vagrant(["destroy", "-f"], env["env"], timeout=600)
    assert down.returncode == 0, down.stderr[-3000:]
    assert [x for x in leftovers(env["tag"]) if not x.startswith("network")] == []


def test_box_is_the_lab_image() -> None:
    from lab.image import image_path
    from lab.vagrantbox import build_box

    assert build_box() == image_path().with_suffix(".box")
    assert Path(build_box()).stat().st_size > image_path().stat().st_size
