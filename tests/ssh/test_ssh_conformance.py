"""The driver conformance kit (orchestrator.testing) on the SSH driver, against the real
OpenSSH server on 127.0.0.1 that the SSH tier starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from sshd_server import Sshd, free_port

from drivers.ssh import SshDriver
from orchestrator.step import Step
from orchestrator.testing import CHECKS, Case


def _case(sshd: Sshd, tmp_path: Path) -> Case:
    marker = tmp_path / "made-by-orch"
    host = {**sshd.host(), "node": "local"}
    host["ssh"] = {**host["ssh"], "private_key": {"$secret": f"file:{sshd.client_key}"}}
    inputs = {"host": host, "creates": str(marker), "command": f"touch {marker}",
              "on_delete": f"rm -f {marker}"}
    step = Step("local/marker", "ssh.command", "ssh", "marker", "l1", inputs,
                endpoint=f"127.0.0.1:{sshd.port}")
    closed = {**host, "ssh": {**host["ssh"], "port": free_port()}}
    failing = Step("local/refused", "ssh.command", "ssh", "refused", "l1",
                   {"host": closed, "command": "true"}, endpoint="127.0.0.1")
    return Case(step, failing, secrets=(sshd.client_key.read_text().strip(),), timeout=20,
                stable_outputs=False, observable_delete=False)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_the_ssh_driver_conforms(check, sshd: Sshd, driver: SshDriver, tmp_path: Path):
    check(driver, _case(sshd, tmp_path))
