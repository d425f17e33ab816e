"""Make ``helm_values.json``: the value paths a chart documents in its ``values.yaml``.

Run by hand where the chart's Git repository is at hand (``git show TAG:PATH``)::

    python3 tests/kubernetes/helm_values_extract.py CHART VERSION REPO_DIR REV PATH [URL]

Only key paths are kept (``controller.hostNetwork``), never values or comments: every
top-level key, and the full paths under the top-level keys the catalog's profiles set (read
from the golden plans, so the table stays small). ``open`` lists the paths whose documented
default is an empty mapping, a list or null: what a profile puts beneath them is the chart's
free-form input (node selectors, ``conf`` blocks).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
TABLE = HERE / "helm_values.json"
PLANS = HERE.parent / "plans"


def used_top_keys(chart: str) -> set[str]:
    """The top-level values keys any profile sets for ``chart`` (from the golden plans)."""
    keys: set[str] = set()
    for path in PLANS.glob("*/*.json"):
        for step in json.loads(path.read_text())["steps"]:
            v = step["inputs"].get("vars") or {}
            if step["kind"] == "ansible.playbook" and v.get("chart") == chart:
                keys |= set(v.get("values") or {})
    return keys


def walk(value: Any, prefix: str, paths: set[str], open_: set[str]) -> None:
    if isinstance(value, dict) and value:
        for key, sub in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            paths.add(path)
            walk(sub, path, paths, open_)
    elif prefix and (value is None or isinstance(value, (dict, list))):
        open_.add(prefix)


def main(chart: str, version: str, repo: str, rev: str, path: str, url: str = "") -> None:
    text = subprocess.run(["git", "-C", repo, "show", f"{rev}:{path}"], check=True,
                          capture_output=True, text=True).stdout
    commit = subprocess.run(["git", "-C", repo, "rev-list", "-n1", rev], check=True,
                            capture_output=True, text=True).stdout.strip()
    paths: set[str] = set()
    open_: set[str] = set()
    walk(yaml.safe_load(text), "", paths, open_)
    used = used_top_keys(chart)
    paths = {p for p in paths if "." not in p or p.split(".")[0] in used}
    open_ = {p for p in open_ if p.split(".")[0] in used or "." not in p}
    table = json.loads(TABLE.read_text()) if TABLE.exists() else {}
    table[f"{chart}@{version}"] = {"source": f"{url or repo} {path} at {rev} ({commit[:12]})",
                                   "paths": sorted(paths), "open": sorted(open_)}
    TABLE.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
