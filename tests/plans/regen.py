#!/usr/bin/env python3
"""Regenerate the golden plans: ``python tests/plans/regen.py [PROFILE...]``.

With no argument, every ``profiles/*.yaml``; otherwise the profiles named (a path, a file
name, or a stem such as ``76-nested-kvm``). Each is planned against every inventory of
:data:`golden.INVENTORIES` and written to ``tests/plans/<stem>/<inventory>.{txt,json}``.
Review the diff (``git diff tests/plans``) before committing: a golden plan is what the
profile is expected to do.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import golden

from orchestrator.errors import OrchError


def resolve(arg: str) -> Path:
    candidates = [Path(arg), golden.PROFILES / arg, golden.PROFILES / f"{arg}.yaml"]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    raise SystemExit(f"regen: no profile {arg!r} (looked in {golden.relative(golden.PROFILES)})")


def main(argv: list[str]) -> int:
    paths = [resolve(a) for a in argv] if argv else golden.profiles()
    failed = 0
    for profile in paths:
        for inventory in golden.INVENTORIES:
            where = f"{profile.stem} x {inventory.stem}"
            try:
                changed = golden.write(golden.render(profile, inventory))
            except OrchError as exc:
                failed += 1
                print(f"FAIL {where}: {exc.render()}", file=sys.stderr)
                continue
            state = "updated" if changed else "unchanged"
            print(f"{state:9} {where}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
