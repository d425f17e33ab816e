"""orch's errors: one root, one subclass per phase, messages built from named fields.

A user sees what failed, where (file and line for a profile), and what to do next. Whether a
driver failure is worth retrying is carried by the type: :class:`TransientError` is retried
by the executor's policy, :class:`PermanentError` never is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class OrchError(Exception):
    """Root of every error orch raises on purpose; the CLI prints these without a traceback."""

    template = "{message}"
    hint: str = ""

    def __init__(self, message: str = "", *, hint: str = "", **fields: Any) -> None:
        self.fields = dict(fields, message=message)
        self.hint = hint or self.hint
        super().__init__(self.template.format(**self.fields))

    def render(self) -> str:
        text = str(self)
        return f"{text}\n  hint: {self.hint}" if self.hint else text


@dataclass(frozen=True)
class Location:
    """A place in a source file: 1-based line and column."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if not self.line:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"


class SourceError(OrchError):
    """A profile, inventory or plan file that is unreadable or invalid.

    Carries the location, what was expected and what was found.
    """

    template = "{location}: {message}"

    def __init__(
        self,
        message: str,
        *,
        location: Location,
        expected: str = "",
        found: str = "",
        hint: str = "",
    ) -> None:
        self.location = location
        self.expected = expected
        self.found = found
        super().__init__(message, location=location, hint=hint)

    def render(self) -> str:
        lines = [str(self)]
        if self.expected:
            lines.append(f"  expected: {self.expected}")
        if self.found:
            lines.append(f"  found:    {self.found}")
        if self.hint:
            lines.append(f"  hint:     {self.hint}")
        return "\n".join(lines)


class SourceErrors(OrchError):
    """Several source errors found in one pass, reported together."""

    def __init__(self, errors: Sequence[SourceError]) -> None:
        self.errors = list(errors)
        super().__init__(f"{len(self.errors)} error(s)")

    def render(self) -> str:
        return "\n".join(e.render() for e in self.errors)


class PlanError(OrchError):
    """The desired steps cannot be turned into a plan (unknown type, cycle, bad selection)."""


class CycleError(PlanError):
    template = "dependency cycle: {cycle_text}"
    hint = "break the cycle by removing one of these `after:` entries"

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = list(cycle)
        #: where the first component of the cycle is written (set by the planner)
        self.location: Location | None = None
        super().__init__(cycle_text=" -> ".join([*self.cycle, self.cycle[0]]))

    def render(self) -> str:
        text = super().render()
        return f"{self.location}: {text}" if self.location else text


class StalePlanError(OrchError):
    template = "saved plan is stale: {message}"
    hint = "run `orch plan` again and review the new plan"


class StateError(OrchError):
    """The state store cannot be opened, read or written."""


class LockHeldError(StateError):
    template = (
        "state is locked by {holder} (since {since}); another run is in progress"
    )
    hint = "wait for it, or pass --lock-timeout SECONDS to wait for the lock"


class LeaseLostError(StateError):
    template = "the run lost its lease on the state: {message}"
    hint = ("no step was started after the loss; the journal says what was done. Check no "
            "other run is active (`orch state runs`), then run `orch apply` again")


class SecretError(OrchError):
    """A secret reference that cannot be resolved. Never carries the secret's value."""


class DriverLoadError(OrchError):
    template = "driver {driver!r} cannot be loaded: {message}"


class DriverError(OrchError):
    """A driver operation failed. Vendor exceptions are translated into these at the boundary.

    ``endpoint`` and ``operation`` say where and what; no field ever holds a secret.
    """

    template = "{operation} on {endpoint}: {message}"
    retryable = False

    def __init__(self, message: str, *, endpoint: str = "-", operation: str = "-",
                 hint: str = "") -> None:
        self.endpoint = endpoint
        self.operation = operation
        super().__init__(message, endpoint=endpoint, operation=operation, hint=hint)


class TransientError(DriverError):
    """Worth retrying: connection refused, timeout, 5xx, 409 conflict, a resource still busy."""

    retryable = True
    #: set when a retry policy gave up on this error: nobody retries it again
    exhausted = False

    def __init__(self, message: str, *, endpoint: str = "-", operation: str = "-",
                 retry_after: float | None = None, hint: str = "") -> None:
        self.retry_after = retry_after
        super().__init__(message, endpoint=endpoint, operation=operation, hint=hint)


class PermanentError(DriverError):
    """Not worth retrying: bad credentials, an unsupported value, a missing resource."""


class NotSupportedError(PermanentError):
    """The driver (or the endpoint behind it) does not implement this operation."""


class StepTimeoutError(PermanentError):
    """A step ran past its deadline."""


class ApplyError(OrchError):
    """An apply could not start or finish (external step reached, steps failed)."""
