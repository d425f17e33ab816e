"""Each ``helm.release`` in the catalog sets only values its chart documents (issue 9, item 3).

``helm_values.json`` holds, per chart and version, the value paths the chart's own
``values.yaml`` documents (made by ``helm_values_extract.py`` from the chart's Git
repository at the release tag; key names only). Every value a profile sets must be a
documented path, or lie below a path the chart leaves free-form (an empty mapping, a list or
null by default: node selectors, ``conf`` blocks), or below one of :data:`CHECKED_BY_CRD`
(passed verbatim into a custom resource, whose CRD the real-server catalog test checks).

Not checked here, and said so: whether the chart version exists in its repository, the
chart's rendering (templates, ``required`` values, schema files), and the objects it makes;
charts :data:`NOT_CHECKED` names, with why; an unpinned chart is checked against the newest
release the table was made from (printed: such a profile should pin its version).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TABLE: dict[str, Any] = json.loads((HERE / "helm_values.json").read_text())
PLANS = HERE.parent / "plans"

#: chart -> why its values are not checked here
NOT_CHECKED = {
    "cilium/cilium@1.15.6": "the Cilium repository (~750 MB) cannot be brought to this machine",
}

#: (chart, top-level value) -> the custom resource it becomes, checked by the catalog test
CHECKED_BY_CRD = {
    ("rook-release/rook-ceph-cluster", "cephClusterSpec"): "ceph.rook.io/v1 CephCluster spec",
}


def leaf_paths(value: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(value, dict) and value:
        for key, sub in value.items():
            yield from leaf_paths(sub, f"{prefix}.{key}" if prefix else str(key))
    elif prefix:
        yield prefix


def releases() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(profile/component, chart@version, values) of every helm.release in the goldens."""
    seen = set()
    for path in sorted(PLANS.glob("*/*.json")):
        for step in json.loads(path.read_text())["steps"]:
            v = step["inputs"].get("vars") or {}
            if step["kind"] != "ansible.playbook" or \
                    step["inputs"].get("playbook") != "common/helm-release.yml":
                continue
            key = (path.parent.name, step["component"], json.dumps(v, sort_keys=True))
            if key not in seen:
                seen.add(key)
                yield (f"{path.parent.name} {step['component']}",
                       f"{v['chart']}@{v.get('version') or ''}", dict(v.get("values") or {}))


def undocumented(chart: str, values: dict[str, Any]) -> list[str]:
    entry = TABLE[chart]
    paths, open_ = set(entry["paths"]), set(entry["open"])
    name = chart.split("@")[0]
    wrong = []
    for path in leaf_paths(values):
        parts = path.split(".")
        if path in paths or (name, parts[0]) in CHECKED_BY_CRD or \
                any(".".join(parts[:i]) in open_ for i in range(1, len(parts))):
            continue
        wrong.append(path)
    return wrong


def test_every_release_sets_only_documented_values() -> None:
    problems, checked, unpinned, skipped = [], 0, set(), set()
    for where, chart, values in releases():
        if not values:
            continue  # the chart's defaults: nothing a profile could have misspelt
        if chart in NOT_CHECKED:
            skipped.add(f"{chart}: {NOT_CHECKED[chart]}")
            continue
        assert chart in TABLE, f"{where}: {chart} is not in helm_values.json " \
                               "(run helm_values_extract.py) nor in NOT_CHECKED"
        checked += 1
        if chart.endswith("@"):
            unpinned.add(f"{chart}  ({TABLE[chart]['source']})")
        problems += [f"{where}: {chart}: `{p}` is not a documented value"
                     for p in undocumented(chart, values)]
    print(f"\n{checked} releases' values checked against their charts' values.yaml")
    for line in sorted(unpinned):
        print(f"  unpinned, checked against the newest release: {line}")
    for line in sorted(skipped):
        print(f"  not checked: {line}")
    assert not problems, "\n".join(problems)
    assert checked >= 20, "the goldens lost their helm releases?"


def test_a_misspelt_value_is_caught() -> None:
    """The check can fail: a value the chart does not document is reported."""
    assert undocumented("longhorn/longhorn@1.6.2", {"persistence": {"defaultClas": True}}) \
        == ["persistence.defaultClas"]
    assert undocumented("longhorn/longhorn@1.6.2", {"persistence": {"defaultClass": True}}) \
        == []
