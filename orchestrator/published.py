"""Credentials one step publishes for the steps after it: the hand-off between layers.

A step that builds a system (``kubeadm init``, a Talos bootstrap, an OpenStack deployment)
is given, as one of its inputs, ``{"$publish": "NAME"}``; when the step runs this becomes
the absolute path of a file in the run's *published directory*, where the step writes what
the next layer needs to reach the system (a kubeconfig, a clouds.yaml). Later steps read it
with the secret reference ``published:NAME`` (``{"$secret": "published:NAME"}``), resolved
like ``file:`` only when they run. Plans and state carry the name, never the path's content.

The published directory is private to one deployment: ``ORCH_PUBLISHED_DIR/<profile>`` when
that variable is set; beside a SQLite state file ``X.orch.db``, ``X.orch.db.published/
<profile>``; for PostgreSQL, ``$XDG_STATE_HOME/orch/published/<host-db>/<profile>``
(``~/.local/state`` by default). Directories are created 0700; publishers write 0600.
The CLI names the directory once per command (:func:`use`), before planning or applying.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from orchestrator.errors import SecretError

PUBLISH_KEY = "$publish"
SCHEME = "published"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*")

_lock = threading.Lock()
_directory: Path | None = None


def check_name(name: object) -> str | None:
    """An error message for a bad published name, None when it is well formed."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        return "a published name is like kubeconfig/mgmt (letters, digits, . _ - and /)"
    return None


def is_publish_value(value: object) -> bool:
    """True for the ``{"$publish": NAME}`` form."""
    return isinstance(value, Mapping) and len(value) == 1 and PUBLISH_KEY in value


def directory_for(state_url: str, profile: str) -> Path:
    """Where the deployment ``profile`` with state at ``state_url`` keeps what it publishes."""
    given = os.environ.get("ORCH_PUBLISHED_DIR")
    if given:
        return Path(os.path.expanduser(given)) / profile
    if state_url.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(state_url)
        where = f"{parts.hostname or 'local'}-{parts.path.strip('/') or 'orch'}"
        base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
        return base / "orch" / "published" / where / profile
    path = state_url.removeprefix("sqlite:///") if state_url.startswith("sqlite:///") \
        else state_url
    db = Path(os.path.expanduser(path)).resolve()
    return db.with_name(db.name + ".published") / profile


def use(directory: Path | None) -> None:
    """Name the published directory for this process (None: none, references fail)."""
    global _directory
    with _lock:
        _directory = directory


def current() -> Path | None:
    with _lock:
        return _directory


def path_of(name: str, *, create_parent: bool = False) -> Path:
    """The file ``name`` stands for. Raises :class:`SecretError` for a bad name or when no
    published directory has been named."""
    problem = check_name(name)
    if problem:
        raise SecretError(f"bad published name {name!r}: {problem}")
    directory = current()
    if directory is None:
        raise SecretError(f"published:{name} cannot be resolved outside an orch run",
                          hint="published credentials exist only for a profile's state: "
                               "run through `orch plan/apply`")
    path = directory / name
    if create_parent:
        _private_dirs(directory, path.parent)
    return path


def _private_dirs(top: Path, leaf: Path) -> None:
    top.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(top, 0o700)
    leaf.mkdir(mode=0o700, parents=True, exist_ok=True)
    for parent in (leaf, *leaf.parents):
        if parent == top or top not in parent.parents:
            break
        os.chmod(parent, 0o700)


def read(name: str) -> str:
    """The content a step published as ``name``. Raises :class:`SecretError`."""
    path = path_of(name)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SecretError(f"published:{name} has not been published yet",
                          hint="the step that publishes it must run first: make this "
                               "component come `after:` it") from None
    except OSError as exc:
        raise SecretError(f"published:{name} cannot be read: {exc.strerror}") from None


def publish_paths(value: Any) -> Any:
    """Every ``{"$publish": NAME}`` inside ``value`` replaced by its file's path (a string),
    its directory created 0700."""
    if isinstance(value, Mapping):
        if is_publish_value(value):
            return str(path_of(str(value[PUBLISH_KEY]), create_parent=True))
        return {k: publish_paths(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [publish_paths(v) for v in value]
    return value


def names(value: Any, *, key: str = PUBLISH_KEY) -> set[str]:
    """The names ``value`` publishes (``key="$publish"``) or reads (``key="$secret"``)."""
    found: set[str] = set()
    if isinstance(value, Mapping):
        if len(value) == 1 and key in value:
            text = str(value[key])
            if key == PUBLISH_KEY:
                found.add(text)
            elif text.startswith(f"{SCHEME}:"):
                found.add(text.partition(":")[2])
            return found
        for v in value.values():
            found |= names(v, key=key)
    elif isinstance(value, list | tuple):
        for v in value:
            found |= names(v, key=key)
    return found


def unordered_readers(steps: Mapping[str, Any], ancestors: Any,
                      settings: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Problems with the hand-offs of a desired plan: a step reading ``published:NAME`` (in
    its inputs, or through its driver's settings) that nothing publishes, or that does not
    come after the step publishing it. ``steps`` maps ids to steps (``inputs``, ``driver``,
    ``component``); ``ancestors(id)`` is the set of ids a step depends on, transitively."""
    publishers: dict[str, list[str]] = {}
    for sid, step in steps.items():
        for name in names(step.inputs):
            publishers.setdefault(name, []).append(sid)
    problems = [f"{name} is published by {len(ids)} steps ({', '.join(sorted(ids))}): "
                "give each its own name" for name, ids in sorted(publishers.items())
                if len(ids) > 1]
    from_settings = {driver: {str(v).partition(":")[2] for v in values.values()
                              if isinstance(v, str) and v.startswith(f"{SCHEME}:")}
                     for driver, values in settings.items()}
    for sid, step in steps.items():
        read = names(step.inputs, key="$secret") | from_settings.get(step.driver, set())
        for name in sorted(read):
            source = publishers.get(name)
            if not source:
                problems.append(f"{sid} reads published:{name}, which no step of this "
                                "profile publishes ({$publish: " + name + "})")
            elif source[0] != sid and source[0] not in ancestors(sid):
                publisher = steps[source[0]].component
                problems.append(f"{sid} reads published:{name} but does not come after "
                                f"{source[0]}, which publishes it: add `after: "
                                f"[{publisher}]` to component {step.component}")
    return problems
