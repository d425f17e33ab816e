"""The lab: the things orch builds on one machine to test itself against real services.

Guest images (:mod:`lab.image`), emulated BMCs (:mod:`lab.bmc`), ``orch lab up``
(:mod:`lab.up`). The lab is an application of the drivers: it imports them, never the other
way round (``.importlinter``). Everything it builds is cached outside the repository, under
:func:`cache_dir` (:mod:`orchestrator.cachedir`).
"""

from __future__ import annotations

from orchestrator.cachedir import cache_dir

__all__ = ["cache_dir"]
