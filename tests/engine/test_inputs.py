"""Bad input is refused where it is written (file:line:col), in one line, exit 1, never a
traceback; inputs that could exhaust memory or time are bounded (issue 8, items 10-12, 14)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from orch_cli.main import cli
from orchestrator.secrets import _seen, redact
from tests.engine.helpers import REPO, run_orch, write

PROFILE = """\
apiVersion: orch/v1
kind: Profile
metadata: {name: t}
parameters:
  n: {type: int, default: 2}
roles:
  node: {count: 2}
layers:
  - name: base
    components:
      - name: a
        type: fake.step
        on: node
      - name: b
        type: fake.step
        after: [a]
"""

INVENTORY = """\
apiVersion: orch/v1
kind: Inventory
metadata: {name: inv}
hosts:
  - {name: h1, address: 192.0.2.1}
  - {name: h2, address: 192.0.2.2, labels: {rack: r1}}
"""


def orch(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), res.output
    return res.exit_code, res.output


def refused(tmp_path: Path, profile: str, inventory: str | None = None) -> tuple[str, str]:
    """Plan; expect exit 1 and an error located in a file. Returns (location, text)."""
    p = tmp_path / "p.yaml"
    p.write_bytes(profile.encode() if isinstance(profile, str) else profile)
    args = ["plan", str(p), "--no-refresh", "--state", str(tmp_path / "s.db")]
    if inventory is not None:
        (tmp_path / "i.yaml").write_text(inventory)
        args += ["-i", str(tmp_path / "i.yaml")]
    code, out = orch(*args)
    assert code == 1, out
    assert "Traceback" not in out
    m = re.search(r"(\S+\.yaml):(\d+):(\d+)", out)
    assert m, out
    return f"{Path(m.group(1)).name}:{m.group(2)}:{m.group(3)}", out


def test_the_base_profile_is_valid(tmp_path):
    write(tmp_path / "p.yaml", PROFILE)
    write(tmp_path / "i.yaml", INVENTORY)
    code, out = orch("validate", str(tmp_path / "p.yaml"), "-i", str(tmp_path / "i.yaml"))
    assert code == 0, out


@pytest.mark.parametrize("edit, where, words", [
    (("        on: node\n      - name: b", "        on: node\n        timeout: inf\n"
      "      - name: b"), "p.yaml:14:18", "<= 31622400"),
    (("        on: node\n      - name: b", "        on: node\n        timeout: nan\n"
      "      - name: b"), "p.yaml:14:18", "> 0"),
    (("        on: node\n      - name: b", "        on: node\n        timeout: -5\n"
      "      - name: b"), "p.yaml:14:18", "> 0"),
    (("        on: node\n      - name: b", "        on: node\n        with: {duration: 1}\n"
      "        timeout: 0\n      - name: b"), "p.yaml:15:18", "> 0"),
    (("        on: node\n", "        on: node\n        select: -1\n"), "p.yaml:14:17", ">= 1"),
    (("        on: node\n", "        on: node\n        with: {duration: inf}\n"),
     "p.yaml:14:26", "<= 31622400"),
    (("- name: a\n", "- name: ''\n"), "p.yaml:11:15", "regex"),
    (("- name: a\n", "- name: 'a/x'\n"), "p.yaml:11:15", "regex"),
    (("- name: a\n", "- name: 'a*'\n"), "p.yaml:11:15", "regex"),
    (("- name: base", "- name: 'ba[se]'"), "p.yaml:9:11", "regex"),
    (("        on: node\n", "        on: node\n        foreach: ['x', 'a/b']\n"),
     "p.yaml:14:18", "foreach item 'a/b' cannot be part of a step id"),
    (("layers:\n  - name: base", "layers: []\nx:\n  - name: base"), "p.yaml:8:9", "length"),
    (("        on: node\n      - name: b", "        on: node\n        with: {value: "
      "'${params.n'}\n      - name: b"), "p.yaml:14:23", "unterminated"),
    (("        on: node\n      - name: b", "        on: node\n        driver: nosuch\n"
      "      - name: b"), "p.yaml:14:17", "unknown driver 'nosuch'"),
    (("  n: {type: int, default: 2}", "  n: {type: int, default: 2}\n"
      "  db_password: {type: str, default: hunter2}"), "p.yaml:6:23", "named like a secret"),
    (("metadata: {name: t}", "metadata: !vault {name: t}"), "p.yaml:3:11", "custom YAML tag"),
    (("metadata: {name: t}", "metadata: &m {name: t, labels: *m}"), "p.yaml:3:11",
     "recursive alias"),
], ids=["timeout-inf", "timeout-nan", "timeout-negative", "timeout-zero", "select-negative",
        "fake-duration-inf",
        "name-empty", "name-slash", "name-glob",
        "layer-bracket", "item-slash", "layers-empty", "unterminated-ref", "unknown-driver",
        "str-secret-param", "custom-tag", "recursive-anchor"])
def test_bad_profile_input_is_refused_at_its_line(tmp_path, edit, where, words):
    old, new = edit
    assert old in PROFILE
    text = PROFILE.replace(old, new)
    got, out = refused(tmp_path, text)
    assert got == where, out
    assert words in out, out


def test_an_infinite_driver_setting_is_refused_at_its_line(tmp_path):
    text = PROFILE.replace("roles:", "drivers:\n  ssh: {connect_timeout: inf}\nroles:") + \
        "      - {name: c, type: ssh.command, on: node, with: {command: 'true'}}\n"
    got, out = refused(tmp_path, text)
    assert got == "p.yaml:7:26" and "not a finite number" in out, out


def test_validate_checks_the_drivers_a_profile_names(tmp_path):
    text = PROFILE.replace("        on: node\n", "        on: node\n        driver: nosuch\n")
    write(tmp_path / "p.yaml", text)
    code, out = orch("validate", str(tmp_path / "p.yaml"))
    assert code == 1 and "p.yaml:14:17: unknown driver 'nosuch'" in out, out


def test_a_cycle_is_located_at_the_component(tmp_path):
    text = PROFILE.replace("        on: node\n", "        on: node\n        after: [b]\n")
    got, out = refused(tmp_path, text)
    assert got == "p.yaml:14:16" and "dependency cycle" in out, out


def test_non_utf8_profile_names_line_and_column(tmp_path):
    data = PROFILE.encode().replace(b"name: t}", b"name: t\xff}")
    got, out = refused(tmp_path, data)
    assert got == "p.yaml:3:19" and "not UTF-8" in out and "0xff" in out


def test_literal_secret_in_host_labels_is_refused_and_a_reference_is_kept(tmp_path):
    got, out = refused(tmp_path, PROFILE,
                       INVENTORY.replace("{rack: r1}", "{rack: r1, api_token: s3cr3t-v4lue}"))
    assert got == "i.yaml:6:66" and "references" in out and "s3cr3t" not in out
    write(tmp_path / "i.yaml", INVENTORY.replace("{rack: r1}", "{api_token: env:TOK}"))
    from orchestrator.loader import load
    loaded = load(tmp_path / "p.yaml", tmp_path / "i.yaml")
    host = loaded.nodes["node"][1].host_inputs()
    assert host["labels"] == {"api_token": {"$secret": "env:TOK"}}


def bounded_plan(profile: Path) -> tuple[subprocess.CompletedProcess[str], float, int]:
    """``orch plan`` in a child limited to 2 GiB of address space and 60 s (an unbounded
    expansion would fail the test, not take the machine down): (result, seconds, MiB)."""
    code = ("import resource, sys, time; from orch_cli.main import cli\n"
            "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
            "t = time.monotonic()\n"
            "try: cli(['plan', sys.argv[1], '--no-refresh', '--state', sys.argv[2]],"
            " prog_name='orch')\n"
            "except SystemExit as e: print('exit', e.code)\n"
            "print(round(time.monotonic() - t, 2),"
            " resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)")
    res = subprocess.run([sys.executable, "-c", code, str(profile),
                          str(profile.parent / "s.db")], capture_output=True, text=True,
                         cwd=REPO, timeout=60)
    assert "Traceback" not in res.stderr, res.stderr[-2000:]
    exit_line, figures = res.stdout.strip().splitlines()[-2:]
    assert exit_line == "exit 1", res.stdout + res.stderr
    seconds, mib = figures.split()
    return res, float(seconds), int(mib)


def test_billion_laughs_is_refused_quickly_in_bounded_memory(tmp_path):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    res, seconds, mib = bounded_plan(write(tmp_path / "p.yaml", "\n".join(lines) + "\n"))
    assert "aliases expand to too many values" in res.stderr
    assert re.search(r"p\.yaml:\d+:\d+", res.stderr)
    assert seconds < 10 and mib < 500, (seconds, mib)


@pytest.mark.parametrize("count, default, where, words", [
    ("100000000", "2", "p.yaml:7:17", "<= 10000"),
    ("{param: n}", "100000000", "p.yaml:7:17", "from 0 to 10000"),
], ids=["literal", "from-parameter"])
def test_a_huge_role_count_is_refused_at_its_line(tmp_path, count, default, where, words):
    text = PROFILE.replace("node: {count: 2}", f"node: {{count: {count}}}").replace(
        "default: 2}", f"default: {default}}}")
    res, seconds, mib = bounded_plan(write(tmp_path / "p.yaml", text))
    assert f"{where}:" in res.stderr and words in res.stderr, res.stderr
    assert seconds < 10 and mib < 500, (seconds, mib)


#: how click names the option (and the environment variable it also reads)
LOCK_TIMEOUT = "'--lock-timeout' (env var: 'ORCH_LOCK_TIMEOUT')"


@pytest.mark.parametrize("args, words", [
    (["plan", "--bogus"], "No such option"), (["plan", "P", "-p", "size"], "KEY=VALUE"),
    (["plan", "DIR"], "is a directory"), (["nosuchverb"], "No such command"),
    (["plan"], "Missing argument"),
    (["apply", "P", "--lock-timeout", "nan"], f"{LOCK_TIMEOUT}: nan: expected a finite"),
    (["apply", "P", "--lock-timeout", "-1"], f"{LOCK_TIMEOUT}: -1.0: expected a finite")])
def test_usage_errors_exit_1_not_2(tmp_path, args, words):
    write(tmp_path / "P", PROFILE)
    args = [str(tmp_path / "P") if a == "P" else str(tmp_path) if a == "DIR" else a
            for a in args]
    code, out = orch(*args)
    assert words in out, out
    assert code == 1 and "Error" in out, out


def test_a_short_secret_does_not_garble_messages():
    before = set(_seen)
    try:
        _seen.update({"a", "1", "abc", "longer-secret-value"})
        text = "a step failed after 1 attempt: abc is wrong, abcdef stays, longer-secret-value"
        assert redact(text) == ("a step failed after 1 attempt: ******** is wrong, abcdef "
                                "stays, ********")
    finally:
        _seen.clear()
        _seen.update(before)


def test_state_list_into_a_closed_pipe_prints_no_error(tmp_path):
    profile = write(tmp_path / "p.yaml", PROFILE)
    state = str(tmp_path / "s.db")
    assert run_orch("apply", str(profile), "--state", state, "--auto-approve").returncode == 0
    res = subprocess.run(
        f"set -o pipefail; {sys.executable} -m orch_cli.main state list {profile} "
        f"--state {state} | head -1", shell=True, executable="/bin/bash", cwd=REPO,
        capture_output=True, text=True)
    assert res.stdout.count("\n") == 1 and res.stderr == "", res.stderr
