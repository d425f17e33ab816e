"""orch verify's checks over real SSH (testinfra's paramiko backend) against a local sshd."""

from __future__ import annotations

from pathlib import Path

import pytest
from sshd_server import Sshd, free_port

from orchestrator.secrets import Secret, resolve
from orchestrator.verify import HostChecks, VerifyError, parse_check, verify, verify_host


def by_name(results: list) -> dict:
    return {r.name: r for r in results}


def test_checks_pass_and_fail_on_what_the_host_really_has(sshd: Sshd, tmp_path: Path) -> None:
    marker = tmp_path / "nested"
    marker.write_text("Y\n")
    checks = [
        {"name": "file holds Y", "file": str(marker), "contains": "Y"},
        {"name": "file holds N", "file": str(marker), "contains": "N"},
        {"name": "absent file", "file": str(tmp_path / "nope"), "exists": False},
        {"name": "echo works", "command": "echo HEALTH_OK", "stdout_contains": "HEALTH_OK"},
        {"name": "bad health", "command": "echo HEALTH_WARN; exit 1",
         "stdout_contains": "HEALTH_OK"},
        {"name": "openssh installed", "package": "openssh-server", "installed": True},
        {"name": "pve installed", "package": "pve-manager"},
        {"name": "sshd port", "port": sshd.port, "listening": True},
        {"name": "closed port", "port": free_port()},
        {"name": "no such service", "service": "orch-no-such-service", "running": True},
    ]
    results = by_name(verify_host(sshd.host(), checks))
    passed = {name for name, r in results.items() if r.passed}
    assert passed == {"file holds Y", "absent file", "echo works", "openssh installed",
                      "sshd port"}
    assert "expected content containing 'N'" in results["file holds N"].detail
    assert "expected exit status 0, got 1" in results["bad health"].detail
    assert "stdout lacks 'HEALTH_OK'" in results["bad health"].detail
    assert "expected installed=True, found installed=False" in results["pve installed"].detail
    assert "listening=False" in results["closed port"].detail
    assert all(r.host == "local" and r.duration >= 0 for r in results.values())


def test_an_unreachable_host_fails_every_check_with_the_reason(sshd: Sshd) -> None:
    results = verify_host(sshd.host(port=free_port()), [{"command": "true"},
                                                        {"file": "/etc/hostname"}], timeout=3)
    assert [r.passed for r in results] == [False, False]
    assert "cannot log in to 127.0.0.1" in results[0].detail


def test_password_login_and_the_password_stays_out_of_results(
        sshd: Sshd, password_user: tuple[str, str]) -> None:
    user, password = password_user
    good = verify_host(sshd.host(user=user, private_key=None,
                                 password=Secret("env:PW", password)),
                       [{"command": "id -un", "stdout_contains": user}])
    assert good[0].passed, good[0].detail
    bad = verify_host(sshd.host(user=user, private_key=None,
                                password=Secret("env:PW", password + "x/@:")),
                      [{"command": "true"}], timeout=5)
    assert not bad[0].passed and "Authentication" in bad[0].detail
    assert password not in repr(good + bad)


def test_several_hosts_and_a_file_key_reference(sshd: Sshd) -> None:
    key = resolve(f"file:{sshd.client_key}")
    targets = [HostChecks(sshd.host(private_key=key), [{"command": "true"}]),
               HostChecks({**sshd.host(), "name": "other"}, [{"command": "false"}])]
    results = verify(targets)
    assert [(r.host, r.passed) for r in results] == [("local", True), ("other", False)]


def test_bad_declarations_are_refused_before_connecting() -> None:
    with pytest.raises(VerifyError, match="exactly one of"):
        parse_check({"running": True})
    with pytest.raises(VerifyError, match="does not take colour"):
        parse_check({"service": "sshd", "colour": "red"})
    assert parse_check({"port": 8006}).name == "port 8006 listening=True"
    with pytest.raises(VerifyError):
        verify([HostChecks({"address": "192.0.2.1"}, [{"bogus": 1}])])
