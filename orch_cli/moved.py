"""Apply writes what a profile's ``moved:`` entries rename, before its steps run.

Planning only shows the records under their new ids (:func:`orchestrator.planner.
follow_moved`); the apply that carries the plan out records the renames first, under the
profile's lock, so the executor finds state as the plan saw it (a saved plan's state hash
included: the hash covers ids, fingerprints and statuses, which a move keeps).
"""

from __future__ import annotations

from typing import Any

import click


def entries(profile_path: str) -> list[tuple[str, str]]:
    if not profile_path:
        return []
    from orchestrator.loader import structured
    from orchestrator.model import Profile
    from orchestrator.source import load_yaml
    profile = structured(load_yaml(profile_path), Profile, "profile")
    return [(m.from_, m.to) for m in profile.moved]


def persist(store: Any, profile: str, profile_path: str) -> None:
    """Record the moves (the caller holds the lock, or the store takes it here)."""
    todo = entries(profile_path)
    if not todo:
        return
    from orchestrator.state import Holder
    from orchestrator.state.move import persist_moved
    with store.locked(profile, Holder.me()):
        run = persist_moved(store, profile, todo)
    if run:
        click.echo(f"Recorded the profile's moved: entries in state (run {run}).", err=True)
