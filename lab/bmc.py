"""Emulated BMCs for lab domains: a sushy-tools Redfish emulator and virtualbmc (IPMI).

:func:`start` gives every libvirt domain in a list a Redfish system (one emulator for all,
restricted to those domains) and an IPMI endpoint (one vbmc per domain, run by a private
``vbmcd``), all on 127.0.0.1 and free ports, all with one user and a generated password.
The password lives in a 0600 file, so inventories reference it as ``file:PATH`` and never
hold the value. :func:`stop` ends both daemons through their pid files.

Everything is kept under ``<state_dir>/bmc/``::

    password            the generated password (0600)
    htpasswd            bcrypt entry for the Redfish emulator (0600)
    sushy.conf          emulator configuration (a Python file, as Flask reads it)
    sushy.pid/.log      emulator process
    vbmc/virtualbmc.conf, vbmc/domains/<name>/config, vbmcd.pid/.log
    endpoints.json      what start() returned, for `orch lab` and for stop()

The storage pool named ``default`` that the emulator downloads virtual media into is
created (directory pool) when missing; an existing one is left as it is.
"""

from __future__ import annotations

import configparser
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from orchestrator.secrets import ref

USERNAME = "admin"
LOOPBACK = "127.0.0.1"
POOL_NAME = "default"
POOL_PATH = "/var/lib/libvirt/images"


class BmcLabError(RuntimeError):
    """An emulated BMC could not be started or stopped; the message names which and why."""


@dataclass(frozen=True)
class DomainBmc:
    """How to reach one domain's emulated BMCs (what a lab inventory's ``bmc:`` needs)."""

    domain: str
    redfish_endpoint: str
    redfish_system: str
    ipmi_endpoint: str
    username: str
    password_ref: str

    def inventory_bmc(self, kind: str = "redfish") -> dict[str, object]:
        """The host's ``bmc:`` mapping for an inventory, password as a secret reference."""
        endpoint, system = ((self.redfish_endpoint, self.redfish_system) if kind == "redfish"
                            else (self.ipmi_endpoint, ""))
        return {"kind": kind, "endpoint": endpoint, "system": system,
                "username": self.username, "password": ref(self.password_ref),
                "verify_tls": False, "ca_bundle": None}


@dataclass(frozen=True)
class BmcLab:
    state_dir: str
    redfish_endpoint: str
    password_file: str
    domains: dict[str, DomainBmc]

    @property
    def password_ref(self) -> str:
        return f"file:{self.password_file}"


def start(domains: Sequence[str], state_dir: Path, *, libvirt_uri: str = "qemu:///system",
          timeout: float = 30.0) -> BmcLab:
    """Start (or restart) both emulators for ``domains``; return their endpoints.

    Waits at most ``timeout`` seconds for each daemon to answer. Raises
    :class:`BmcLabError` naming the daemon and pointing at its log.
    """
    root = Path(state_dir) / "bmc"
    root.mkdir(parents=True, exist_ok=True)
    stop(state_dir)
    password_file = _ensure_password(root)
    ensure_default_pool(libvirt_uri)
    redfish_port = free_port(socket.SOCK_STREAM)
    _start_redfish(root, domains, redfish_port, libvirt_uri, password_file, timeout)
    ipmi_ports = {name: free_port(socket.SOCK_DGRAM) for name in domains}
    _start_vbmc(root, ipmi_ports, libvirt_uri, password_file, timeout)
    redfish = f"http://{LOOPBACK}:{redfish_port}"
    ref = f"file:{password_file}"
    lab = BmcLab(
        state_dir=str(root), redfish_endpoint=redfish, password_file=str(password_file),
        domains={name: DomainBmc(name, redfish, name, f"{LOOPBACK}:{ipmi_ports[name]}",
                                 USERNAME, ref) for name in domains})
    (root / "endpoints.json").write_text(json.dumps(asdict(lab), indent=2), encoding="utf-8")
    return lab


def stop(state_dir: Path, *, timeout: float = 10.0) -> None:
    """Stop both emulators started under ``state_dir``; a daemon already gone is fine."""
    root = Path(state_dir) / "bmc"
    for name, program in (("sushy", "sushy-emulator"), ("vbmcd", "vbmcd")):
        _stop_pidfile(root / f"{name}.pid", program, timeout)


def load(state_dir: Path) -> BmcLab | None:
    """The endpoints recorded by the last :func:`start`, or None."""
    path = Path(state_dir) / "bmc" / "endpoints.json"
    if not path.exists():
        return None
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw["domains"] = {k: DomainBmc(**v) for k, v in raw["domains"].items()}
    return BmcLab(**raw)


# -- shared pieces ------------------------------------------------------------------------

def free_port(kind: socket.SocketKind) -> int:
    """A port on 127.0.0.1 that is free right now for ``kind`` (TCP or UDP)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _ensure_password(root: Path) -> Path:
    path = root / "password"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            # 16 characters: IPMI 2.0 passwords are at most 20 bytes (ipmitool refuses longer).
            fh.write(secrets.token_urlsafe(12) + "\n")
    os.chmod(path, 0o600)
    return path


def _read_password(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip()


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def ensure_default_pool(libvirt_uri: str) -> None:
    """Create and start a directory pool named ``default`` when there is none."""
    import libvirt

    conn = libvirt.open(libvirt_uri)
    try:
        try:
            pool = conn.storagePoolLookupByName(POOL_NAME)
        except libvirt.libvirtError:
            Path(POOL_PATH).mkdir(parents=True, exist_ok=True)
            pool = conn.storagePoolDefineXML(
                f"<pool type='dir'><name>{POOL_NAME}</name>"
                f"<target><path>{POOL_PATH}</path></target></pool>", 0)
        if not pool.isActive():
            pool.create(0)
        pool.setAutostart(1)
    finally:
        conn.close()


def remove_media_copies(state_dir: Path, libvirt_uri: str = "qemu:///system") -> list[str]:
    """Delete the copies of inserted virtual media the emulator left in the ``default``
    pool for this lab's domains (it names them ``<iso>-<domain uuid>.img``; an eject
    removes them, an interrupted install may not). Returns the volumes deleted."""
    import libvirt

    lab = load(state_dir)
    if lab is None:
        return []
    conn = libvirt.open(libvirt_uri)
    try:
        uuids = []
        for name in lab.domains:
            try:
                uuids.append(conn.lookupByName(name).UUIDString())
            except libvirt.libvirtError:
                continue  # already gone: its copies (if any) cannot be told apart
        try:
            pool = conn.storagePoolLookupByName(POOL_NAME)
            pool.refresh(0)
        except libvirt.libvirtError:
            return []
        gone = []
        for vol in pool.listAllVolumes():
            if any(u in vol.name() for u in uuids):
                vol.delete(0)
                gone.append(vol.name())
        return gone
    finally:
        conn.close()


def _domain_uuids(libvirt_uri: str, domains: Sequence[str]) -> list[str]:
    import libvirt

    conn = libvirt.open(libvirt_uri)
    try:
        uuids = []
        for name in domains:
            try:
                uuids.append(conn.lookupByName(name).UUIDString())
            except libvirt.libvirtError as exc:
                raise BmcLabError(f"libvirt domain {name!r}: {exc}") from None
        return uuids
    finally:
        conn.close()


def _spawn(argv: list[str], root: Path, name: str, env: dict[str, str]) -> int:
    log = open(root / f"{name}.log", "ab")  # noqa: SIM115 -- handed to the child
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                env={**os.environ, **env}, start_new_session=True,
                                cwd=root)
    finally:
        log.close()
    (root / f"{name}.pid").write_text(f"{proc.pid}\n", encoding="utf-8")
    return proc.pid


def _alive(pid: int) -> bool:
    try:
        waited, _status = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop_pidfile(pidfile: Path, program: str, timeout: float) -> None:
    if not pidfile.exists():
        return
    try:
        pid = int(pidfile.read_text(encoding="utf-8").strip())
    except ValueError:
        pidfile.unlink()
        return
    if program not in _cmdline(pid):  # gone, and the pid possibly reused: not ours
        pidfile.unlink()
        return
    # The daemon leads its own session (start_new_session): signal the group, so that
    # vbmcd's per-domain children go too.
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if not _alive(pid):
            break
    pidfile.unlink(missing_ok=True)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _wait(ready: object, what: str, pid: int, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():  # type: ignore[operator]
            return
        if not _alive(pid):
            raise BmcLabError(f"{what} exited at start; see {log}")
        time.sleep(0.2)
    raise BmcLabError(f"{what} not ready after {timeout:.0f} s; see {log}")


# -- Redfish: sushy-tools ------------------------------------------------------------------

def _start_redfish(root: Path, domains: Sequence[str], port: int, libvirt_uri: str,
                   password_file: Path, timeout: float) -> None:
    import bcrypt

    allowed = set(domains) | set(_domain_uuids(libvirt_uri, domains))
    hashed = bcrypt.hashpw(_read_password(password_file).encode(), bcrypt.gensalt(rounds=8))
    _write_private(root / "htpasswd", f"{USERNAME}:{hashed.decode()}\n")
    (root / "sushy-state").mkdir(exist_ok=True)
    config = "\n".join([
        f"SUSHY_EMULATOR_LISTEN_IP = {LOOPBACK!r}",
        f"SUSHY_EMULATOR_LISTEN_PORT = {port}",
        f"SUSHY_EMULATOR_LIBVIRT_URI = {libvirt_uri!r}",
        f"SUSHY_EMULATOR_AUTH_FILE = {str(root / 'htpasswd')!r}",
        f"SUSHY_EMULATOR_STATE_DIR = {str(root / 'sushy-state')!r}",
        f"SUSHY_EMULATOR_STORAGE_POOL = {POOL_NAME!r}",
        # Only the lab's domains: the emulator must not power other guests on this host.
        # It checks the identity in the URL, which is the UUID or the name.
        f"SUSHY_EMULATOR_ALLOWED_INSTANCES = {sorted(allowed)!r}",
        "",
    ])
    (root / "sushy.conf").write_text(config, encoding="utf-8")
    exe = shutil.which("sushy-emulator") or "sushy-emulator"
    pid = _spawn([exe, "--config", str(root / "sushy.conf")], root, "sushy", {})
    url = f"http://{LOOPBACK}:{port}/redfish/v1/"
    _wait(lambda: _http_answers(url), f"sushy-emulator on {url}", pid, root / "sushy.log",
          timeout)


def _http_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # 401 without credentials still means it is serving
    except OSError:
        return False


# -- IPMI: virtualbmc ----------------------------------------------------------------------

def _start_vbmc(root: Path, ports: dict[str, int], libvirt_uri: str, password_file: Path,
                timeout: float) -> None:
    home = root / "vbmc"
    domains_dir = home / "domains"
    if domains_dir.exists():
        shutil.rmtree(domains_dir)
    domains_dir.mkdir(parents=True)  # vbmcd exits at once if its config dir is missing
    password = _read_password(password_file)
    for name, port in ports.items():
        cfg = configparser.ConfigParser()
        cfg["VirtualBMC"] = {"username": USERNAME, "password": password,
                             "address": LOOPBACK, "port": str(port), "domain_name": name,
                             "libvirt_uri": libvirt_uri, "active": "True"}
        (domains_dir / name).mkdir()
        with open(os.open(domains_dir / name / "config", os.O_WRONLY | os.O_CREAT, 0o600),
                  "w", encoding="utf-8") as fh:
            cfg.write(fh)
    conf = configparser.ConfigParser()
    conf["default"] = {"config_dir": str(domains_dir), "pid_file": str(home / "master.pid"),
                       "server_port": str(free_port(socket.SOCK_STREAM)),
                       "show_passwords": "false"}
    conf["log"] = {"logfile": str(root / "vbmcd.log"), "debug": "false"}
    with open(home / "virtualbmc.conf", "w", encoding="utf-8") as fh:
        conf.write(fh)
    exe = shutil.which("vbmcd") or "vbmcd"
    pid = _spawn([exe, "--foreground"], root, "vbmcd",
                 {"VIRTUALBMC_CONFIG": str(home / "virtualbmc.conf")})
    _wait(lambda: all(_udp_bound(p) for p in ports.values()),
          f"vbmcd (ports {sorted(ports.values())})", pid, root / "vbmcd.log", timeout)


def _udp_bound(port: int) -> bool:
    """True when something listens on UDP ``port`` (we cannot bind it ourselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return True
        return False
