"""A playbook's interface: the ``vars:`` a profile passes, checked at plan time.

Every playbook a profile calls has a sidecar ``<stem>.argument_specs.yml`` beside it, in
Ansible's role ``argument_specs`` format::

    argument_specs:
      main:
        short_description: ...
        options:
          k8s_cni: {type: str, choices: [calico, cilium, flannel, bridge, none],
                    default: calico, description: ...}

The playbook's first task validates its variables with
``ansible.builtin.validate_argument_spec`` reading that file, so Ansible enforces it when the
playbook runs; this module makes ``orch validate``/``plan`` refuse the same mistakes earlier,
at the profile's line: a key the playbook does not declare (with a did-you-mean), a required
key missing, a value of the wrong type or outside ``choices``. Type rules follow Ansible's
argument spec checks (``str`` takes scalars, ``int`` takes digit strings, ``bool`` takes
Ansible's boolean words, ``list`` takes a comma string). Values still holding ``${...}``, a
secret reference or another ``{$KEY: ...}`` directive are checked for presence only.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from orchestrator.secrets import is_ref_value

SUFFIX = ".argument_specs.yml"
_BOOL_WORDS = {"yes", "no", "true", "false", "on", "off", "y", "n", "1", "0", "t", "f"}


class SpecProblem(Exception):
    """One refusal: the var it is about (None: the whole mapping), what is wrong, a hint."""

    def __init__(self, key: str | None, message: str, expected: str = "",
                 hint: str = "") -> None:
        super().__init__(message)
        self.key = key
        self.expected = expected
        self.hint = hint


def spec_path(playbook: Path) -> Path:
    return playbook.with_name(playbook.name.rsplit(".", 1)[0] + SUFFIX)


def load_options(playbook: Path) -> dict[str, dict[str, Any]] | None:
    """The playbook's declared options, or None when it has no sidecar."""
    path = spec_path(playbook)
    if not path.is_file():
        return None
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    options = (((doc.get("argument_specs") or {}).get("main") or {}).get("options") or {})
    return {str(k): dict(v or {}) for k, v in options.items()}


def check(options: Mapping[str, Mapping[str, Any]], given: Mapping[str, Any],
          playbook: str) -> None:
    """Raise :class:`SpecProblem` for the first var that does not fit ``options``."""
    known = sorted(options)
    for key in given:
        if key not in options:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else \
                f"{Path(playbook).stem}.argument_specs.yml declares the playbook's variables"
            raise SpecProblem(key, f"playbook {playbook} does not declare variable {key!r}",
                              expected=", ".join(known) or "no variables", hint=hint)
    for key, opt in options.items():
        if opt.get("required") and key not in given:
            raise SpecProblem(None, f"playbook {playbook} needs variable {key!r}",
                              expected=f"{key}: {opt.get('description', '')}".strip(),
                              hint="add it under `vars:`")
    for key, value in given.items():
        _check_value(key, options[key], value, playbook)


def _check_value(key: str, opt: Mapping[str, Any], value: Any, playbook: str) -> None:
    if _deferred(value):
        return
    kind = str(opt.get("type", "str"))
    if not _fits(kind, value):
        raise SpecProblem(key, f"variable {key!r} of {playbook} must be {kind}, "
                               f"not {type(value).__name__}", expected=kind)
    choices = opt.get("choices")
    if choices is not None:
        values = value if kind == "list" and isinstance(value, list) else [value]
        for v in values:
            if v not in choices and str(v) not in [str(c) for c in choices]:
                raise SpecProblem(key, f"variable {key!r} of {playbook} is {v!r}",
                                  expected="one of: " + ", ".join(str(c) for c in choices))
    elements = opt.get("elements")
    if kind == "list" and elements and isinstance(value, list):
        for v in value:
            if not _deferred(v) and not _fits(str(elements), v):
                raise SpecProblem(key, f"variable {key!r} of {playbook}: element {v!r} "
                                       f"must be {elements}", expected=f"list of {elements}")


def _deferred(value: Any) -> bool:
    """A value known only when the step runs: a secret reference, a ``${...}`` left for
    later, or another ``{$KEY: ...}`` directive (e.g. ``{$publish: NAME}``, a path the
    engine fills in)."""
    if is_ref_value(value) or (isinstance(value, str) and "${" in value):
        return True
    return isinstance(value, Mapping) and len(value) == 1 and str(next(iter(value))) \
        .startswith("$")


def _fits(kind: str, value: Any) -> bool:
    scalar = isinstance(value, (str, int, float)) and not isinstance(value, bool)
    if kind in ("str", "path"):
        return scalar
    if kind == "int":
        return (isinstance(value, int) and not isinstance(value, bool)) or \
            (isinstance(value, str) and value.strip().lstrip("-").isdigit())
    if kind == "float":
        return scalar and _is_float(value)
    if kind == "bool":
        return isinstance(value, bool) or str(value).lower() in _BOOL_WORDS
    if kind == "list":
        return isinstance(value, (list, str))
    if kind == "dict":
        return isinstance(value, Mapping)
    return True  # raw and anything Ansible adds later


def _is_float(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
