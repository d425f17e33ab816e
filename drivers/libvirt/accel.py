"""Which accelerator a domain gets, and the plan finding that says why.

For a local URI the verdict is :mod:`lab.accel`'s: a probe guest booted under KVM decides
(cached per host configuration). A remote URI (``qemu+ssh://l1/system``) cannot be probed
from here, so its domain capabilities decide: KVM if the remote QEMU advertises it. The
``accelerator`` setting (or a domain's own ``accelerator`` input, or ``ORCH_ACCEL``) forces
the choice without probing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from lab.accel import Accel, Choice, Verdict, decide


def is_local(uri: str) -> bool:
    """True for URIs served by this machine's libvirtd (no host, or localhost)."""
    host = urlparse(uri).hostname
    return host in (None, "", "localhost", "127.0.0.1", "::1")


def verdict_for(uri: str, choice: str, conn: Any | None = None) -> Verdict:
    """The accelerator for domains at ``uri`` under ``choice`` (auto|kvm|tcg).

    ``conn`` is needed only for a remote URI in auto mode. Never raises for an unusable
    KVM (that is a TCG verdict).
    """
    import os

    forced = Choice(choice) is not Choice.AUTO or os.environ.get("ORCH_ACCEL", "auto") not in (
        "", "auto")
    if is_local(uri) or forced or conn is None:
        return decide(choice)
    return _remote_verdict(conn)


def _remote_verdict(conn: Any) -> Verdict:
    import libvirt

    try:
        conn.getDomainCapabilities(None, "x86_64", None, "kvm", 0)
    except libvirt.libvirtError as exc:
        reason = (exc.get_error_message() or "kvm not advertised").strip()
        return Verdict(Accel.TCG, False, f"remote host: {reason}; probe not run", "remote")
    return Verdict(Accel.KVM, True, "remote host advertises kvm; probe not run", "remote")
