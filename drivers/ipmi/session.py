"""IPMI 2.0 lanplus sessions with cipher-suite negotiation (pyghmi, imported lazily).

BMCs differ in which suites they complete: virtualbmc (a pyghmi server) accepts the offer of
suite 17 (SHA-256) and then answers RAKP2 with a SHA-1 HMAC, which makes pyghmi's client
fail inside ``_got_rakp2`` with ``struct.error``. So the suites are tried strongest first,
falling back only on such a protocol mismatch -- never after an authentication failure or a
timeout, which a weaker suite would not cure. The suite a session was made with is read
from it afterwards, since pyghmi itself drops to SHA-1 when a BMC refuses suite 17 openly.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from drivers.ipmi.errors import from_exception
from drivers.ipmi.target import IpmiTarget
from orchestrator.errors import NotSupportedError, PermanentError

# cipher suite -> pyghmi's "attemptedhash" (its name for the RAKP/integrity hash it offers)
SUITE_HASH = {17: 256, 3: 1}
HASH_SUITE = {v: k for k, v in SUITE_HASH.items()}
# What a peer that does not speak the offered suite makes pyghmi raise.
MISMATCH = (struct.error, IndexError)


@dataclass
class OpenSession:
    session: Any
    suite: int
    #: suite -> why it was not used, for the outputs and the log
    rejected: dict[int, str]


def _session_class(suite: int) -> type:
    from pyghmi.ipmi.private import session as pyghmi_session

    wanted_hash = SUITE_HASH[suite]

    class SuiteSession(pyghmi_session.Session):  # type: ignore[misc]
        def _open_rmcpplus_request(self) -> Any:
            # pyghmi offers SHA-256 first unless told otherwise; its own fallback on an
            # explicit refusal still applies.
            if wanted_hash == 1:
                self.attemptedhash = 1
            return super()._open_rmcpplus_request()

    return SuiteSession


def _forget(target: IpmiTarget) -> None:
    """Drop a half-made session pyghmi keeps in its class-wide table after a failed login."""
    from pyghmi.ipmi.private import session as pyghmi_session

    key = (target.host, target.username, target.password, target.port, None)
    stale = pyghmi_session.Session.initting_sessions.pop(key, None)
    if stale is not None:
        with contextlib.suppress(Exception):  # it is being thrown away anyway
            stale._mark_broken("abandoned")


def open_session(target: IpmiTarget, suites: Sequence[int], operation: str) -> OpenSession:
    """A logged-in session using the strongest suite of ``suites`` the BMC completes."""
    unknown = [s for s in suites if s not in SUITE_HASH]
    if unknown or not suites:
        raise PermanentError(f"cipher suites {unknown or suites} not supported; use of "
                             f"{sorted(SUITE_HASH)}", endpoint=target.endpoint,
                             operation=operation)
    rejected: dict[int, str] = {}
    for suite in suites:
        try:
            session = _session_class(suite)(
                bmc=target.host, userid=target.username, password=target.password,
                port=target.port, keepalive=False)
        except MISMATCH as exc:
            _forget(target)
            rejected[suite] = f"protocol mismatch ({type(exc).__name__})"
            continue
        except Exception as exc:
            _forget(target)
            raise from_exception(exc, endpoint=target.endpoint, operation=operation,
                                 password=target.password) from None
        used = HASH_SUITE.get(getattr(session, "integrityalgo", 0), suite)
        if used != suite:
            rejected[suite] = "refused by the BMC"
        return OpenSession(session, used, rejected)
    raise NotSupportedError(f"no cipher suite of {list(suites)} completes a session: "
                            + "; ".join(f"{s}: {why}" for s, why in rejected.items()),
                            endpoint=target.endpoint, operation=operation)


def close_session(opened: OpenSession, target: IpmiTarget) -> None:
    with contextlib.suppress(Exception):  # logging out of a dead session changes nothing
        opened.session.logout()
    # pyghmi would hand the logged-out object to the next login with the same credentials.
    _forget(target)
