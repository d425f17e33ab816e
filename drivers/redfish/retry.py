"""Bounded retries of transient BMC failures, composed from tenacity policies.

Only :class:`~orchestrator.errors.TransientError` is retried; the last one is re-raised as it
is, so the caller still sees a classified error. The budget is the smaller of the policy's
total seconds and the time left before the step's deadline; no attempt starts once the
next wait would overrun it. ``sleep`` is injectable so that tests do not wait.

(The IPMI driver carries the same dozen lines: drivers do not import each other. This
belongs in the engine, as ``orchestrator/retry.py``, once the engine offers it.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity

from orchestrator.errors import TransientError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int
    total_seconds: float
    initial_wait: float
    max_wait: float


def _stop(policy: RetryPolicy, budget: float) -> tenacity.stop.stop_base:
    by_time = getattr(tenacity, "stop_before_delay", tenacity.stop_after_delay)
    return tenacity.stop_after_attempt(max(policy.attempts, 1)) | by_time(budget)


def _wait(policy: RetryPolicy) -> Callable[[tenacity.RetryCallState], float]:
    backoff = (tenacity.wait_exponential(multiplier=policy.initial_wait, max=policy.max_wait)
               + tenacity.wait_random(0, policy.initial_wait))

    def wait(state: tenacity.RetryCallState) -> float:
        seconds = min(backoff(state), policy.max_wait)
        exc = state.outcome.exception() if state.outcome else None
        hinted = getattr(exc, "retry_after", None)
        if hinted:  # the BMC said when to come back (Retry-After); still capped
            seconds = min(max(seconds, float(hinted)), policy.max_wait)
        return seconds
    return wait


def call_with_retries(
    fn: Callable[[], T], *, policy: RetryPolicy, deadline: float,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[TransientError, int, float], None] | None = None,
) -> T:
    """Call ``fn`` until it succeeds, raises a permanent error, or the budget is spent.

    ``on_retry(error, attempt, wait_seconds)`` is called before each wait.
    """
    budget = max(min(policy.total_seconds, deadline - time.monotonic()), 0.0)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None and state.next_action:
            exc = state.outcome.exception()
            if isinstance(exc, TransientError):
                on_retry(exc, state.attempt_number, state.next_action.sleep)

    retrying = tenacity.Retrying(
        stop=_stop(policy, budget), wait=_wait(policy),
        retry=tenacity.retry_if_exception_type(TransientError),
        sleep=sleep, reraise=True, before_sleep=before_sleep)
    return retrying(fn)
