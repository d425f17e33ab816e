"""AnsibleDriver: run a playbook from playbooks/ against inventory hosts via ansible-runner."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from drivers.ansible.events import EventCollector
from drivers.ansible.inventory import ansible_inventory, key_file_of
from drivers.ansible.settings import AnsibleSettings
from orchestrator.driver import ApplyRequest, ApplyResult, Driver
from orchestrator.errors import PermanentError, StepTimeoutError, TransientError
from orchestrator.plan import Action
from orchestrator.secrets import Secret, redact, reveal_all

REPO_PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
KIND = "ansible.playbook"


def _private_file(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text if text.endswith("\n") else text + "\n")
    return path


class AnsibleDriver(Driver):
    name = "ansible"
    description = "Ansible playbooks from playbooks/ run through ansible-runner"
    step_kinds = {KIND: "run `playbook` (relative to playbooks/) on `hosts` with "
                        "`extra_vars` and `tags`"}
    settings_type = AnsibleSettings
    requires = ("ansible_runner",)

    settings: AnsibleSettings

    @property
    def playbooks_dir(self) -> Path:
        configured = self.settings.playbooks_dir
        return Path(os.path.expanduser(configured)).resolve() if configured else REPO_PLAYBOOKS

    def playbook_path(self, relative: str) -> Path:
        """The playbook's absolute path; refuses paths outside playbooks_dir."""
        root = self.playbooks_dir
        path = (root / relative).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise PermanentError(f"no playbook {relative!r} under {root}",
                                 operation=KIND, hint="playbook paths are relative to "
                                                      "playbooks/, e.g. common/base.yml")
        return path

    def apply(self, request: ApplyRequest) -> ApplyResult:
        inputs = request.inputs
        if request.action is Action.DELETE:
            if not inputs.get("on_delete_playbook"):
                return ApplyResult({})
            inputs = {**inputs, "playbook": inputs["on_delete_playbook"]}
        if not inputs.get("playbook"):
            raise PermanentError("ansible.playbook needs `playbook`", operation=KIND)
        playbook = self.playbook_path(str(inputs["playbook"]))
        hosts = list(inputs.get("hosts") or ([inputs["host"]] if inputs.get("host") else []))
        if not hosts:
            raise PermanentError("ansible.playbook has no `hosts`", operation=KIND)
        endpoint = ",".join(str(h.get("address")) for h in hosts)
        with tempfile.TemporaryDirectory(prefix="orch-ansible-") as tmp:
            private = Path(tmp)
            inventory = self._write_inventory(private, hosts)
            runner, collector = self._run(request, private, playbook, inventory, endpoint)
            if self.settings.keep_artifacts:
                dest = Path(self.settings.keep_artifacts) / request.step.id.replace("/", "_")
                shutil.copytree(private / "artifacts", dest, dirs_exist_ok=True)
            return self._result(runner, collector, playbook, endpoint)

    # -- one run --------------------------------------------------------------------
    def _write_inventory(self, private: Path, hosts: Sequence[Mapping[str, Any]]) -> Path:
        keys = private / "keys"
        keys.mkdir(mode=0o700)
        key_files: dict[str, str] = {}
        for host in hosts:
            name = str(host.get("name") or host["address"])
            key = (host.get("ssh") or {}).get("private_key")
            if key and not (key_file_of(key) and os.path.exists(str(key_file_of(key)))):
                text = key.reveal() if isinstance(key, Secret) else str(key)
                key_files[name] = str(_private_file(keys / f"{len(key_files)}.key", text))
        inventory = ansible_inventory(hosts, key_files=key_files)
        for host in hosts:
            password = (host.get("ssh") or {}).get("password")
            name = str(host.get("name") or host["address"])
            if password and name not in key_files and \
                    "ansible_ssh_private_key_file" not in inventory["all"]["hosts"][name]:
                if not shutil.which("sshpass"):
                    raise PermanentError(f"host {name} has only a password and sshpass is "
                                         "not installed", operation=KIND,
                                         hint="give the host a private key, or install "
                                              "sshpass")
                inventory["all"]["hosts"][name]["ansible_password"] = reveal_all(password)
        return _private_file(private / "inventory.yml", yaml.safe_dump(inventory))

    def _envvars(self, private: Path) -> dict[str, str]:
        known_hosts = Path(os.path.expanduser(self.settings.known_hosts))
        known_hosts.parent.mkdir(parents=True, exist_ok=True)
        (private / "ansible.cfg").write_text("[defaults]\n")
        return {
            # Our own empty config: a stray ./ansible.cfg must not change a run.
            "ANSIBLE_CONFIG": str(private / "ansible.cfg"),
            "ANSIBLE_HOST_KEY_CHECKING": "True",
            "ANSIBLE_SSH_ARGS": (
                f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=accept-new "
                f"-o ConnectTimeout={self.settings.connect_timeout} -o IdentitiesOnly=yes "
                # A per-run control socket: reusing another run's master connection would
                # skip this run's credentials and host-key check.
                f"-o ControlMaster=auto -o ControlPersist=10s -o ControlPath={private}/cp-%C"),
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_NOCOLOR": "True",
            "ANSIBLE_PYTHON_INTERPRETER": self.settings.python_interpreter,
            "ANSIBLE_LOCAL_TEMP": str(private / "tmp"),
            "ANSIBLE_DEPRECATION_WARNINGS": "False",
        }

    def _run(self, request: ApplyRequest, private: Path, playbook: Path, inventory: Path,
             endpoint: str) -> tuple[Any, EventCollector]:
        import ansible_runner

        remaining = int(request.deadline - time.monotonic())
        if remaining < 1:
            raise StepTimeoutError("no time left to start the playbook", endpoint=endpoint,
                                   operation=KIND)
        collector = EventCollector(request.log, request.report)
        tags = request.inputs.get("tags") or []
        request.log.info("ansible playbook", playbook=str(playbook), hosts=endpoint,
                         timeout=remaining)
        runner = ansible_runner.run(
            private_data_dir=str(private), project_dir=str(self.playbooks_dir),
            playbook=str(playbook), inventory=str(inventory),
            extravars=reveal_all(dict(request.inputs.get("vars") or request.inputs.get("extra_vars")
                                       or {})),
            tags=",".join(tags) if isinstance(tags, list) else str(tags) or None,
            limit=request.inputs.get("limit"), forks=self.settings.forks,
            verbosity=self.settings.verbosity, envvars=self._envvars(private),
            event_handler=collector, cancel_callback=request.cancelled.is_set,
            timeout=remaining, quiet=True, json_mode=False)
        return runner, collector

    def _result(self, runner: Any, collector: EventCollector, playbook: Path,
                endpoint: str) -> ApplyResult:
        relative = str(playbook.relative_to(self.playbooks_dir))
        status = runner.status
        if status == "successful":
            changed = sum(s.get("changed", 0) for s in collector.stats.values())
            return ApplyResult({"playbook": relative, "rc": runner.rc, "changed": changed,
                                "stats": collector.stats})
        if status == "timeout":
            raise StepTimeoutError(f"playbook {relative} ran past the step deadline",
                                   endpoint=endpoint, operation=KIND)
        if status == "canceled":
            raise PermanentError(f"playbook {relative} was cancelled", endpoint=endpoint,
                                 operation=KIND)
        failures = collector.failures
        if not failures:
            raise PermanentError(
                f"playbook {relative} failed (rc {runner.rc}): {self._stdout_tail(runner)}",
                endpoint=endpoint, operation=KIND)
        hosts = sorted({f.host for f in failures})
        text = f"playbook {relative} failed on {len(hosts)} host(s): " + "; ".join(
            str(f) for f in failures)
        if all(not f.permanent for f in failures):
            raise TransientError(text, endpoint=endpoint, operation=KIND)
        raise PermanentError(text, endpoint=endpoint, operation=KIND)

    @staticmethod
    def _stdout_tail(runner: Any, limit: int = 800) -> str:
        try:
            text = runner.stdout.read().strip()
        except (OSError, AttributeError, ValueError):
            return "no output"
        text = redact(text)
        return text if len(text) <= limit else "..." + text[-limit:]
