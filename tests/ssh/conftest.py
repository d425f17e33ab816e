from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ssh_harness import Runner
from sshd_server import Sshd, available, ensure_password_user, running_sshd

from drivers.ssh import SshDriver, SshSettings


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    why = available()
    if why:
        pytest.fail(why)  # CI installs it; a silent skip would hide a broken tier
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture(scope="session")
def password_user(sshd: Sshd) -> tuple[str, str]:
    from sshd_server import PASSWORD_USER
    return PASSWORD_USER, ensure_password_user()


@pytest.fixture
def known_hosts(tmp_path: Path) -> Path:
    return tmp_path / "state" / "known_hosts"


@pytest.fixture
def driver(known_hosts: Path) -> Iterator[SshDriver]:
    d = SshDriver(SshSettings(known_hosts=str(known_hosts), connect_timeout=5,
                              wait_interval=0.5))
    yield d
    d.close()


@pytest.fixture
def run(driver: SshDriver) -> Runner:
    return Runner(driver)
