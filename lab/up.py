"""``orch lab up`` / ``orch lab down``: a profile's nodes as libvirt guests on this machine.

:func:`up` loads the profile without an inventory (nodes per role), scales each node down
to a guest (the rule is in :mod:`lab.guests`), writes the lab profile and its inventory
(:mod:`lab.labprofile`) into the lab's state directory, and applies that profile with the
engine: network with fixed leases, pool, base image, linked clones and domains created in
parallel, then ``ssh.wait`` on every guest. Then it starts emulated BMCs for the guests
(:func:`lab.bmc.start`: Redfish and IPMI on 127.0.0.1) and writes the lab inventory.
A failed or interrupted ``up`` is resumed by running it again (finished steps are not
redone). :func:`down` applies the lab profile's destroy plan, stops the BMC emulators and
removes the state directory and the inventory it wrote: nothing is left behind.

State directory: ``<cache>/lab/labs/<profile>/`` -- ``lab.yaml`` (lab profile),
``hosts.yaml`` (its inventory), ``lab.orch.db`` (its state), ``known_hosts`` (the guests'
host keys, recorded by the SSH driver and read by Ansible), ``bmc/`` and ``lab.json``
(the /24 chosen and the inventory written).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lab import cache_dir
from lab.guests import DEFAULT_MEMORY_MIB, Guest, design, pick_cidr, slug
from lab.labprofile import internal_inventory, lab_inventory, lab_profile
from orchestrator.errors import OrchError

Say = Callable[[str], None]
DEFAULT_MAX_GUESTS = 8


class LabError(OrchError):
    template = "lab: {message}"


@dataclass
class LabResult:
    profile: str
    inventory: Path
    guests: list[Guest]
    seconds: float
    findings: list[str] = field(default_factory=list)
    state_dir: Path = Path()
    #: The offline mirror's base URL on the lab network (``--mirror``), else "".
    mirror_url: str = ""


def state_dir(profile_name: str) -> Path:
    return cache_dir("lab", "labs", slug(profile_name))


def profile_name_of(profile: str | Path) -> str:
    from orchestrator.loader import structured
    from orchestrator.model import Profile
    from orchestrator.source import load_yaml
    return str(structured(load_yaml(profile), Profile, "profile").metadata.name)


def _write_yaml(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(dict(data), sort_keys=False), encoding="utf-8")
    tmp.replace(path)


def _meta(root: Path) -> dict[str, Any]:
    path = root / "lab.json"
    return dict(json.loads(path.read_text())) if path.exists() else {}


def up(profile: str | Path, *, params: Mapping[str, str] | None = None,
       out: str | Path | None = None, memory_mib: int = DEFAULT_MEMORY_MIB,
       max_guests: int = DEFAULT_MAX_GUESTS, bmc: bool = True,
       image_source: str = "lab", bare_metal: bool = False, mirror: bool = False,
       say: Say = lambda _t: None) -> LabResult:
    """Create (or resume) the lab for ``profile``; return where its inventory is.

    ``bare_metal``: guests with blank OS disks, powered off behind their emulated BMCs,
    for profiles whose own ``os.install`` steps install the OS (needs the BMCs).
    ``mirror``: build the offline mirror (:mod:`lab.mirror`) and serve it on the lab
    network's gateway, as an air-gapped site serves its nodes.

    Raises :class:`LabError` when the profile needs more guests than ``max_guests`` or a
    step fails (the message names it; run again to resume), and the engine's errors.
    """
    from lab.image import build_image, lab_keypair
    from orchestrator.loader import load

    started = time.monotonic()
    loaded = load(profile, None, dict(params or {}))
    name = loaded.profile.metadata.name
    nodes = loaded.all_nodes()
    if len(nodes) > max_guests:
        raise LabError(f"profile {name} needs {len(nodes)} guests, more than --max-guests "
                       f"{max_guests} allows",
                       hint="lower the role counts with -p, or raise --max-guests if the "
                            f"machine has the memory ({len(nodes)} x {memory_mib} MiB)")
    if not nodes:
        raise LabError(f"profile {name} has no nodes to make guests for")
    if bare_metal and not bmc:
        raise LabError("a bare-metal lab needs its emulated BMCs: nothing else can power "
                       "the guests on or install them", hint="drop --no-bmc")
    root = state_dir(name)
    meta = _meta(root)
    cidr = meta.get("cidr") or pick_cidr(name)
    inventory_path = Path(out or Path("inventories") / f"lab-{slug(name)}.yaml").resolve()
    meta.update({"profile": name, "cidr": cidr, "inventory": str(inventory_path),
                 "memory_mib": memory_mib})
    (root / "lab.json").write_text(json.dumps(meta, indent=2) + "\n")
    blank_gib = 0
    if bare_metal:
        from drivers.libvirt.volume import qcow2_virtual_size
        # room for the lab image, which the installer ISO writes onto the disk
        blank_gib = -(-qcow2_virtual_size(build_image(progress=say)) // (1 << 30))
    elif image_source == "lab":
        # the libvirt driver knows no "lab": it uploads a file of its image directory
        built = build_image(progress=say)
        say("lab image: " + str(built))
        image_source = built.name
    key, public = lab_keypair()
    guests = design(loaded, cidr, memory_mib)
    known_hosts = root / "known_hosts"
    _write_yaml(root / "lab.yaml", lab_profile(name, cidr, guests, public,
                                               image_source=image_source,
                                               blank_os_gib=blank_gib))
    _write_yaml(root / "hosts.yaml", internal_inventory(name, guests, key, known_hosts))
    findings = _apply(root, destroy=False, say=say)
    bmcs: dict[str, dict[str, Any]] | None = None
    if bmc:
        bmcs = _start_bmcs(root, guests, say)
    mirror_url = ""
    if mirror:
        from lab import mirror as offline
        from lab import mirrorserve

        mirror_url = mirrorserve.start(offline.build(progress=say), cidr, root)
        meta["mirror"] = mirror_url
        (root / "lab.json").write_text(json.dumps(meta, indent=2) + "\n")
        say(f"offline mirror: {mirror_url}")
    inventory_path.parent.mkdir(parents=True, exist_ok=True)
    _write_yaml(inventory_path, lab_inventory(name, guests, key, known_hosts, bmcs))
    say(f"wrote {inventory_path}")
    return LabResult(name, inventory_path, guests, time.monotonic() - started, findings, root,
                     mirror_url)


def _start_bmcs(root: Path, guests: list[Guest], say: Say) -> dict[str, dict[str, Any]]:
    from lab import bmc

    try:
        lab = bmc.start([g.domain for g in guests], root)
    except (bmc.BmcLabError, OSError) as exc:
        raise LabError(f"emulated BMCs did not start: {exc}",
                       hint="pip install 'orch-stack[lab]' (sushy-tools, virtualbmc), or use "
                            "--no-bmc") from None
    say(f"emulated BMCs: Redfish {lab.redfish_endpoint}, IPMI on 127.0.0.1")
    out: dict[str, dict[str, Any]] = {}
    for g in guests:
        d = lab.domains[g.domain]
        endpoint, system = ((d.redfish_endpoint, d.redfish_system) if g.bmc_kind == "redfish"
                            else (d.ipmi_endpoint, None))
        out[g.domain] = {"kind": g.bmc_kind, "endpoint": endpoint, "username": d.username,
                         "password": lab.password_ref, "verify_tls": False,
                         **({"system": system} if system else {})}
    return out


def _apply(root: Path, *, destroy: bool, say: Say) -> list[str]:
    """Plan the lab profile (or its destruction) and apply it under the store's lock."""
    from orchestrator.driver import DriverRegistry
    from orchestrator.executor import ExecOptions, Executor, StepStatus
    from orchestrator.loader import load
    from orchestrator.plan import Mode
    from orchestrator.planner import PlanOptions, make_plan
    from orchestrator.state import Holder, default_state_path, open_store

    lab_yaml = root / "lab.yaml"
    loaded = load(lab_yaml, root / "hosts.yaml")
    store = open_store(str(default_state_path(lab_yaml)))
    try:
        with store.locked(loaded.profile.metadata.name, Holder.me(), timeout=60):
            # ssh.wait has nothing to delete, but the SSH driver waits for a login on
            # delete too: leave those steps out of the destroy plan.
            opts_ = (PlanOptions(Mode.DESTROY, excludes=("ssh-ready.*",)) if destroy
                     else PlanOptions(Mode.NORMAL))
            the_plan = make_plan(loaded, store, opts_)
            findings = [f"{f.check}: {f.detail}" for f in the_plan.findings]
            for text in findings:
                say(text)
            if not the_plan.has_changes:
                say("lab: no changes")
                return findings

            t0 = time.monotonic()

            def on_event(event: str, sid: str, detail: str) -> None:
                if event in ("succeeded", "failed", "skipped", "retry"):
                    say(f"  [{time.monotonic() - t0:6.1f} s] {event:<9} {sid}"
                        f"{': ' + detail if detail else ''}")

            opts = ExecOptions(parallelism=8, lock_timeout=60, on_event=on_event,
                               base_dir=root, check_state_hash=False)
            report = Executor(the_plan, store, DriverRegistry(), opts).run()
    finally:
        store.close()
    if not report.ok:
        failed = [f"{o.step_id}: {o.error}" for o in report.of(StepStatus.FAILED)]
        raise LabError("lab steps failed: " + ("; ".join(failed) or "some were skipped"),
                       hint="run the same command again to resume")
    return findings


def plan_text(profile_name: str) -> str:
    """The lab profile's plan as text, with observed state (drift) and the accelerator."""
    from orchestrator.loader import load
    from orchestrator.planner import make_plan
    from orchestrator.render.text import render_text
    from orchestrator.state import default_state_path, open_store

    root = state_dir(profile_name)
    if not (root / "lab.yaml").exists():
        raise LabError(f"no lab for profile {profile_name}", hint="orch lab up PROFILE")
    loaded = load(root / "lab.yaml", root / "hosts.yaml")
    store = open_store(str(default_state_path(root / "lab.yaml")))
    try:
        return str(render_text(make_plan(loaded, store)))
    finally:
        store.close()


def down(profile_name: str, *, say: Say = lambda _t: None) -> bool:
    """Remove the lab of ``profile_name``: guests, volumes, pool, network, BMC emulators,
    known hosts, state and the inventory ``up`` wrote. False when there was no lab.

    Raises :class:`LabError` when a deletion fails (state is kept: run again).
    """
    from lab import bmc

    root = state_dir(profile_name)
    if not (root / "lab.yaml").exists():
        shutil.rmtree(root, ignore_errors=True)
        return False
    from lab import mirrorserve

    bmc.stop(root)
    if mirrorserve.stop(root):
        say("offline mirror stopped")
    for volume in bmc.remove_media_copies(root):
        say(f"removed virtual media copy {volume}")
    _apply(root, destroy=True, say=say)
    inventory = _meta(root).get("inventory")
    if inventory:
        Path(inventory).unlink(missing_ok=True)
    shutil.rmtree(root, ignore_errors=True)
    say(f"lab for {profile_name} removed")
    return True
