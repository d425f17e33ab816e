"""Serving the offline mirror (:mod:`lab.mirror`) to a lab's guests over HTTP.

A lab network is isolated: its guests reach the host only at the network's gateway address
(its first address). The mirror is served there by a plain HTTP server in its own process
(Python's ``http.server``, read-only, the mirror's directory as its root), recorded in the
lab's state directory so ``orch lab down`` stops it. Serving is idempotent: a server still
running for the same directory and address is kept.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from lab.mirror import MirrorError

STATE_FILE = "mirror.json"


def gateway(cidr: str) -> str:
    """The host's address on a lab network: the network's first address."""
    return str(ipaddress.ip_network(cidr, strict=False).network_address + 1)


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def start(directory: Path, cidr: str, state: Path, *, timeout: float = 15.0) -> str:
    """Serve ``directory`` on the gateway of ``cidr``; return the mirror's base URL."""
    host = gateway(cidr)
    record = state / STATE_FILE
    if record.exists():
        old = json.loads(record.read_text())
        if (old.get("directory") == str(directory) and old.get("host") == host
                and _alive(int(old["pid"])) and _answers(host, int(old["port"]))):
            return str(old["url"])
        stop(state)
    port = _free_port(host)
    log = (state / "mirror.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", host, "--directory", str(directory),
         str(port)], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        start_new_session=True)
    deadline = time.monotonic() + timeout
    while not _answers(host, port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise MirrorError(f"the mirror's HTTP server did not start on {host}:{port}",
                              hint=f"see {state / 'mirror.log'}")
        time.sleep(0.1)
    url = f"http://{host}:{port}"
    record.write_text(json.dumps({"pid": proc.pid, "host": host, "port": port, "url": url,
                                  "directory": str(directory)}, indent=2) + "\n")
    return url


def stop(state: Path) -> bool:
    """Stop the mirror server recorded in ``state``; True if one was running."""
    record = state / STATE_FILE
    if not record.exists():
        return False
    pid = int(json.loads(record.read_text()).get("pid", 0))
    record.unlink()
    if pid and _alive(pid):
        os.kill(pid, signal.SIGTERM)
        return True
    return False
