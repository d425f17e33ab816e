"""A real standalone Ironic (API and conductor in one ``ironic`` process) on 127.0.0.1 for the
OpenStack driver's tests: no Keystone (``auth_strategy = noauth``), no message bus
(``rpc_transport = none``), SQLite, and the fake-hardware type beside redfish and ipmi.

Ironic is installed into its own virtualenv by ``.ci/install.d/60-ironic.sh`` (its
dependency pins are not ours); ``ORCH_IRONIC_BIN`` names that venv's ``bin`` directory.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

DEFAULT_BIN = "/opt/orch-ironic/bin"
STARTUP_TIMEOUT = 90.0

CONFIG = """\
[DEFAULT]
auth_strategy = noauth
rpc_transport = none
host = orch-test
enabled_hardware_types = fake-hardware,redfish,ipmi
enabled_bios_interfaces = fake,no-bios
enabled_boot_interfaces = fake,redfish-virtual-media,pxe
enabled_console_interfaces = fake,no-console
enabled_deploy_interfaces = fake,direct
enabled_inspect_interfaces = fake,no-inspect
enabled_management_interfaces = fake,redfish,ipmitool
enabled_network_interfaces = noop
enabled_power_interfaces = fake,redfish,ipmitool
enabled_raid_interfaces = fake,no-raid
enabled_rescue_interfaces = fake,no-rescue
enabled_vendor_interfaces = fake,no-vendor
default_network_interface = noop
log_dir = {state}
use_stderr = false
[api]
host_ip = 127.0.0.1
port = {port}
[conductor]
automated_clean = false
deploy_kernel = http://127.0.0.1/unused-kernel
deploy_ramdisk = http://127.0.0.1/unused-ramdisk
[database]
connection = sqlite:///{state}/ironic.sqlite
[dhcp]
dhcp_provider = none
[deploy]
http_root = {state}/httpboot
http_url = http://127.0.0.1:8080
[pxe]
tftp_root = {state}/tftpboot
[redfish]
# an unreachable BMC fails verification in seconds, not after sushy's default retries
connection_attempts = 1
connection_retry_interval = 1
[oslo_concurrency]
lock_path = {state}/locks
"""


def ironic_bin() -> Path:
    return Path(os.environ.get("ORCH_IRONIC_BIN", DEFAULT_BIN))


def installed() -> bool:
    return (ironic_bin() / "ironic").is_file() and (ironic_bin() / "ironic-dbsync").is_file()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Ironic:
    url: str
    state: Path
    process: subprocess.Popen[bytes]
    startup_seconds: float

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)

    def log_tail(self, lines: int = 30) -> str:
        path = self.state / "ironic.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _ready(url: str) -> bool:
    """The API answers and the conductor has registered the fake-hardware type."""
    try:
        with urllib.request.urlopen(f"{url}/v1/drivers", timeout=2) as response:
            return b'"fake-hardware"' in response.read()
    except OSError:
        return False


def start(state: Path, timeout: float = STARTUP_TIMEOUT) -> Ironic:
    """Create the schema and start ``ironic``; raise RuntimeError with its log past timeout."""
    port = free_port()
    for sub in ("httpboot", "tftpboot", "locks"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    config = state / "ironic.conf"
    config.write_text(CONFIG.format(state=state, port=port), encoding="utf-8")
    subprocess.run([str(ironic_bin() / "ironic-dbsync"), "--config-file", str(config),
                    "create_schema"], check=True, capture_output=True, timeout=120)
    started = time.monotonic()
    with open(state / "stdout.log", "wb") as out:
        process = subprocess.Popen([str(ironic_bin() / "ironic"), "--config-file", str(config)],
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    ironic = Ironic(f"http://127.0.0.1:{port}", state, process, 0.0)
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"ironic exited with {process.returncode}:\n{ironic.log_tail()}")
        if _ready(ironic.url):
            ironic.startup_seconds = round(time.monotonic() - started, 1)
            return ironic
        time.sleep(0.25)
    ironic.stop()
    raise RuntimeError(f"ironic not ready within {timeout:.0f} s:\n{ironic.log_tail()}")
