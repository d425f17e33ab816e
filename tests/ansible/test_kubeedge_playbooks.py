"""edge-join.yml's EventBus switch, run by Ansible's own `replace` module (the task's regexp
and replacement read from the playbook) on edgecore.yaml layouts keadm writes: only the
`enable` directly under `eventBus` turns true -- never eventBusTLS's, never another
module's -- and a second run changes nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PLAYBOOK = Path(__file__).resolve().parents[2] / "playbooks" / "kubeedge" / "edge-join.yml"

LAYOUTS = {
    "enable first": """\
modules:
  dbTest:
    enable: false
  eventBus:
    enable: false
    eventBusTLS:
      enable: false
      tlsEventBusCAFile: /etc/kubeedge/ca/rootCA.crt
    mqttMode: 2
    mqttServerExternal: tcp://127.0.0.1:1883
  metaManager:
    enable: true
""",
    "enable after nested TLS block": """\
modules:
  eventBus:
    eventBusTLS:
      enable: false
    mqttMode: 2
    enable: false
  serviceBus:
    enable: false
""",
}


def _task() -> dict[str, str]:
    plays = yaml.safe_load(PLAYBOOK.read_text())
    for task in plays[0]["tasks"]:
        for inner in task.get("block", []):
            if inner.get("name") == "Enable EdgeCore's EventBus":
                return dict(inner["ansible.builtin.replace"])
    raise AssertionError("edge-join.yml has no task 'Enable EdgeCore's EventBus'")


def _replace(path: Path, task: dict[str, str]) -> dict[str, object]:
    args = json.dumps({"path": str(path), "regexp": task["regexp"], "replace": task["replace"]})
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
           "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "json"}
    run = subprocess.run(["ansible", "localhost", "-c", "local", "-m", "ansible.builtin.replace",
                          "-a", args], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    result: dict[str, object] = json.loads(run.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return result


@pytest.mark.slow
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_eventbus_is_enabled_and_nothing_else(tmp_path: Path, layout: str) -> None:
    if not shutil.which("ansible"):
        if os.environ.get("CI") == "true":
            pytest.fail("ansible is not installed")
        pytest.skip("ansible is not installed")
    config = tmp_path / "edgecore.yaml"
    config.write_text("apiVersion: edgecore.config.kubeedge.io/v1alpha2\nkind: EdgeCore\n"
                      + LAYOUTS[layout])
    before = yaml.safe_load(config.read_text())
    first = _replace(config, _task())
    assert first["changed"] is True
    after = yaml.safe_load(config.read_text())
    assert after["modules"]["eventBus"]["enable"] is True
    after["modules"]["eventBus"]["enable"] = False
    assert after == before, "something besides eventBus.enable changed"
    assert _replace(config, _task())["changed"] is False
