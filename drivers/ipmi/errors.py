"""pyghmi failures and IPMI completion codes translated into orch's classified errors.

Transient: no answer (pyghmi's session timeout), node busy, command timeout. Permanent: a
wrong user or password, too little privilege, a command or value the BMC rejects. The
password never appears: every message is scrubbed of it.
"""

from __future__ import annotations

from orchestrator.errors import DriverError, NotSupportedError, PermanentError, TransientError
from orchestrator.secrets import MASK, redact

AUTH_WORDS = ("incorrect password", "unauthorized name", "invalid user", "unauthorized",
              "insufficient privilege", "invalid integrity check")
# Completion codes (IPMI 2.0 table 5-2) worth another try.
TRANSIENT_CODES = {0xC0: "node busy", 0xC3: "timeout while processing command",
                   0xC9: "parameter out of range (BMC busy)", 0xFF: "unspecified error"}
UNSUPPORTED_CODES = {0xC1: "invalid command", 0x80: "parameter not supported"}


def scrub(text: str, password: str) -> str:
    if password:
        text = text.replace(password, MASK)
    return redact(text)


def from_exception(exc: BaseException, *, endpoint: str, operation: str,
                   password: str) -> DriverError:
    if isinstance(exc, DriverError):
        return exc
    text = scrub(str(exc) if str(exc) not in ("", "None") else "", password)
    lower = text.lower()
    if any(word in lower for word in AUTH_WORDS):
        return PermanentError(f"authentication failed ({text})", endpoint=endpoint,
                              operation=operation,
                              hint="check bmc.username and the password reference")
    if isinstance(exc, TimeoutError):
        return TransientError(text or "timed out", endpoint=endpoint, operation=operation)
    if isinstance(exc, OSError):
        return PermanentError(f"cannot resolve or reach {endpoint}: {text}",
                              endpoint=endpoint, operation=operation)
    if type(exc).__name__ == "IpmiException" or isinstance(exc, RuntimeError):
        # pyghmi raises IpmiException(None) when the BMC never answered the session setup,
        # "Session no longer connected" when it stopped answering.
        return TransientError(text or "no answer from the BMC (IPMI session timed out)",
                              endpoint=endpoint, operation=operation)
    return PermanentError(f"unexpected {type(exc).__name__}: {text}", endpoint=endpoint,
                          operation=operation)


def from_completion_code(code: int, *, endpoint: str, operation: str,
                         command: str) -> DriverError:
    if code in TRANSIENT_CODES:
        return TransientError(f"{command}: completion code {code:#04x} "
                              f"({TRANSIENT_CODES[code]})", endpoint=endpoint,
                              operation=operation)
    if code in UNSUPPORTED_CODES:
        return NotSupportedError(f"{command}: completion code {code:#04x} "
                                 f"({UNSUPPORTED_CODES[code]})", endpoint=endpoint,
                                 operation=operation)
    return PermanentError(f"{command}: completion code {code:#04x}", endpoint=endpoint,
                          operation=operation)
