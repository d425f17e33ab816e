"""Secret references: ``env:NAME``, ``file:PATH`` and ``published:NAME`` (what an earlier
step published, :mod:`orchestrator.published`), resolved only when a step runs.

A profile or inventory never holds a secret's value, only a reference to it. Plans and state
carry the reference (``{"$secret": "env:BMC_PASSWORD"}``) so that a saved plan can be applied
later; the value is read just before a driver needs it, wrapped in :class:`Secret` (whose
``repr`` and ``str`` are masked), and registered with :func:`known_values` so the log
redactor can mask it should a driver ever echo it back.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator import published
from orchestrator.errors import SecretError

SECRET_KEY = "$secret"
SCHEMES = ("env", "file", published.SCHEME)
MASK = "********"

_seen_lock = threading.Lock()
_seen: set[str] = set()


def is_reference(text: object) -> bool:
    return isinstance(text, str) and text.split(":", 1)[0] in SCHEMES and ":" in text


def check_reference(text: str) -> str | None:
    """Return an error message for a malformed reference, or None when it is well formed."""
    scheme, _, rest = text.partition(":")
    if scheme not in SCHEMES or not rest:
        return "a secret reference is env:NAME, file:PATH or published:NAME"
    if scheme == "env" and not rest.replace("_", "").isalnum():
        return "env: references name an environment variable (letters, digits, _)"
    if scheme == published.SCHEME:
        return published.check_name(rest)
    return None


def ref(text: str) -> dict[str, str]:
    """The form a reference takes inside step inputs, plans and state."""
    return {SECRET_KEY: text}


def is_ref_value(value: object) -> bool:
    """True for the ``{"$secret": REF}`` form."""
    return isinstance(value, Mapping) and len(value) == 1 and SECRET_KEY in value


#: keys whose values are secrets wherever they appear (driver settings, ``with:``)
_SECRET_NAME = re.compile(r"(?:^|[_.-])(?:password|passwd|passphrase|secret|token|"
                          r"api[_-]?key|private[_-]?key|credentials?)$", re.IGNORECASE)

Path_ = tuple[str | int, ...]


def looks_secret(key: object) -> bool:
    return isinstance(key, str) and bool(_SECRET_NAME.search(key))


def guard(value: Any, path: Path_ = ()) -> tuple[Any, list[Path_]]:
    """Turn ``env:``/``file:`` references under secret-named keys (``password``,
    ``join_token``, ``api_key`` ...) and in a Kubernetes Secret's ``data``/``stringData``
    into the ``{"$secret": REF}`` form; return the paths where a literal value stands
    instead, so the caller can refuse them with their location."""
    literals: list[Path_] = []

    def walk(v: Any, p: Path_, secret: bool, below_data: bool) -> Any:
        """``secret``: a string here is a secret (its key says so); ``below_data``:
        everything below is (a Kubernetes Secret's data)."""
        if isinstance(v, Mapping):
            if is_ref_value(v):
                return dict(v)
            # a mapping under a secret-named key is judged by its own keys (`secret: {name:
            # creds}` names a Secret object); a Kubernetes Secret's data is secret throughout
            data = below_data or v.get("kind") == "Secret"
            return {k: walk(x, (*p, k), below_data or looks_secret(k),
                            below_data or (data and k in ("data", "stringData")))
                    for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x, (*p, i), secret, below_data) for i, x in enumerate(v)]
        if (secret or below_data) and isinstance(v, str) and v:
            if check_reference(v) is None:
                return ref(v)
            literals.append(p)
        return v

    return walk(value, path, False, False), literals


class Secret:
    """A resolved secret. Masked when printed; ``reveal()`` gives the value to a driver."""

    __slots__ = ("_value", "reference")

    def __init__(self, reference: str, value: str) -> None:
        self.reference = reference
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.reference!r})"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.reference == self.reference

    def __hash__(self) -> int:
        return hash(self.reference)


def resolve(reference: str, *, base_dir: Path | None = None) -> Secret:
    """Read the value a reference points at. Raises :class:`SecretError` naming the reference."""
    problem = check_reference(reference)
    if problem:
        raise SecretError(f"bad secret reference {reference!r}: {problem}")
    scheme, _, rest = reference.partition(":")
    value: str | None
    if scheme == published.SCHEME:
        value = published.read(rest).rstrip("\n")
    elif scheme == "env":
        value = os.environ.get(rest)
        if value is None:
            raise SecretError(f"secret {reference} is not set",
                              hint=f"export {rest}=... before running orch")
    else:
        path = Path(os.path.expanduser(rest))
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            value = path.read_text(encoding="utf-8").rstrip("\n")
        except OSError as exc:
            raise SecretError(f"secret {reference} cannot be read: {exc.strerror}",
                              hint="check the file exists and is readable") from None
    if value:
        with _seen_lock:
            _seen.add(value)
    return Secret(reference, value)


def resolve_inputs(value: Any, *, base_dir: Path | None = None) -> Any:
    """Replace every ``{"$secret": ref}`` inside ``value`` with a resolved :class:`Secret`,
    and every ``{"$publish": NAME}`` with the path the step writes it to."""
    if isinstance(value, Mapping):
        if is_ref_value(value):
            return resolve(value[SECRET_KEY], base_dir=base_dir)
        if published.is_publish_value(value):
            return published.publish_paths(value)
        return {k: resolve_inputs(v, base_dir=base_dir) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [resolve_inputs(v, base_dir=base_dir) for v in value]
    return value


def reveal_all(value: Any) -> Any:
    """Every :class:`Secret` inside ``value`` replaced by its value, for the one place a
    driver hands it over (a 0600 file, a request body); never for logs or outputs."""
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, Mapping):
        return {k: reveal_all(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [reveal_all(v) for v in value]
    return value


def remember(*values: str) -> None:
    """Mask ``values`` too: parts of a resolved secret a driver found inside it (a
    kubeconfig's token or client key), which a message could show on their own."""
    with _seen_lock:
        _seen.update(v for v in values if v)


def known_values() -> frozenset[str]:
    """Every secret value resolved in this process, for redaction."""
    with _seen_lock:
        return frozenset(_seen)


#: a secret at least this long is masked wherever it appears inside a text
REDACT_SUBSTRING_LENGTH = 8
#: a shorter one only where it stands as a whole word; shorter still, never (masking every
#: "a" or "1" would garble every message and hide nothing worth hiding)
REDACT_WORD_LENGTH = 3


def redact(text: str) -> str:
    """Mask every known secret value inside ``text``."""
    for value in known_values():
        if len(value) < REDACT_WORD_LENGTH or value not in text:
            continue
        if len(value) >= REDACT_SUBSTRING_LENGTH:
            text = text.replace(value, MASK)
        else:
            text = re.sub(rf"(?<![\w-]){re.escape(value)}(?![\w-])", MASK, text)
    return text
