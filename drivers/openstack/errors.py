"""openstacksdk and keystoneauth exceptions translated into orch's classified errors.

Transient (the executor retries): connection refused, timeouts, an endpoint whose version
document cannot be fetched (the service is down), HTTP 409 (Ironic: node locked), 429, 5xx.
Permanent: 400, 401, 403, 404 and other 4xx, TLS failures, a resource that went to an error
state. Messages name the endpoint and the operation and pass through :func:`scrub`.
"""

from __future__ import annotations

from collections.abc import Iterable

from orchestrator.errors import DriverError, PermanentError, TransientError
from orchestrator.secrets import MASK, redact

TRANSIENT_STATUSES = frozenset({409, 429})
HINTS = {
    401: "the cloud refused the credentials: check the auth settings and secret references",
    403: "the user lacks the role this operation needs",
    404: "the named resource (or API) does not exist on this cloud",
}


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    for value in secrets:
        if value:
            text = text.replace(value, MASK)
    return redact(text)


def translate(exc: BaseException, *, endpoint: str, operation: str,
              secrets: Iterable[str] = ()) -> DriverError:
    """The orch error for an SDK exception raised while doing ``operation``."""
    from keystoneauth1 import exceptions as ks
    from openstack import exceptions as sdk

    secrets = tuple(secrets)
    if isinstance(exc, DriverError):
        return exc
    if isinstance(exc, ks.SSLError):
        return PermanentError("TLS handshake or certificate verification failed",
                              endpoint=endpoint, operation=operation,
                              hint="set ca_bundle, or verify_tls: false for a lab cloud")
    if isinstance(exc, ks.ConnectTimeout):
        return TransientError("timed out connecting", endpoint=endpoint, operation=operation)
    if isinstance(exc, ks.ConnectFailure):
        text = "connection refused" if "refused" in str(exc).lower() else "cannot connect"
        return TransientError(text, endpoint=endpoint, operation=operation)
    if isinstance(exc, ks.RetriableConnectionFailure | ks.ConnectionError):
        return TransientError(scrub(f"connection failed: {exc}", secrets), endpoint=endpoint,
                              operation=operation)
    if isinstance(exc, ks.DiscoveryFailure):
        return TransientError("the service's version document cannot be fetched (down or "
                              "wrong URL)", endpoint=endpoint, operation=operation)
    if isinstance(exc, ks.Unauthorized):
        return PermanentError(scrub(f"authentication failed: {exc}", secrets),
                              endpoint=endpoint, operation=operation, hint=HINTS[401])
    if isinstance(exc, sdk.HttpException):
        status = int(exc.status_code or 0)
        detail = exc.details or exc.message or str(exc)
        text = scrub(f"HTTP {status}: {detail}", secrets)
        if status == 0 or status >= 500 or status in TRANSIENT_STATUSES:
            return TransientError(text, endpoint=endpoint, operation=operation)
        return PermanentError(text, endpoint=endpoint, operation=operation,
                              hint=HINTS.get(status, ""))
    if isinstance(exc, sdk.ResourceFailure):
        return PermanentError(scrub(str(exc), secrets), endpoint=endpoint, operation=operation)
    if isinstance(exc, ks.ClientException | sdk.SDKException):
        return PermanentError(scrub(f"{type(exc).__name__}: {exc}", secrets), endpoint=endpoint,
                              operation=operation)
    return PermanentError(scrub(f"{type(exc).__name__}: {exc}", secrets), endpoint=endpoint,
                          operation=operation)
