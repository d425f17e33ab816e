"""The Ansible driver's settings, validated from the profile before planning."""

from __future__ import annotations

from typing import Annotated

import msgspec

DEFAULT_KNOWN_HOSTS = "~/.local/state/orch/known_hosts"


class AnsibleSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    playbooks_dir: Annotated[str, msgspec.Meta(
        description="directory playbook paths are relative to (empty: the repo's "
                    "playbooks/)")] = ""
    known_hosts: Annotated[str, msgspec.Meta(
        description="OpenSSH known_hosts file: new host keys are recorded, changed ones "
                    "refused (the SSH driver's file)")] = DEFAULT_KNOWN_HOSTS
    forks: Annotated[int, msgspec.Meta(
        description="hosts one playbook run works on at once", ge=1)] = 10
    connect_timeout: Annotated[int, msgspec.Meta(
        description="seconds an SSH connection may take to open", ge=1)] = 10
    python_interpreter: Annotated[str, msgspec.Meta(
        description="Python on the managed hosts (auto_silent: let Ansible discover "
                    "it)")] = "auto_silent"
    verbosity: Annotated[int, msgspec.Meta(
        description="ansible-playbook -v count (0-4)", ge=0, le=4)] = 0
    keep_artifacts: Annotated[str, msgspec.Meta(
        description="directory to copy runner artifacts to after each run (empty: keep "
                    "none)")] = ""
