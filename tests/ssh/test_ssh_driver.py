"""The SSH driver against a real OpenSSH server on 127.0.0.1."""

from __future__ import annotations

import getpass
import hashlib
import subprocess
import threading
import time
from pathlib import Path

import pytest
from ssh_harness import Runner
from sshd_server import Sshd, free_port, keygen, running_sshd

from drivers.ssh import SshDriver, SshSettings
from orchestrator.errors import PermanentError, StepTimeoutError, TransientError
from orchestrator.plan import Action
from orchestrator.secrets import resolve
from tests.conftest import require_service


def digest(stdout: str) -> str:
    """The digest the driver keeps of a command's output (it keeps no text)."""
    return hashlib.sha256(stdout.encode()).hexdigest()[:16]


def fingerprint_of(pub: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(pub)],
                         capture_output=True, text=True, check=True).stdout
    return out.split()[1]  # "256 SHA256:abc... comment (ED25519)"


# -- ssh.wait -----------------------------------------------------------------------
def test_wait_succeeds_on_a_listening_sshd_and_records_the_host_key(
        sshd: Sshd, run: Runner, known_hosts: Path) -> None:
    result = run.apply("ssh.wait", {"host": sshd.host()})
    assert result.outputs == {"endpoint": f"127.0.0.1:{sshd.port}", "attempts": 1}
    recorded = known_hosts.read_text()
    assert recorded.startswith(f"[127.0.0.1]:{sshd.port} ssh-ed25519 ")
    assert recorded.split()[2] == sshd.host_key.with_suffix(".pub").read_text().split()[1]
    assert known_hosts.stat().st_mode & 0o777 == 0o600


def test_wait_on_a_closed_port_gives_up_at_the_deadline_with_the_last_error(
        sshd: Sshd, run: Runner) -> None:
    port = free_port()
    start = time.monotonic()
    with pytest.raises(StepTimeoutError) as info:
        run.apply("ssh.wait", {"host": sshd.host(port=port), "timeout": 3})
    elapsed = time.monotonic() - start
    assert 2.5 <= elapsed < 6, elapsed
    assert (f"timed out after 3 s waiting for SSH on 127.0.0.1:{port}; "
            "last error: Connection refused") in str(info.value)
    assert any("waiting for SSH" in r for r in run.reports)


def test_wait_keeps_trying_until_a_booting_host_starts_sshd(
        run: Runner, tmp_path: Path) -> None:
    with running_sshd(tmp_path / "late") as late:
        late.stop()  # the host is "booting": nothing listens yet

        def boot() -> None:
            time.sleep(1.5)
            late.start()
        thread = threading.Thread(target=boot, daemon=True)
        thread.start()
        result = run.apply("ssh.wait", {"host": late.host()}, timeout=20)
        thread.join()
    assert result.outputs["attempts"] > 1


def test_connection_refused_on_a_command_is_transient(sshd: Sshd, run: Runner) -> None:
    with pytest.raises(TransientError, match="Connection refused"):
        run.apply("ssh.command", {"host": sshd.host(port=free_port()), "command": "true"})


# -- ssh.command --------------------------------------------------------------------
def test_commands_run_in_order_and_report_exit_status_and_a_stdout_digest(
        sshd: Sshd, run: Runner) -> None:
    result = run.apply("ssh.command", {"host": sshd.host(),
                                       "commands": ["echo first", "echo second; id -un"]})
    out = result.outputs
    assert out["exit_status"] == 0 and out["commands"] == 2
    assert out["stdout_sha256"] == digest(f"first\nsecond\n{getpass.getuser()}\n")
    assert out["stdout_lines"] == 3
    assert "stdout" not in out and all("first" not in str(v) for v in out.values())


def test_a_failing_command_is_permanent_and_shows_the_tail_of_stderr(
        sshd: Sshd, run: Runner) -> None:
    with pytest.raises(PermanentError) as info:
        run.apply("ssh.command", {"host": sshd.host(), "commands": [
            "true", "for i in $(seq 1 500); do echo noise $i >&2; done; "
                    "echo 'disk /dev/sdz not found' >&2; exit 3"]})
    text = str(info.value)
    assert "command 2 of 2" in text and "exited 3" in text
    assert text.rstrip().endswith("disk /dev/sdz not found")
    assert "noise 1\n" not in text  # only the tail
    assert not isinstance(info.value, TransientError)


def test_creates_guard_makes_a_rerun_a_no_op(sshd: Sshd, run: Runner, tmp_path: Path) -> None:
    marker, counter = tmp_path / "installed", tmp_path / "runs"
    inputs = {"host": sshd.host(), "creates": str(marker),
              "command": f"echo run >> {counter} && touch {marker}"}
    first = run.apply("ssh.command", inputs)
    second = run.apply("ssh.command", inputs)
    assert "skipped" not in first.outputs
    assert second.outputs == {"exit_status": 0, "skipped": f"{marker} exists"}
    assert counter.read_text() == "run\n"


def test_unless_guard_skips_when_its_command_succeeds(
        sshd: Sshd, run: Runner, tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    inputs = {"host": sshd.host(), "unless": f"grep -q done {counter}",
              "command": f"echo done >> {counter}"}
    run.apply("ssh.command", inputs)
    again = run.apply("ssh.command", inputs)
    assert again.outputs["skipped"].startswith("`grep -q done")
    assert counter.read_text() == "done\n"


def test_delete_runs_on_delete_commands(sshd: Sshd, run: Runner, tmp_path: Path) -> None:
    marker = tmp_path / "thing"
    marker.touch()
    run.apply("ssh.command", {"host": sshd.host(), "command": "false",
                              "on_delete": f"rm {marker}"}, action=Action.DELETE)
    assert not marker.exists()


def test_a_command_past_the_deadline_is_stopped(sshd: Sshd, run: Runner) -> None:
    start = time.monotonic()
    with pytest.raises(StepTimeoutError, match="deadline"):
        run.apply("ssh.command", {"host": sshd.host(), "command": "sleep 30"}, timeout=2)
    assert time.monotonic() - start < 5


def test_a_file_reference_to_the_key_resolves_to_key_text(sshd: Sshd, run: Runner) -> None:
    key = resolve(f"file:{sshd.client_key}")
    result = run.apply("ssh.command", {"host": sshd.host(private_key=key),
                                       "command": "echo via-secret"})
    assert result.outputs["stdout_sha256"] == digest("via-secret\n")


def test_a_key_path_is_accepted_too(sshd: Sshd, run: Runner) -> None:
    result = run.apply("ssh.command", {"host": sshd.host(private_key=str(sshd.client_key)),
                                       "command": "echo via-path"})
    assert result.outputs["stdout_sha256"] == digest("via-path\n")


# -- host keys ----------------------------------------------------------------------
def test_a_changed_host_key_is_refused_with_both_fingerprints(
        sshd: Sshd, known_hosts: Path) -> None:
    settings = SshSettings(known_hosts=str(known_hosts), connect_timeout=5)
    first = Runner(SshDriver(settings))
    first.apply("ssh.command", {"host": sshd.host(), "command": "true"})
    first.driver.close()
    old = fingerprint_of(sshd.host_key.with_suffix(".pub"))
    sshd.new_host_key()
    new = fingerprint_of(sshd.host_key.with_suffix(".pub"))
    second = Runner(SshDriver(settings))
    with pytest.raises(PermanentError) as info:
        second.apply("ssh.command", {"host": sshd.host(), "command": "touch /tmp/never"})
    text = info.value.render()
    assert "host key changed" in text
    assert f"recorded ssh-ed25519 {old}" in text and f"offered ssh-ed25519 {new}" in text
    assert "ssh-keygen -R" in text
    # a fresh state (the operator removed the entry) trusts the new key
    known_hosts.unlink()
    second.apply("ssh.command", {"host": sshd.host(), "command": "true"})


def test_an_entry_written_by_openssh_is_honoured(sshd: Sshd, known_hosts: Path,
                                                  tmp_path: Path) -> None:
    """The file is shared with ssh/Ansible: a hashed OpenSSH entry for another key refuses."""
    other = keygen(tmp_path / "other_host_key").with_suffix(".pub").read_text().split()
    known_hosts.parent.mkdir(parents=True)
    known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {other[0]} {other[1]}\n")
    subprocess.run(["ssh-keygen", "-H", "-f", str(known_hosts)], check=True,
                   capture_output=True)
    assert known_hosts.read_text().startswith("|1|")
    driver = SshDriver(SshSettings(known_hosts=str(known_hosts), connect_timeout=5))
    with pytest.raises(PermanentError, match="host key changed"):
        Runner(driver).apply("ssh.command", {"host": sshd.host(), "command": "true"})


# -- authentication -----------------------------------------------------------------
def test_a_wrong_key_is_a_permanent_authentication_failure(
        sshd: Sshd, run: Runner, tmp_path: Path) -> None:
    stranger = keygen(tmp_path / "stranger").read_text()
    with pytest.raises(PermanentError) as info:
        run.apply("ssh.command", {"host": sshd.host(private_key=stranger),
                                  "command": "true"})
    assert not isinstance(info.value, TransientError)
    assert "authentication failed for user root with key" in str(info.value)
    assert "PRIVATE KEY" not in info.value.render()


def test_ssh_wait_does_not_retry_bad_credentials(sshd: Sshd, run: Runner,
                                                 tmp_path: Path) -> None:
    stranger = keygen(tmp_path / "stranger").read_text()
    start = time.monotonic()
    with pytest.raises(PermanentError, match="authentication failed"):
        run.apply("ssh.wait", {"host": sshd.host(private_key=stranger)}, timeout=20)
    assert time.monotonic() - start < 5


def test_password_login_works_and_the_password_never_shows(
        sshd: Sshd, run: Runner, password_user: tuple[str, str]) -> None:
    user, password = password_user
    secret = _secret(password)
    result = run.apply("ssh.command", {"host": sshd.host(user=user, private_key=None,
                                                         password=secret),
                                       "command": "id -un"})
    assert result.outputs["stdout_sha256"] == digest(f"{user}\n")
    wrong = _secret(password + "-wrong")
    with pytest.raises(PermanentError) as info:
        run.apply("ssh.command", {"host": sshd.host(user=user, private_key=None,
                                                    password=wrong), "command": "true"})
    assert f"authentication failed for user {user} with password" in str(info.value)
    captured = "\n".join([run.log.text, *run.reports, str(result.outputs),
                          info.value.render(), repr(info.value.fields)])
    for value in (password, password + "-wrong"):
        assert value not in captured
    assert password not in sshd.log.read_text()


def _secret(value: str) -> object:
    from orchestrator.secrets import Secret
    return Secret("env:ORCH_TEST_PASSWORD", value)


def test_read_reports_commands_as_present(driver: SshDriver) -> None:
    from orchestrator.step import Step
    step = Step(id="x", kind="ssh.command", driver="ssh", component="c", layer="os")
    observed = driver.read(step, {"exit_status": 0})
    assert observed.exists and observed.outputs == {"exit_status": 0}


# -- env and sudo -------------------------------------------------------------------
def _cmdlines() -> str:
    out = []
    for proc in Path("/proc").iterdir():
        try:
            out.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return "\n".join(out)


def test_env_secrets_reach_the_command_but_no_command_line_log_or_output(
        sshd: Sshd, run: Runner, tmp_path: Path) -> None:
    token = "abcdef.0123456789abcdef"
    multi = "line one\nline 'two' $HOME \"three\""
    seen = tmp_path / "seen"
    results: list[object] = []

    def apply() -> None:
        results.append(run.apply("ssh.command", {
            "host": sshd.host(), "timeout": 30,
            "env": {"JOIN_TOKEN": _secret(token), "MULTI": _secret(multi), "PLAIN": 42},
            "unless": 'test "$JOIN_TOKEN" = never',
            "command": f'printf "%s|%s|%s" "$JOIN_TOKEN" "$MULTI" "$PLAIN" > {seen}; sleep 2'}))

    worker = threading.Thread(target=apply)
    worker.start()
    while not seen.exists() and worker.is_alive():
        time.sleep(0.05)
    processes = _cmdlines()           # while the remote shell is still running
    worker.join()
    assert seen.read_text() == f"{token}|{multi}|42"
    assert token not in processes and "line one" not in processes
    captured = "\n".join([run.log.text, *run.reports, str(results)])
    assert token not in captured and "line one" not in captured


def test_an_env_name_that_is_no_shell_variable_is_refused(sshd: Sshd, run: Runner) -> None:
    with pytest.raises(PermanentError, match="not a shell variable name"):
        run.apply("ssh.command", {"host": sshd.host(), "command": "true",
                                  "env": {"BAD-NAME": "x"}})


def test_sudo_runs_the_command_through_sudo(sshd: Sshd, run: Runner, tmp_path: Path) -> None:
    if not Path("/usr/bin/sudo").exists():
        require_service("sudo is not installed on this host (.ci/apt-packages.txt has it)")
    marker = tmp_path / "sudo-env"
    run.apply("ssh.command", {"host": sshd.host(), "sudo": True,
                              "command": f"printf %s \"$SUDO_USER:$(id -u)\" > {marker}"})
    assert marker.read_text() == f"{getpass.getuser()}:0"
