"""A second compute host for the test plane (plane.py): nova-compute with the real libvirt
driver (``virt_type = qemu``: TCG, ``cpu_mode = none``) on a PRIVATE libvirtd, so the guests
Nova boots are real QEMU machines, reachable from the tests over SSH.

* **libvirtd**: its own, in a mount namespace (``unshare -m``) where private directories
  are bind-mounted over /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/log/libvirt and
  /var/cache/libvirt. It never sees the machine's shared libvirtd or its domains (Nova refuses
  a hypervisor with instances it does not know), and Nova reaches it through its socket under
  the plane's state directory. QEMU runs as root with no security driver and writes its
  console log itself (no virtlogd).
* **the host**: ``orch-plane-libvirt``, in the availability zone ``orch-libvirt`` (an
  aggregate); a server that names no zone lands in ``orch-fake`` (``default_schedule_zone``),
  the fake-driver host's, so the plane's other tests stay where they were.
* **the network**: a Linux bridge on the machine with the first address of
  ``10.231.77.0/24``; Neutron binds this host's ports as ``vif_type = bridge`` on it and a
  dnsmasq on the bridge answers the guest's DHCP with the fixed IP Neutron allocated
  (plane_mech.py: the simulated L2 and DHCP agents). The root key reaches the guest on Nova's
  config drive (``force_config_drive``; os_guest_image.py reads it).

Started on demand by the first test that needs it (conftest.py), stopped with the plane.
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import plane_config as conf
from plane import Plane, Service, join_zone, plane_bin, rss_mib

#: The machine directories the private libvirtd gets its own copy of.
PRIVATE_DIRS = ("/etc/libvirt", "/run/libvirt", "/var/lib/libvirt", "/var/log/libvirt",
                "/var/cache/libvirt")
START_TIMEOUT = 300.0

LIBVIRTD_CONF = """\
unix_sock_group = "root"
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "3:stderr"
"""
QEMU_CONF = """\
stdio_handler = "file"
security_driver = "none"
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
cgroup_controllers = [ ]
namespaces = [ ]
"""


def missing() -> str:
    """Why the libvirt host cannot start here, or ""."""
    for tool in ("libvirtd", "unshare", "dnsmasq", "genisoimage", "qemu-system-x86_64",
                 "qemu-img", "debugfs", "ip", "virsh"):
        if not shutil.which(tool, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"):
            return f"no {tool}: install it (.ci/apt-packages.txt)"
    probe = subprocess.run([str(plane_bin() / "python"), "-c", "import libvirt"],
                           capture_output=True, check=False)
    if probe.returncode:
        return (f"no libvirt-python in {plane_bin()}: run "
                ".ci/install.d/65-openstack-plane.sh")
    if os.geteuid() != 0:
        return "the private libvirtd and the bridge need root"
    return ""


@dataclass
class LibvirtHost:
    plane: Plane
    state: Path
    host: str = conf.LIBVIRT_HOST
    zone: str = conf.LIBVIRT_AZ
    bridge: str = conf.BRIDGE
    cidr: str = conf.LIBVIRT_CIDR
    services: dict[str, Service] = field(default_factory=dict)
    startup_seconds: float = 0.0

    @property
    def socket(self) -> Path:
        return self.state / "run" / "libvirt-sock"

    @property
    def uri(self) -> str:
        return f"qemu+unix:///system?socket={self.socket}"

    def virsh(self, *args: str) -> str:
        done = subprocess.run(["virsh", "-c", self.uri, *args], capture_output=True,
                              text=True, timeout=60, check=False)
        if done.returncode:
            raise RuntimeError(f"virsh {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def domains(self) -> list[str]:
        return [d for d in self.virsh("list", "--all", "--name").split() if d]

    def address(self, index: int) -> str:
        return str(list(ipaddress.ip_network(self.cidr).hosts())[index - 1])

    def rss_mib(self) -> float:
        return rss_mib(self.services.values())

    def stop(self) -> None:
        """Stop nova-compute, remove every guest of the private libvirtd, stop it, the
        DHCP server and the bridge (each step even if an earlier one failed)."""
        compute = self.services.pop("nova-compute", None)
        if compute is not None:
            compute.stop()
        if "libvirtd" in self.services:
            try:
                for name in self.domains():
                    subprocess.run(["virsh", "-c", self.uri, "destroy", name],
                                   capture_output=True, timeout=60, check=False)
                    subprocess.run(["virsh", "-c", self.uri, "undefine", name, "--nvram"],
                                   capture_output=True, timeout=60, check=False)
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        for name in list(reversed(self.services)):
            self.services.pop(name).stop()
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)


def start(plane: Plane) -> LibvirtHost:
    """Start the libvirt compute beside the running plane; on failure undo what started."""
    started = time.monotonic()
    host = LibvirtHost(plane=plane, state=plane.state / "libvirt")
    atexit.register(host.stop)  # also when the session is interrupted
    try:
        _start(host, started + START_TIMEOUT)
    except BaseException:
        host.stop()
        raise
    host.startup_seconds = round(time.monotonic() - started, 1)
    return host


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OS_", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{plane_bin()}:/usr/sbin:/usr/bin:/sbin:/bin"
    return env


def _start(host: LibvirtHost, deadline: float) -> None:
    state, env = host.state, _env()
    mounts = []
    for target in PRIVATE_DIRS:
        private = state / target.strip("/").replace("/", "-")
        private.mkdir(parents=True, exist_ok=True)
        if Path(target).is_dir():
            mounts.append(f"mount --bind {private} {target}")
    (state / "etc-libvirt" / "libvirtd.conf").write_text(LIBVIRTD_CONF)
    (state / "etc-libvirt" / "qemu.conf").write_text(QEMU_CONF)
    run = state / "run-libvirt"
    (state / "run").unlink(missing_ok=True)
    (state / "run").symlink_to(run)  # host.socket: <state>/run/libvirt-sock
    script = " && ".join([*mounts, f"exec libvirtd --pid-file {state / 'libvirtd.pid'}"])
    libvirtd = Service("libvirtd", ["unshare", "-m", "--propagation", "private", "sh", "-c",
                                    script], env, state / "libvirtd.log")
    host.services["libvirtd"] = libvirtd
    libvirtd.start()

    # the bridge and its DHCP server (while libvirtd starts)
    net = ipaddress.ip_network(host.cidr)
    subprocess.run(["ip", "link", "del", host.bridge], capture_output=True, check=False)
    for argv in (["ip", "link", "add", host.bridge, "type", "bridge"],
                 ["ip", "addr", "add", f"{host.address(1)}/{net.prefixlen}", "dev",
                  host.bridge],
                 ["ip", "link", "set", host.bridge, "up"]):
        subprocess.run(argv, check=True, capture_output=True, timeout=30)
    hosts = conf.dhcp_hosts(host.plane)
    hosts.mkdir(exist_ok=True)
    dnsmasq = Service("dnsmasq", [
        "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0",
        "--user=root", "--bind-interfaces", f"--interface={host.bridge}",
        "--except-interface=lo", f"--dhcp-range={net.network_address},static,{net.netmask}",
        f"--dhcp-hostsdir={hosts}", f"--dhcp-leasefile={state / 'dnsmasq.leases'}",
        f"--pid-file={state / 'dnsmasq.pid'}", "--log-dhcp", "--log-facility=-"],
        env, state / "dnsmasq.log")
    host.services["dnsmasq"] = dnsmasq
    dnsmasq.start()

    while not host.socket.exists():
        assert libvirtd.proc is not None
        if libvirtd.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("private libvirtd did not start:\n" +
                               libvirtd.log.read_text(errors="replace")[-2000:])
        time.sleep(0.2)
    if host.domains():
        raise RuntimeError(f"the private libvirtd sees domains {host.domains()}")

    files = conf.write_libvirt_compute(host.plane, host.plane.state / "nova" / "nova.conf",
                                       host.socket)
    compute = Service("nova-compute", [str(plane_bin() / "nova-compute"), "--config-file",
                                       str(files), "--log-file",
                                       str(state / "nova-compute.log")], env,
                      state / "nova-compute.out")
    host.services["nova-compute"] = compute
    compute.start()
    _join_zone(host, deadline)


def _join_zone(host: LibvirtHost, deadline: float) -> None:
    """Once the compute service is up and its node in Placement, put it in its own zone."""
    conn = host.plane.connect()
    try:
        while True:
            compute = host.services["nova-compute"]
            if compute.proc is None or compute.proc.poll() is not None:
                log = host.state / "nova-compute.log"
                raise RuntimeError("libvirt nova-compute exited:\n" +
                                   (log.read_text(errors="replace")[-3000:]
                                    if log.exists() else ""))
            ups = [s for s in conn.compute.services(binary="nova-compute", host=host.host)
                   if s.state == "up"]
            nodes = [h for h in conn.compute.hypervisors(details=True)
                     if getattr(h, "service_details", {}).get("host") == host.host]
            if ups and nodes:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{host.host} did not register (services {ups}, "
                                   f"nodes {nodes})")
            time.sleep(1)
        aggregate = conn.compute.create_aggregate(name=host.zone, availability_zone=host.zone)
        while not join_zone(conn, aggregate, host.host):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{host.host} was not mapped to a cell in time")
            time.sleep(1)
    finally:
        conn.close()
