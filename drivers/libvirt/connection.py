"""Connections to libvirt, and the boundary where libvirt errors become orch errors.

``libvirt`` is imported inside functions only, so the driver class loads (to list it or
validate settings) without libvirt-python installed.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from orchestrator.errors import DriverError, PermanentError, TransientError

T = TypeVar("T")

# libvirt error codes (virErrorNumber) worth retrying: the daemon, the transport or a
# resource is unavailable for now.
_TRANSIENT_CODES = {
    "VIR_ERR_NO_CONNECT", "VIR_ERR_RPC", "VIR_ERR_SYSTEM_ERROR", "VIR_ERR_OPERATION_TIMEOUT",
    "VIR_ERR_AGENT_UNRESPONSIVE", "VIR_ERR_AUTH_UNAVAILABLE", "VIR_ERR_NO_SUPPORT_YET",
}
# Error domains (virErrorDomain) that are about the connection itself.
_TRANSIENT_DOMAINS = {"VIR_FROM_RPC", "VIR_FROM_REMOTE", "VIR_FROM_SSH"}
# Internal errors that only say "not now": a storage pool refreshed while another volume
# of it is being built or uploaded (by this run, another one, or a Redfish emulator
# downloading virtual media), an object another job holds.
_BUSY_MESSAGES = ("has asynchronous jobs running", "cannot acquire state change lock")
_HINTS = {
    "VIR_ERR_XML_ERROR": "the driver produced XML libvirt rejects; check the step's inputs",
    "VIR_ERR_XML_DETAIL": "the driver produced XML libvirt rejects; check the step's inputs",
    "VIR_ERR_NO_CONNECT": "is libvirtd running? try `virsh -c URI version`",
}


def _codes(names: set[str]) -> set[int]:
    import libvirt

    return {getattr(libvirt, n) for n in names if hasattr(libvirt, n)}


def translate(exc: Exception, *, endpoint: str, operation: str) -> DriverError:
    """The orch error for a libvirt exception: transient for connection trouble and
    timeouts, permanent for everything else (invalid XML, unsupported configuration)."""
    import libvirt

    if not isinstance(exc, libvirt.libvirtError):
        return PermanentError(f"{type(exc).__name__}: {exc}", endpoint=endpoint,
                              operation=operation)
    code, domain = exc.get_error_code(), exc.get_error_domain()
    message = (exc.get_error_message() or str(exc)).strip()
    name = next((n for n in dir(libvirt) if n.startswith("VIR_ERR_")
                 and getattr(libvirt, n) == code), str(code))
    hint = _HINTS.get(name, "")
    busy = any(m in message for m in _BUSY_MESSAGES)
    if code in _codes(_TRANSIENT_CODES) or domain in _codes(_TRANSIENT_DOMAINS) or busy:
        return TransientError(message, endpoint=endpoint, operation=operation, hint=hint)
    return PermanentError(f"{message} ({name})", endpoint=endpoint, operation=operation,
                          hint=hint)


@contextmanager
def boundary(endpoint: str, operation: str) -> Iterator[None]:
    """Translate any libvirt error raised inside into a :class:`DriverError`."""
    import libvirt

    try:
        yield
    except libvirt.libvirtError as exc:
        raise translate(exc, endpoint=endpoint, operation=operation) from None


def is_busy(exc: Exception) -> bool:
    """True when libvirt refused because another job holds the object for now."""
    message = exc.get_error_message() if hasattr(exc, "get_error_message") else str(exc)
    return any(m in (message or "") for m in _BUSY_MESSAGES)


def is_missing(exc: Exception) -> bool:
    """True when a lookup failed because the object does not exist."""
    import libvirt

    if not isinstance(exc, libvirt.libvirtError):
        return False
    return exc.get_error_code() in _codes({"VIR_ERR_NO_DOMAIN", "VIR_ERR_NO_NETWORK",
                                           "VIR_ERR_NO_STORAGE_POOL", "VIR_ERR_NO_STORAGE_VOL"})


def lookup(fn: Callable[[str], T], name: str) -> T | None:
    """``fn(name)`` or None when the object does not exist; other libvirt errors pass."""
    import libvirt

    try:
        return fn(name)
    except libvirt.libvirtError as exc:
        if is_missing(exc):
            return None
        raise


def _quiet(_ctx: object, _err: object) -> None:
    """libvirt prints every error to stderr by default; orch reports them itself."""


class Connections:
    """One open connection per URI, shared by the driver's threads (libvirt connections
    are thread-safe), reopened when the daemon dropped it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, Any] = {}

    def get(self, uri: str) -> Any:
        """An open ``virConnect`` for ``uri``. Raises :class:`TransientError` when the
        daemon cannot be reached, :class:`PermanentError` when libvirt-python is missing."""
        try:
            import libvirt
        except ImportError:
            raise PermanentError("libvirt-python is not installed", endpoint=uri,
                                 operation="connect",
                                 hint="pip install 'orch-stack[libvirt]'") from None
        with self._lock:
            conn = self._open.get(uri)
            if conn is not None:
                try:
                    if conn.isAlive():
                        return conn
                except libvirt.libvirtError:
                    pass
                self._open.pop(uri, None)
            libvirt.registerErrorHandler(_quiet, None)
            try:
                conn = libvirt.open(uri)
            except libvirt.libvirtError as exc:
                err = translate(exc, endpoint=uri, operation="connect")
                raise TransientError(str(err.fields["message"]), endpoint=uri,
                                     operation="connect",
                                     hint="is libvirtd running and the URI right?") from None
            self._open[uri] = conn
            return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._open.values():
                # closing a dead connection must not fail a run
                with contextlib.suppress(Exception):
                    conn.close()
            self._open.clear()
