"""Where orch caches what it builds or measures once per machine.

``$ORCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/orch``, else ``~/.cache/orch``. The lab keeps its
images there and the libvirt driver its accelerator verdict, so that CI builds or probes
each artefact once per machine.
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
