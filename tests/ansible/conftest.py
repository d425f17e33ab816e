from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ansible_harness import Runner, settings, sshd_server

from drivers.ansible import AnsibleDriver


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    why = sshd_server.available()
    if why:
        pytest.fail(why)
    with sshd_server.running_sshd(tmp_path_factory.mktemp("sshd-ansible")) as server:
        yield server


@pytest.fixture
def known_hosts(tmp_path: Path) -> Path:
    return tmp_path / "state" / "known_hosts"


@pytest.fixture
def run(known_hosts: Path) -> Runner:
    return Runner(AnsibleDriver(settings(known_hosts)))

