"""Retry policies: composed tenacity policies, applied to transient errors only.

``stop_after_attempt(n) | stop_after_delay(s)`` with exponential, jittered waits, also
stopped by the step's own deadline. The sleep function is injectable so tests do not wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from orchestrator.errors import TransientError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    total_seconds: float = 300.0
    initial_wait: float = 1.0
    max_wait: float = 30.0
    jitter: float = 1.0


def call_with_retries(fn: Callable[[], T], policy: RetryPolicy, *, deadline: float,
                      sleep: Callable[[float], None] = time.sleep,
                      on_retry: Callable[[int, BaseException, float], None] | None = None) -> T:
    """Call ``fn`` until it succeeds, a non-transient error is raised, or the policy (or the
    step's ``deadline``, in ``time.monotonic()`` seconds) says stop; re-raise the last error."""
    import tenacity
    from tenacity import stop_after_attempt, stop_after_delay, wait_exponential_jitter

    class past_deadline(tenacity.stop.stop_base):  # noqa: N801 - reads like tenacity's
        def __call__(self, state: tenacity.RetryCallState) -> bool:
            return time.monotonic() >= deadline

    backoff = wait_exponential_jitter(multiplier=policy.initial_wait, max=policy.max_wait,
                                      exp_base=2, jitter=policy.jitter)

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        base = backoff(state)
        if isinstance(exc, TransientError) and exc.retry_after is not None:
            base = max(base, exc.retry_after)
        return max(0.0, min(base, deadline - time.monotonic()))

    def before_sleep(state: tenacity.RetryCallState) -> None:
        if on_retry and state.outcome is not None:
            exc = state.outcome.exception()
            assert exc is not None
            on_retry(state.attempt_number, exc,
                     state.next_action.sleep if state.next_action else 0.0)

    retrying: Any = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(TransientError),
        stop=(stop_after_attempt(policy.attempts) | stop_after_delay(policy.total_seconds)
              | past_deadline()),
        wait=wait, sleep=sleep, reraise=True, before_sleep=before_sleep)
    return retrying(fn)  # type: ignore[no-any-return]
