"""sushy and requests exceptions translated into orch's classified errors.

Transient (retried): connection refused or reset, timeouts, HTTP 5xx, 409 Conflict.
Permanent: authentication (401/403), TLS verification, 4xx, a value or action the BMC does
not offer. Every message names the endpoint and the operation and passes through
:func:`scrub` so no secret value can leak, whatever sushy or requests put in their text.
"""

from __future__ import annotations

from collections.abc import Iterable

from orchestrator.errors import (
    DriverError,
    NotSupportedError,
    PermanentError,
    TransientError,
)
from orchestrator.secrets import MASK, redact

CONFLICT = 409


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every given secret and every secret orch resolved masked."""
    for value in secrets:
        if value:
            text = text.replace(value, MASK)
    return redact(text)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def _transport(exc: BaseException) -> tuple[str, bool] | None:
    """(short text, transient?) when the chain holds a requests transport error."""
    import requests.exceptions as rex

    for link in _chain(exc):
        if isinstance(link, rex.SSLError):
            return "TLS handshake or certificate verification failed", False
        if isinstance(link, rex.ConnectTimeout):
            return "timed out connecting", True
        if isinstance(link, rex.ReadTimeout | rex.Timeout):
            return "timed out waiting for an answer", True
        if isinstance(link, rex.ConnectionError | rex.ChunkedEncodingError):
            text = str(link)
            if "Connection refused" in text:
                return "connection refused", True
            if "RemoteDisconnected" in text or "reset" in text.lower():
                return "connection closed by the BMC", True
            return "cannot connect", True
    return None


def translate(exc: BaseException, *, endpoint: str, operation: str,
              secrets: Iterable[str] = ()) -> DriverError:
    """The orch error for a sushy/requests exception raised while doing ``operation``."""
    import sushy.exceptions as sx

    secrets = tuple(secrets)

    def clean(text: str) -> str:
        return scrub(text, secrets)

    if isinstance(exc, DriverError):
        return exc
    transport = _transport(exc)
    if transport is not None:
        text, transient = transport
        if transient:
            return TransientError(text, endpoint=endpoint, operation=operation)
        return PermanentError(text, endpoint=endpoint, operation=operation,
                              hint="set bmc.ca_bundle to the BMC's CA, or verify_tls: false "
                                   "for a lab BMC")
    if isinstance(exc, sx.HTTPError):
        status = exc.status_code or 0
        detail = clean(f"HTTP {status}: {exc.detail or exc.code}")
        if isinstance(exc, sx.AccessError):
            return PermanentError(f"authentication failed ({detail})", endpoint=endpoint,
                                  operation=operation,
                                  hint="check bmc.username and the password reference")
        if status >= 500 or status == CONFLICT:
            return TransientError(detail, endpoint=endpoint, operation=operation)
        return PermanentError(detail, endpoint=endpoint, operation=operation)
    if isinstance(exc, sx.MissingActionError | sx.MissingAttributeError):
        return NotSupportedError(clean(str(exc)), endpoint=endpoint, operation=operation)
    if isinstance(exc, sx.SushyError):
        return PermanentError(clean(str(exc)), endpoint=endpoint, operation=operation)
    return PermanentError(clean(f"{type(exc).__name__}: {exc}"), endpoint=endpoint,
                          operation=operation)
