"""Checks that keep the catalog honest, over every profile and inventory:

* every ``ssh.command`` command and ``unless``, as rendered, parses (``bash -n``, and
  ``dash -n``: the SSH driver runs them with ``sh -c``, which is dash on Debian and Ubuntu);
* configuration a command writes with a here-document or ``printf`` into a ``.yaml``,
  ``.yml``, ``.json``, ``.ini``, ``.hcl`` or ``.nomad`` file parses with its own tool
  (PyYAML, json, configparser, python-hcl2 where installed);
* every container image reference in a step's inputs has a pinned tag (no ``:latest``,
  no missing tag; a digest counts);
* every download URL in a command comes from a parameter (``${params.X}``), so a profile can
  be pointed at an offline mirror: the profile's source holds no literal ``http(s)://`` in a
  command except for in-cluster service names and addresses built from parameters;
* every ``vars:`` key is declared by its playbook (tests/ansible/test_argument_specs.py
  covers it; ``orch validate`` refuses it).
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent / "plans"))

import golden

from orchestrator.components import builtin_registry
from orchestrator.expand import Desired, expand
from orchestrator.loader import load

PROFILES = golden.profiles()
CASES = [(p, i) for p in PROFILES for i in golden.INVENTORIES]


def _id(case: tuple[Path, Path]) -> str:
    return f"{case[0].stem}@{case[1].stem}"


@cache
def _desired(profile: Path, inventory: Path) -> Desired:
    return expand(load(profile, inventory), builtin_registry())


def _commands(step_inputs: Any) -> list[str]:
    cmds = step_inputs.get("command") or []
    out = [cmds] if isinstance(cmds, str) else [str(c) for c in cmds]
    if step_inputs.get("unless"):
        out.append(str(step_inputs["unless"]))
    return out


def _shell_commands(profile: Path, inventory: Path) -> list[tuple[str, str]]:
    return [(s.id, c) for s in _desired(profile, inventory).steps.values()
            if s.kind == "ssh.command" for c in _commands(s.inputs)]


# -- bash -n --------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=_id)
def test_every_command_parses(case: tuple[Path, Path]) -> None:
    shells = [s for s in ("bash", "dash") if shutil.which(s)]
    if "dash" not in shells and os.environ.get("CI") == "true":
        pytest.fail("dash is not installed (Debian's /bin/sh)")
    bad = []
    for sid, command in _shell_commands(*case):
        for shell in shells:
            result = subprocess.run([shell, "-n", "-c", command], capture_output=True,
                                    text=True, timeout=30)
            if result.returncode:
                bad.append(f"{sid} ({shell}): {result.stderr.strip()[:300]}")
    assert not bad, "commands the shell cannot parse:\n  " + "\n  ".join(bad)


_BASH_ONLY = re.compile(r"(^|[;&|({]\s*)(source|function)\s|\[\[|set -o pipefail|&>")


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_no_command_needs_bash(case: tuple[Path, Path]) -> None:
    """``sh -c`` is dash on Debian and Ubuntu (and StarlingX): ``source``, ``[[``, ``&>``
    and pipefail parse there or fail only when run, so they are refused here."""
    bad = [f"{sid}: {m.group(0).strip()}" for sid, command in _shell_commands(*case)
           for m in [_BASH_ONLY.search(command)] if m]
    assert not bad, "bash-only constructs in commands run by sh -c:\n  " + "\n  ".join(bad)


def test_bash_n_finds_a_broken_command() -> None:
    assert subprocess.run(["bash", "-n", "-c", "for x in a b; do echo $x"],
                          capture_output=True).returncode != 0
    if shutil.which("dash"):  # a bashism sh -c cannot run
        assert subprocess.run(["dash", "-n", "-c", "diff <(ls) <(ls)"],
                              capture_output=True).returncode != 0


# -- generated configuration ----------------------------------------------------------
_HEREDOC = re.compile(r"cat\s+>\s*(?P<path>\S+)\s*<<-?\s*'?(?P<tag>\w+)'?\n(?P<body>.*?)\n"
                      r"(?P=tag)\b", re.S)
_PRINTF = re.compile(r"printf\s+(?P<fmt>'[^']*'|\"(?:[^\"\\]|\\.)*\")(?P<args>[^>|;&]*)>\s*"
                     r"(?P<path>[^\s;&|)]+)")
_TYPES = (".yaml", ".yml", ".json", ".ini", ".hcl", ".nomad")


def generated_files(command: str) -> list[tuple[str, str]]:
    """(path, content) of each file a command writes with a here-document or printf, for
    the file types parsed here. printf is run by bash itself with its arguments, output to
    stdout; a format holding command substitutions or variables is skipped (its content is
    only known on the host)."""
    out = []
    for m in _HEREDOC.finditer(command):
        if m.group("path").endswith(_TYPES):
            out.append((m.group("path"), m.group("body")))
    for m in _PRINTF.finditer(command):
        path = m.group("path").strip("'\"")
        text = m.group("fmt") + m.group("args")
        if not path.endswith(_TYPES) or "$" in text or "`" in text:
            continue
        result = subprocess.run(["bash", "-c", f"printf {text}"], capture_output=True,
                                text=True, timeout=30)
        if result.returncode == 0:
            out.append((path, result.stdout))
    return out


def parse_error(path: str, text: str) -> str | None:
    try:
        if path.endswith((".yaml", ".yml")):
            list(yaml.safe_load_all(text))
        elif path.endswith(".json"):
            json.loads(text)
        elif path.endswith(".ini"):
            configparser.ConfigParser(strict=True, interpolation=None).read_string(text)
        elif path.endswith((".hcl", ".nomad")):
            try:
                import hcl2
            except ImportError:
                if os.environ.get("CI") == "true":
                    raise  # CI installs python-hcl2 (the dev extra)
                return None  # elsewhere HCL is not checked without it
            hcl2.loads(text)
    except Exception as exc:  # each parser has its own error type
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_generated_configuration_parses(case: tuple[Path, Path]) -> None:
    bad = []
    for sid, command in _shell_commands(*case):
        for path, text in generated_files(command):
            error = parse_error(path, text)
            if error:
                bad.append(f"{sid}: {path}: {error}")
    assert not bad, "generated configuration that does not parse:\n  " + "\n  ".join(bad)


def test_the_generated_configuration_check_can_fail() -> None:
    files = generated_files("printf 'a: [1\\n' > /etc/x.yaml; cat > /etc/y.json <<'EOF'\n"
                            "{\"a\": }\nEOF")
    assert [p for p, _ in files] == ["/etc/y.json", "/etc/x.yaml"]
    assert all(parse_error(p, t) for p, t in files)


# -- images ---------------------------------------------------------------------------
def image_refs(value: Any, path: str = "") -> list[tuple[str, str]]:
    """(where, reference) of each container image in Kubernetes-shaped inputs: ``image:``
    strings (not URLs: os.install's ``image`` is an ISO URL, a cloud's a glance name), and
    ``image: {repository, tag}`` chart values."""
    out: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}/{key}"
            if key == "image" and isinstance(item, str) and "://" not in item \
                    and "${" not in item:
                out.append((where, item))
            elif key == "image" and isinstance(item, dict) and "repository" in item:
                out.append((where, f"{item['repository']}:{item.get('tag', '')}".rstrip(":")))
            else:
                out.extend(image_refs(item, where))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out.extend(image_refs(item, f"{path}/{i}"))
    return out


def pinned(reference: str) -> bool:
    if "@sha256:" in reference:
        return True
    last = reference.rsplit("/", 1)[-1]
    return ":" in last and not last.endswith(":latest")


_IMAGE_KINDS = ("kubernetes.", "kubevirt.", "multus.", "kata.", "ansible.playbook")


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_every_image_has_a_pinned_tag(profile: Path) -> None:
    bad = []
    for step in _desired(profile, golden.INVENTORIES[0]).steps.values():
        if not step.kind.startswith(_IMAGE_KINDS):
            continue
        for where, ref in image_refs(dict(step.inputs)):
            if not pinned(ref):
                bad.append(f"{step.id}{where}: {ref}")
    assert not bad, "images without a pinned tag:\n  " + "\n  ".join(bad)


def test_pinning_rules() -> None:
    assert pinned("quay.io/a/b:v1.2") and pinned("registry:5000/a/b:1")
    assert pinned("a/b@sha256:" + "0" * 64)
    assert not pinned("a/b") and not pinned("a/b:latest") and not pinned("registry:5000/a/b")


# -- URLs are parameters --------------------------------------------------------------
_URL = re.compile(r"https?://[^\s'\"`)]+")


def literal_urls(command: str) -> list[str]:
    """URLs written literally in a (source, uninterpolated) command: their scheme and host
    are not a parameter. In-cluster names (no dot, .svc, .onap), loopback and addresses
    built from parameters or shell variables are not downloads and pass."""
    out = []
    for url in _URL.findall(command):
        host = url.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0]
        if "$" in host or "%s" in host or host in ("localhost", "127.0.0.1") \
                or "." not in host or host.endswith((".svc", ".onap")):
            continue
        out.append(url)
    return out


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_every_download_url_in_a_command_is_a_parameter(profile: Path) -> None:
    doc = yaml.safe_load(profile.read_text(encoding="utf-8"))
    bad = []
    for layer in doc.get("layers") or []:
        for comp in layer.get("components") or []:
            if comp.get("type") != "ssh.command":
                continue
            for command in _commands(comp.get("with") or {}):
                bad += [f"{comp['name']}: {u}" for u in literal_urls(command)]
    assert not bad, ("URLs written into commands (make each a parameter, e.g. "
                     "`${params.X_url}`, so a site can point it at a mirror):\n  "
                     + "\n  ".join(bad))


def test_the_url_check_can_fail() -> None:
    assert literal_urls("curl -fsSL https://get.example.org/x.sh | sh") == \
        ["https://get.example.org/x.sh"]
    assert literal_urls("curl ${params.x_url} http://keystone-api.openstack.svc:5000") == []


# -- no hand-placed inputs ------------------------------------------------------------
@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_no_command_reads_a_file_placed_by_hand(profile: Path) -> None:
    """Credentials and site data come from parameters (secrets as references), never from
    files under /etc/orch/ that no step writes."""
    doc = yaml.safe_load(profile.read_text(encoding="utf-8"))
    bad = []
    for layer in doc.get("layers") or []:
        for comp in layer.get("components") or []:
            if comp.get("type") != "ssh.command":
                continue
            bad += [comp["name"] for c in _commands(comp.get("with") or {})
                    if re.search(r"/etc/orch/[\w{}.,-]+", c)
                    and not re.search(r">\s*/etc/orch/", c)]
    assert not bad, f"commands read files under /etc/orch/ nothing writes: {sorted(set(bad))}"


_SELF_REBOOT = re.compile(r"\b(systemctl\s+reboot|shutdown\s+-r|(?<![-\w])reboot(?![-\w]))")


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_no_command_reboots_its_own_host(case: tuple[Path, Path]) -> None:
    """A reboot started from the command's own SSH session cuts the session and lets the
    next ``ssh.wait`` pass before the node goes down: restart through the BMC
    (``bmc.power {state: restart}``) between the command and the wait instead."""
    bad = [sid for sid, command in _shell_commands(*case) if _SELF_REBOOT.search(command)]
    assert not bad, f"commands that reboot their own host: {sorted(set(bad))}"
