"""kubernetes-client and urllib3 exceptions translated into orch's classified errors.

Transient (the executor retries): connection refused or reset, timeouts, 409 Conflict,
429 Too Many Requests (with its Retry-After), 5xx. Permanent: 400, 401, 403, 404, 422 and
other 4xx, TLS failures, a kind the API server does not serve, a broken kubeconfig -- and
the HTTP 500 a real kube-apiserver (1.20 at least) answers to a server-side apply whose
object does not fit the resource's schema ("failed to create typed patch object ...:
.spec.running: expected boolean"), which no retry can cure: the same object sent by POST
gets 422. Schema errors name the field paths the server reported. Every
message names the API server URL and the operation, is built from the Status object the
server sent (not from the client's repr, which carries headers), and passes through
:func:`scrub` so that no bearer token or resolved secret can leak.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from orchestrator.errors import DriverError, PermanentError, TransientError
from orchestrator.secrets import MASK, redact

TRANSIENT_STATUSES = frozenset({409, 429})
HINTS = {
    401: "the kubeconfig's credentials were refused: refresh the token or certificate",
    403: "the kubeconfig's user lacks RBAC permission for this verb and resource",
    422: "the object is invalid: check the step's inputs against the resource's schema",
}
#: a server-side apply the server could not type against the schema: HTTP 500, yet permanent
TYPED_PATCH = re.compile(r"failed to create typed patch object|field not declared in schema")
#: a field path as the structured-merge-diff library prints it: .spec.template.spec[0].x
FIELD_PATH = re.compile(r"((?:\.[A-Za-z0-9_\-]+|\[[^\]]*\])+): ")


def schema_fields(body: Any, message: str) -> list[str]:
    """Field paths an Invalid (422) Status lists in its causes, or a typed-patch error names."""
    fields: list[str] = []
    try:
        status = json.loads(body) if isinstance(body, str | bytes) else body
        causes = (status.get("details") or {}).get("causes") or ()
        fields = [str(c["field"]) for c in causes if isinstance(c, dict) and c.get("field")]
    except (ValueError, AttributeError):
        pass
    if not fields and TYPED_PATCH.search(message):
        fields = FIELD_PATH.findall(message.split("typed patch object", 1)[-1])
    return list(dict.fromkeys(fields))


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with the given secrets (tokens) and every secret orch resolved masked."""
    for value in secrets:
        if value:
            text = text.replace(value, MASK)
    return redact(text)


def status_message(body: Any) -> tuple[str, str]:
    """(reason, message) from a Kubernetes Status body, or ("", raw text) when it is not one."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        status = json.loads(body) if isinstance(body, str) else body
    except ValueError:
        return "", str(body or "")[:300]
    if isinstance(status, dict) and status.get("kind") == "Status":
        return str(status.get("reason") or ""), str(status.get("message") or "")
    return "", str(body or "")[:300]


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _transport(exc: BaseException) -> tuple[str, bool] | None:
    """(short text, transient?) for urllib3 transport errors, possibly wrapped in MaxRetryError."""
    import urllib3.exceptions as ux

    cur: BaseException | None = exc
    if isinstance(cur, ux.MaxRetryError) and cur.reason is not None:
        cur = cur.reason
    if isinstance(cur, ux.SSLError):
        return "TLS handshake or certificate verification failed", False
    if isinstance(cur, ux.NewConnectionError):  # before ConnectTimeoutError, its base class
        text = str(cur)
        return ("connection refused" if "refused" in text else "cannot connect"), True
    if isinstance(cur, ux.ConnectTimeoutError):
        return "timed out connecting", True
    if isinstance(cur, ux.ReadTimeoutError | TimeoutError):
        return "timed out waiting for an answer", True
    if isinstance(cur, ux.ProtocolError | ux.HTTPError | ConnectionError):
        return "connection closed by the API server", True
    return None


def translate(exc: BaseException, *, endpoint: str, operation: str,
              secrets: Iterable[str] = ()) -> DriverError:
    """The orch error for an exception raised while doing ``operation`` against ``endpoint``."""
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.dynamic.exceptions import ResourceNotFoundError

    secrets = tuple(secrets)
    if isinstance(exc, DriverError):
        return exc
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        reason, message = status_message(exc.body)
        text = scrub(f"HTTP {status} {reason or exc.reason or ''}: {message}".replace("  ", " "),
                     secrets)
        schema_error = status == 422 or (status == 500 and bool(TYPED_PATCH.search(message)))
        if not schema_error and (status == 0 or status >= 500 or status in TRANSIENT_STATUSES):
            return TransientError(text, endpoint=endpoint, operation=operation,
                                  retry_after=_retry_after(exc.headers))
        hint = HINTS.get(422 if schema_error else status, "")
        fields = schema_fields(exc.body, message) if schema_error else []
        if fields:
            hint = f"{hint} (field {', '.join(fields)})"
        return PermanentError(text, endpoint=endpoint, operation=operation, hint=hint)
    if isinstance(exc, ResourceNotFoundError):
        return PermanentError(scrub(f"the API server does not serve this kind ({exc})", secrets),
                              endpoint=endpoint, operation=operation,
                              hint="install the operator or CRD first, and wait for it with "
                                   "kubernetes.wait {kind: CustomResourceDefinition, "
                                   "condition: Established}")
    if isinstance(exc, ConfigException):
        return PermanentError(scrub(f"kubeconfig: {exc}", secrets), endpoint=endpoint,
                              operation=operation,
                              hint="check the driver's kubeconfig and context settings")
    transport = _transport(exc)
    if transport is not None:
        text, transient = transport
        cls = TransientError if transient else PermanentError
        return cls(text, endpoint=endpoint, operation=operation)
    return PermanentError(scrub(f"{type(exc).__name__}: {exc}", secrets), endpoint=endpoint,
                          operation=operation)
