"""Which accelerator a domain gets, and the plan finding that says why.

``/dev/kvm`` existing proves little: under ``kvm_pvm`` (a paravirtualised KVM) a stock
Debian kernel cannot boot. So for a local URI the verdict comes from booting the probe guest
(:mod:`drivers.libvirt.probeguest`: the Debian kernel with a busybox initramfs that prints
its marker on ttyS0 and powers off) with ``-accel kvm -cpu host`` under a bounded timeout.
Seeing the marker means KVM is usable; anything else (no ``/dev/kvm``, QEMU exits, the guest
hangs) means TCG, with the reason recorded. The verdict is cached in ``<cache>/accel.json``
keyed by the host kernel release, the QEMU version and whether ``/dev/kvm`` exists, so the
probe runs once per host configuration.

A remote URI (``qemu+ssh://l1/system``) cannot be probed from here, so its domain
capabilities decide: KVM if the remote QEMU advertises it. The ``accelerator`` setting (or a
domain's own ``accelerator`` input, or ``ORCH_ACCEL=kvm|tcg|auto``) forces the choice without
probing.
"""


from __future__ import annotations

import enum
import fcntl
import json
import os
import platform
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from orchestrator.cachedir import cache_dir

ENV = "ORCH_ACCEL"
QEMU = "qemu-system-x86_64"
#: The probe boots in ~1 s under working KVM; past this the guest is stuck, not slow.
PROBE_TIMEOUT = 45.0
CACHE_VERSION = 1


class Accel(enum.StrEnum):
    KVM = "kvm"
    TCG = "tcg"


class Choice(enum.StrEnum):
    AUTO = "auto"
    KVM = "kvm"
    TCG = "tcg"


@dataclass(frozen=True)
class Verdict:
    """Which accelerator guests use, and why."""

    accel: Accel
    kvm_usable: bool
    reason: str
    #: "probe" (measured now), "cache" (measured earlier), "forced" (setting or ORCH_ACCEL).
    source: str
    probe_seconds: float = 0.0

    @property
    def finding(self) -> str:
        """One line for the plan, e.g. ``KVM usable: no (...) → TCG``."""
        usable = "yes" if self.kvm_usable else "no"
        return f"KVM usable: {usable} ({self.reason}) → {self.accel.value.upper()}"


def host_key() -> str:
    """What the verdict depends on: kernel release, QEMU version, /dev/kvm presence."""
    return "|".join((platform.release(), qemu_version(), str(Path("/dev/kvm").exists())))


def qemu_version() -> str:
    """``qemu-system-x86_64 --version``'s first line, or "none" when QEMU is missing."""
    try:
        out = subprocess.run([QEMU, "--version"], capture_output=True, text=True, timeout=15,
                             check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "none"
    return out.splitlines()[0].strip() if out else "none"


def kvm_pvm_loaded() -> bool:
    """True when the host's KVM is ``kvm_pvm`` (which cannot run a standard guest)."""
    if Path("/sys/module/kvm_pvm").exists():
        return True
    try:
        return any(line.split()[0] == "kvm_pvm"
                   for line in Path("/proc/modules").read_text().splitlines() if line)
    except OSError:
        return False


def decide(choice: Choice | str | None = None, *, refresh: bool = False,
           timeout: float = PROBE_TIMEOUT) -> Verdict:
    """The accelerator to use: forced by ``choice`` or ``$ORCH_ACCEL``, else probed.

    ``choice`` "auto" (or None) defers to ``$ORCH_ACCEL``, then to the cached or probed
    verdict; ``refresh`` ignores the cache. Never raises for an unusable KVM (that is a
    TCG verdict); raises ``ValueError`` for an unknown choice. Bounded by ``timeout``.
    """
    chosen = Choice(choice or "auto")
    if chosen is Choice.AUTO:
        chosen = Choice(os.environ.get(ENV, "auto").strip().lower() or "auto")
    if chosen is Choice.KVM:
        return Verdict(Accel.KVM, True, f"forced by {ENV} or settings; probe not run",
                       "forced")
    if chosen is Choice.TCG:
        return Verdict(Accel.TCG, False, f"forced by {ENV} or settings; probe not run",
                       "forced")
    path = cache_dir() / "accel.json"
    key = host_key()
    with open(cache_dir() / "accel.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one probe at a time; others read its verdict
        cached = _read_cache(path, key)
        if cached is not None and not refresh:
            return cached
        verdict = probe(timeout=timeout)
        _write_cache(path, key, verdict)
        return verdict


def _read_cache(path: Path, key: str) -> Verdict | None:
    try:
        data = json.loads(path.read_text())
        entry = data["verdicts"][key]
        if data.get("version") != CACHE_VERSION:
            return None
        return Verdict(Accel(entry["accel"]), bool(entry["kvm_usable"]), entry["reason"],
                       "cache", float(entry.get("probe_seconds", 0.0)))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_cache(path: Path, key: str, verdict: Verdict) -> None:
    try:
        data = json.loads(path.read_text())
        if data.get("version") != CACHE_VERSION:
            data = {}
    except (OSError, ValueError):
        data = {}
    entry = asdict(verdict)
    entry["accel"] = verdict.accel.value
    entry["probed_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    data = {"version": CACHE_VERSION, "verdicts": {**data.get("verdicts", {}), key: entry}}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def probe(*, timeout: float = PROBE_TIMEOUT) -> Verdict:
    """Boot the probe guest under ``-accel kvm -cpu host``; return the measured verdict.

    Never raises for a failed probe: every failure is a TCG verdict with its reason. The
    QEMU process is killed after ``timeout`` seconds.
    """
    pvm = kvm_pvm_loaded()
    if not Path("/dev/kvm").exists():
        return Verdict(Accel.TCG, False, "no /dev/kvm", "probe")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return Verdict(Accel.TCG, False, "/dev/kvm is not readable and writable", "probe")
    run = boot_probe_guest("kvm", timeout=timeout)
    if run.booted:
        return Verdict(Accel.KVM, True, f"probe guest booted in {run.seconds} s", "probe",
                       run.seconds)
    reason = run.failure
    if pvm:
        reason = f"kvm_pvm cannot run a standard guest; {reason}"
    return Verdict(Accel.TCG, False, reason, "probe", run.seconds)


@dataclass(frozen=True)
class ProbeRun:
    """What one boot of the probe guest showed."""

    booted: bool
    seconds: float
    #: Why it did not boot (empty when it did).
    failure: str = ""


def boot_probe_guest(accel: str, *, timeout: float = PROBE_TIMEOUT) -> ProbeRun:
    """Boot the initramfs probe guest with ``-accel <accel>`` and wait for its marker.

    ``kvm`` uses ``-cpu host`` (what lab domains get under KVM). The QEMU process is killed
    after ``timeout`` seconds. Never raises: a guest that cannot boot is a failed run.
    """
    from drivers.libvirt.probeguest import ProbeGuestError, build_initramfs_guest

    try:
        guest = build_initramfs_guest()
    except ProbeGuestError as exc:
        return ProbeRun(False, 0.0, f"probe guest unavailable: {exc}")
    cpu = ["-cpu", "host"] if accel == "kvm" else []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="orch-accel-") as tmp:
        console = Path(tmp) / "console.log"
        cmd = [QEMU, "-accel", accel, *cpu, "-m", "256", "-smp", "1",
               "-nodefaults", "-display", "none", "-no-reboot",
               "-serial", f"file:{console}", "-kernel", str(guest.kernel),
               "-initrd", str(guest.initrd),
               "-append", "console=ttyS0 panic=-1 quiet loglevel=4"]
        timed_out = False
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  check=False)
            stderr = proc.stderr
        except subprocess.TimeoutExpired as exc:  # run() has killed QEMU
            raw = exc.stderr or b""
            stderr = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
            timed_out = True
        except OSError as exc:
            return ProbeRun(False, 0.0, f"cannot run {QEMU}: {exc.strerror}")
        text = console.read_text(errors="replace") if console.exists() else ""
    seconds = round(time.monotonic() - started, 1)
    if guest.marker in text:
        return ProbeRun(True, seconds)
    last = _last_line(stderr) or _last_line(text) or "no output"
    what = f"probe guest hung for {timeout:.0f} s" if timed_out else "probe guest died"
    return ProbeRun(False, seconds, f"{what}: {last}")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def is_local(uri: str) -> bool:
    """True for URIs served by this machine's libvirtd (no host, or localhost)."""
    host = urlparse(uri).hostname
    return host in (None, "", "localhost", "127.0.0.1", "::1")


def verdict_for(uri: str, choice: str, conn: Any | None = None) -> Verdict:
    """The accelerator for domains at ``uri`` under ``choice`` (auto|kvm|tcg).

    ``conn`` is needed only for a remote URI in auto mode. Never raises for an unusable
    KVM (that is a TCG verdict).
    """
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


def main() -> int:
    """``python -m drivers.libvirt.accel [--refresh]``: print the verdict."""
    import sys

    verdict = decide(refresh="--refresh" in sys.argv[1:])
    print(verdict.finding)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
