"""Golden plans: each profile planned against each inventory, as byte-stable text and JSON.

``tests/plans/<profile-stem>/<inventory-stem>.{txt,json}`` hold the plan ``orch plan
--no-refresh`` makes from an empty state. They are made through the engine's Python API
(load → make_plan → render), never by parsing CLI output, and normalised so that the same
checkout gives the same bytes on every machine:

* paths are relative to the repository root (``profiles/76-nested-kvm.yaml``);
* the state store is a throw-away SQLite file whose URL is shown as ``sqlite:///<state>``;
* the state hash (of an empty state) and the inputs hash (of the files' bytes, which line
  endings would change) are shown as ``<state-hash>`` and ``<inputs-hash>``;
* orch's version and the plan's creation time are shown as ``<orch-version>`` and
  ``<created-at>``.

``regen.py`` writes them; ``tests/test_profiles.py`` compares a fresh plan with them.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import msgspec

from orchestrator.driver import ApplyRequest, ApplyResult, Driver, DriverRegistry
from orchestrator.errors import DriverLoadError, NotSupportedError
from orchestrator.loader import load
from orchestrator.plan import Plan
from orchestrator.planner import PlanOptions, make_plan
from orchestrator.render import renderer
from orchestrator.state import open_store

ROOT = Path(__file__).resolve().parents[2]
PLANS = ROOT / "tests" / "plans"
PROFILES = ROOT / "profiles"
INVENTORIES = (ROOT / "inventories" / "lab.yaml",
               ROOT / "inventories" / "example-datacenter.yaml")

STATE_URL = "sqlite:///<state>"
STATE_HASH = "<state-hash>"
INPUTS_HASH = "<inputs-hash>"
ORCH_VERSION = "<orch-version>"
CREATED_AT = "<created-at>"


@dataclass(frozen=True)
class Golden:
    """One profile x inventory: where its expected plan lives and what it says."""

    profile: Path
    inventory: Path
    text: str
    json: str

    @property
    def folder(self) -> Path:
        return PLANS / self.profile.stem

    @property
    def text_path(self) -> Path:
        return self.folder / f"{self.inventory.stem}.txt"

    @property
    def json_path(self) -> Path:
        return self.folder / f"{self.inventory.stem}.json"


def profiles() -> list[Path]:
    """Every profile of the catalog, in file-name order."""
    return sorted(PROFILES.glob("*.yaml"))


def relative(path: Path) -> str:
    return path.resolve().relative_to(ROOT).as_posix()


class _AnySettings(msgspec.Struct):
    """Accepts any settings (the real driver validates them; see test_profile_drivers_load)."""


class _PlanOnlyDriver(Driver):
    """Stands in for a driver whose module cannot be imported here.

    With ``refresh=False`` a plan never calls a driver: the planner only validates its
    settings. The plan value is therefore the same with or without the real class, and a
    golden plan can be made before (or without) the driver's dependencies. Whether each
    driver really loads is proved separately (``test_profile_drivers_load``).
    """

    description = "placeholder for planning only"
    step_kinds: ClassVar[Mapping[str, str]] = {}
    settings_type = _AnySettings

    def apply(self, request: ApplyRequest) -> ApplyResult:
        raise NotSupportedError(f"driver {self.name} is a planning placeholder",
                                operation="apply", endpoint=request.step.endpoint or "-")


def planning_registry(strict: bool) -> DriverRegistry:
    """The real driver registry; unless ``strict``, drivers that fail to load are replaced
    by :class:`_PlanOnlyDriver` so that planning does not depend on optional imports."""
    registry = DriverRegistry()
    if strict:
        return registry
    for name in registry.names():
        try:
            registry.load(name)
        except DriverLoadError:
            registry.register(type(f"PlanOnly_{name}", (_PlanOnlyDriver,), {"name": name}))
    return registry


def make(profile: Path, inventory: Path, *, strict: bool = False) -> Plan:
    """Plan ``profile`` against ``inventory`` from an empty state, without refresh."""
    loaded = load(relative(profile), relative(inventory)) if _inside(profile) else \
        load(profile, inventory)
    with tempfile.TemporaryDirectory(prefix="orch-golden-") as tmp:
        store = open_store(str(Path(tmp) / "state.db"))
        try:
            return make_plan(loaded, store, PlanOptions(refresh=False),
                             drivers=planning_registry(strict))
        finally:
            store.close()


def _inside(path: Path) -> bool:
    try:
        path.resolve().relative_to(ROOT)
    except ValueError:
        return False
    return True


def normalised_json(plan: Plan) -> str:
    d: dict[str, Any] = plan.to_dict()
    d["state_url"] = STATE_URL
    d["state_hash"] = STATE_HASH
    d["inputs_hash"] = INPUTS_HASH
    d["orch_version"] = ORCH_VERSION
    d["created_at"] = CREATED_AT
    return json.dumps(d, indent=1, ensure_ascii=False) + "\n"


def render(profile: Path, inventory: Path) -> Golden:
    """The golden text and JSON for one profile and inventory, computed now."""
    import os
    cwd = os.getcwd()
    os.chdir(ROOT)  # paths in the plan are relative to the repository root
    try:
        plan = make(profile, inventory)
    finally:
        os.chdir(cwd)
    return Golden(profile, inventory, renderer("text")(plan), normalised_json(plan))


def write(golden: Golden) -> list[Path]:
    """Write the golden files; returns those whose content changed."""
    golden.folder.mkdir(parents=True, exist_ok=True)
    changed = []
    for path, content in ((golden.text_path, golden.text), (golden.json_path, golden.json)):
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if old != content:
            path.write_text(content, encoding="utf-8", newline="\n")
            changed.append(path)
    return changed
