"""A conformance kit for drivers: what any driver must do, checked against a real target.

A driver author describes one object the driver can manage — a :class:`Case`: a step that
creates it, a step that must fail, and the secret values the driver is given — and runs the
checks against a driver instance talking to a real (test) service::

    import pytest
    from orchestrator.testing import CHECKS, Case

    @pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
    def test_my_driver_conforms(check, my_driver, my_case):
        check(my_driver, my_case)

Each check raises :class:`ConformanceError` (an ``AssertionError``) saying what the contract
asks and what the driver did. The checks, after Terraform's provider acceptance tests and
``ansible-test``:

* :func:`check_declaration` — name, step kinds, settings type, required modules declared;
* :func:`check_idempotent_apply` — applying the same create twice succeeds both times, with
  the same outputs, and changes nothing the second time (as far as ``read`` can tell);
* :func:`check_read_after_apply` — for a driver that can read: after apply the object exists
  and shows no drift; ``read`` changes nothing (two reads agree);
* :func:`check_delete_missing` — deleting succeeds, deleting again (the object is gone)
  succeeds, and a read then says it does not exist;
* :func:`check_errors_typed_and_located` — a failing step raises ``TransientError`` or
  ``PermanentError`` (never a vendor exception), naming the endpoint and the operation;
* :func:`check_no_secret_in_outputs` — no secret value given in the inputs appears in outputs,
  in error messages or in what ``read`` returns.

:func:`run_all` runs every check and returns the failures, for use outside pytest.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from orchestrator import log as orch_log
from orchestrator.driver import ApplyRequest, Driver
from orchestrator.errors import DriverError, PermanentError, TransientError
from orchestrator.plan import Action
from orchestrator.secrets import Secret, resolve_inputs
from orchestrator.step import Step


class ConformanceError(AssertionError):
    """A driver broke its contract: what the contract asks, and what the driver did."""


@dataclass(frozen=True)
class Case:
    """One object for the checks to create, read and delete."""

    #: a step creating the object; its inputs may hold ``{"$secret": REF}`` references
    step: Step
    #: a step the driver must refuse with a typed error (e.g. an unreachable endpoint)
    failing: Step | None = None
    #: secret values the driver is given, which must never come back
    secrets: Sequence[str] = ()
    #: seconds one apply may take
    timeout: float = 120.0
    #: whether a repeated apply returns the same outputs (a command run that reports
    #: "skipped" the second time does not; read must still show no drift)
    stable_outputs: bool = True
    #: whether ``read`` can tell that the object is gone (a command leaves nothing a read
    #: can find: the SSH driver reads every recorded command as present)
    observable_delete: bool = True
    #: where ``file:`` secret references are relative to
    base_dir: Path | None = None
    #: called after the checks that create the object, to remove what is left
    cleanup: Callable[[], None] | None = field(default=None, compare=False)


def _request(case: Case, step: Step, action: Action,
             prior: Mapping[str, Any] | None = None) -> ApplyRequest:
    return ApplyRequest(step, action, resolve_inputs(step.inputs, base_dir=case.base_dir),
                        dict(prior or {}), {}, time.monotonic() + case.timeout,
                        orch_log.get_logger("orch.conformance").bind(step=step.id),
                        cancelled=threading.Event())


def _apply(driver: Driver, case: Case, step: Step, action: Action,
           prior: Mapping[str, Any] | None = None) -> dict[str, Any]:
    try:
        result = driver.apply(_request(case, step, action, prior))
    except DriverError as exc:
        raise ConformanceError(f"{action.value} of {step.id} failed: {exc.render()}") from exc
    outputs = dict(result.outputs)
    try:
        json.dumps(outputs, default=_no_default)
    except TypeError as exc:
        raise ConformanceError(f"{action.value} of {step.id}: outputs are not plain JSON "
                               f"({exc}); they are recorded in state") from None
    return outputs


def _no_default(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON")


def _fail(what: str, found: str) -> ConformanceError:
    return ConformanceError(f"{what}; found: {found}")


# -- the checks -------------------------------------------------------------------------------
def check_declaration(driver: Driver, case: Case) -> None:
    cls = type(driver)
    if not isinstance(getattr(cls, "name", None), str) or not cls.name:
        raise _fail("a driver declares its entry-point name as `name`", repr(cls.__dict__))
    if case.step.kind not in cls.step_kinds:
        raise _fail(f"step_kinds lists every kind the driver carries ({case.step.kind})",
                    ", ".join(cls.step_kinds) or "none")
    if not all(isinstance(v, str) and v for v in cls.step_kinds.values()):
        raise _fail("each step kind has a one-line description", repr(cls.step_kinds))
    if not (isinstance(cls.settings_type, type)
            and issubclass(cls.settings_type, msgspec.Struct)):
        raise _fail("settings_type is a msgspec.Struct", repr(cls.settings_type))
    try:
        cls.settings_type()
    except (TypeError, msgspec.ValidationError) as exc:
        raise _fail("settings have defaults (a profile may give none)", str(exc)) from None
    if not isinstance(cls.requires, tuple):
        raise _fail("requires is a tuple of module names", repr(cls.requires))
    if case.step.driver != cls.name:
        raise _fail(f"the case's step is for driver {cls.name!r}", case.step.driver)


def check_idempotent_apply(driver: Driver, case: Case) -> None:
    first = _apply(driver, case, case.step, Action.CREATE)
    second = _apply(driver, case, case.step, Action.CREATE, first)
    if case.stable_outputs and _stable(first) != _stable(second):
        raise _fail("applying the same step twice gives the same outputs",
                    f"{first!r} then {second!r}")
    if driver.can_read():
        observed = driver.read(case.step, second)
        if not observed.exists or observed.drift:
            raise _fail("after a repeated apply the object exists without drift",
                        f"exists={observed.exists} drift={dict(observed.drift)}")


def _stable(outputs: Mapping[str, Any]) -> Mapping[str, Any]:
    """Outputs without the keys that say what one call did (``changed``, ``before``...)."""
    volatile = {"changed", "before", "created", "reset_type", "action", "sent", "elapsed",
                "took", "attempts", "duration"}
    return {k: v for k, v in outputs.items() if k not in volatile}


def check_read_after_apply(driver: Driver, case: Case) -> None:
    if not driver.can_read():
        return
    outputs = _apply(driver, case, case.step, Action.CREATE)
    first = driver.read(case.step, outputs)
    second = driver.read(case.step, outputs)
    if not first.exists:
        raise _fail("read after apply finds the object", "exists=False")
    if first.drift:
        raise _fail("read right after apply shows no drift", repr(dict(first.drift)))
    if (first.exists, dict(first.drift)) != (second.exists, dict(second.drift)):
        raise _fail("read changes nothing: two reads agree", f"{first!r} then {second!r}")


def check_delete_missing(driver: Driver, case: Case) -> None:
    outputs = _apply(driver, case, case.step, Action.CREATE)
    _apply(driver, case, case.step, Action.DELETE, outputs)
    _apply(driver, case, case.step, Action.DELETE, outputs)  # already gone: still succeeds
    if driver.can_read() and case.observable_delete:
        observed = driver.read(case.step, outputs)
        if observed.exists:
            raise _fail("after delete, read says the object does not exist", "exists=True")


def check_errors_typed_and_located(driver: Driver, case: Case) -> None:
    if case.failing is None:
        raise ConformanceError("the case gives no failing step: errors cannot be checked")
    try:
        driver.apply(_request(case, case.failing, Action.CREATE))
    except (TransientError, PermanentError) as exc:
        fields = exc.fields
        if not fields.get("endpoint") or not fields.get("operation"):
            raise _fail("an error names its endpoint and operation",
                        f"endpoint={fields.get('endpoint')!r} "
                        f"operation={fields.get('operation')!r}") from None
        if str(fields["endpoint"]) not in str(exc):
            raise _fail("the message shows the endpoint", str(exc)) from None
        return
    except DriverError as exc:
        raise _fail("a failure is TransientError or PermanentError",
                    type(exc).__name__) from None
    except Exception as exc:
        raise _fail("vendor exceptions are translated at the boundary",
                    f"{type(exc).__module__}.{type(exc).__name__}: {exc}") from None
    raise _fail(f"the failing step {case.failing.id} fails", "it succeeded")


def check_no_secret_in_outputs(driver: Driver, case: Case) -> None:
    secrets = [s for s in case.secrets if s]
    if not secrets:
        secrets = [s.reveal() for s in _secrets_in(resolve_inputs(case.step.inputs,
                                                                  base_dir=case.base_dir))]
    if not secrets:
        raise ConformanceError("the case gives the driver no secret: nothing to check")
    seen: list[str] = []
    outputs = _apply(driver, case, case.step, Action.CREATE)
    seen.append(json.dumps(outputs, default=str))
    if driver.can_read():
        seen.append(repr(driver.read(case.step, outputs)))
    if case.failing is not None:
        try:
            driver.apply(_request(case, case.failing, Action.CREATE))
        except Exception as exc:
            seen.append(str(exc) + repr(getattr(exc, "fields", "")))
    for text in seen:
        for s in secrets:
            if s in text:
                raise _fail("no secret value comes back in outputs, reads or errors",
                            text.replace(s, "<THE SECRET>")[:300])


def _secrets_in(value: Any) -> list[Secret]:
    if isinstance(value, Secret):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _secrets_in(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _secrets_in(v)]
    return []


CHECKS: tuple[Callable[[Driver, Case], None], ...] = (
    check_declaration, check_idempotent_apply, check_read_after_apply, check_delete_missing,
    check_errors_typed_and_located, check_no_secret_in_outputs)


def run_all(driver: Driver, case: Case) -> list[str]:
    """Every check; the failures as ``check_name: message`` (empty: the driver conforms)."""
    failures = []
    try:
        for check in CHECKS:
            try:
                check(driver, case)
            except ConformanceError as exc:
                failures.append(f"{check.__name__}: {exc}")
    finally:
        if case.cleanup is not None:
            case.cleanup()
    return failures
