"""Retry policies: composed tenacity policies, applied to transient errors only.

``stop_after_attempt(n) | stop_before_delay(budget)`` with exponential, jittered waits;
the budget is the smaller of the policy's total seconds and the time left before the step's
deadline, so no attempt starts that the deadline would cut short. A ``Retry-After`` hint on
the error (``TransientError.retry_after``) lengthens the wait, capped by ``max_wait``.

Drivers use the same function around their own calls. When it gives up, the last error is
re-raised marked ``exhausted``, and the executor does not retry an exhausted error again:
retries never stack. The sleep is injectable so tests do not wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import msgspec

from orchestrator.errors import TransientError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    total_seconds: float = 300.0
    initial_wait: float = 1.0
    max_wait: float = 30.0
    jitter: float = 1.0


class RetrySettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The retry budget a driver's settings offer (drivers subclass their settings from it
    and may redeclare a field to change its default)."""

    retry_attempts: Annotated[int, msgspec.Meta(
        ge=1, description="attempts of one operation on transient errors, first included")] = 5
    retry_total_seconds: Annotated[float, msgspec.Meta(
        gt=0, description="seconds one operation may spend retrying transient errors")] = 60.0
    retry_initial_wait: Annotated[float, msgspec.Meta(
        ge=0, description="first wait between attempts (exponential, jittered)")] = 1.0
    retry_max_wait: Annotated[float, msgspec.Meta(
        ge=0, description="longest wait between attempts")] = 10.0

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.retry_attempts, self.retry_total_seconds,
                           self.retry_initial_wait, self.retry_max_wait)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, TransientError) and not getattr(exc, "exhausted", False)


def call_with_retries(fn: Callable[[], T], policy: RetryPolicy, *, deadline: float,
                      sleep: Callable[[float], None] = time.sleep,
                      on_retry: Callable[[int, BaseException, float], None] | None = None) -> T:
    """Call ``fn`` until it succeeds, a non-transient (or exhausted) error is raised, or the
    policy or ``deadline`` (``time.monotonic()`` seconds) says stop; re-raise the last error.

    ``on_retry(attempt, error, wait_seconds)`` is called before each wait.
    """
    try:  # the common case, one attempt that succeeds, needs no retry machinery
        return fn()
    except TransientError as exc:
        if not _retryable(exc) or policy.attempts <= 1:
            exc.exhausted = True
            raise
        first: TransientError = exc
    import tenacity

    budget = max(min(policy.total_seconds, deadline - time.monotonic()), 0.0)
    by_time = getattr(tenacity, "stop_before_delay", tenacity.stop_after_delay)
    backoff = tenacity.wait_exponential_jitter(multiplier=policy.initial_wait,
                                               max=policy.max_wait, exp_base=2,
                                               jitter=policy.jitter)

    def wait(state: tenacity.RetryCallState) -> float:
        seconds = min(backoff(state), policy.max_wait)
        exc = state.outcome.exception() if state.outcome else None
        hinted = getattr(exc, "retry_after", None)
        if hinted:
            seconds = min(max(seconds, float(hinted)), policy.max_wait)
        return max(0.0, seconds)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        if on_retry and state.outcome is not None and state.next_action is not None:
            exc = state.outcome.exception()
            assert exc is not None
            on_retry(state.attempt_number, exc, state.next_action.sleep)

    retrying: Any = tenacity.Retrying(
        retry=tenacity.retry_if_exception(_retryable),
        stop=tenacity.stop_after_attempt(max(policy.attempts, 1)) | by_time(budget),
        wait=wait, sleep=sleep, reraise=True, before_sleep=before_sleep)
    calls = 0

    def replay_first() -> T:
        # tenacity counts the attempt that already failed as its first
        nonlocal calls
        calls += 1
        if calls == 1:
            raise first
        return fn()
    try:
        return retrying(replay_first)  # type: ignore[no-any-return]
    except TransientError as exc:
        exc.exhausted = True
        raise
