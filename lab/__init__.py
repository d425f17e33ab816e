"""The lab: the things orch builds on one machine to test itself against real services.

Guest images (:mod:`lab.image`), the accelerator preflight (:mod:`lab.accel`) and emulated
BMCs (:mod:`lab.bmc`). Everything they build is cached outside the repository, under
:func:`cache_dir` (``$ORCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/orch``, else ``~/.cache/orch``),
so that CI builds each artefact once per machine.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """The orch cache directory (or a sub-directory of it), created if missing."""
    root = os.environ.get("ORCH_CACHE_DIR")
    if root:
        base = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "orch"
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
