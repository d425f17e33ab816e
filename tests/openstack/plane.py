"""A real OpenStack control plane on 127.0.0.1 for the OpenStack driver tests, started once
per test session: Keystone, Placement, Glance, Neutron and Nova (API, conductor, scheduler,
compute) of release 2026.1, with a private MariaDB (``--skip-networking``, a unix socket, its
own datadir) and a private RabbitMQ node (own node name, own ``epmd -port``, paths under the
state directory, no plugins). The APIs run under gunicorn on free ports.

Simulated: the hypervisor (``compute_driver = fake.FakeDriver``: Nova's own fake, which
accepts every server and runs nothing) and the L2 agent (``plane_mech.BindEveryPort``, an ML2
mechanism driver binding every port). Everything else is the real service. A second compute
host with the real libvirt driver joins on demand (plane_libvirt.py).

Installed by ``.ci/install.d/65-openstack-plane.sh`` into its own virtualenv, found through
``ORCH_OPENSTACK_BIN``.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import plane_config as conf

DEFAULT_BIN = "/opt/orch-openstack/bin"
STARTUP_TIMEOUT = 480.0
CLOUD = "orch-plane"
HERE = Path(__file__).resolve().parent


def plane_bin() -> Path:
    return Path(os.environ.get("ORCH_OPENSTACK_BIN", DEFAULT_BIN))


def missing() -> str:
    """Why the plane cannot start here, or "" when everything it needs is installed."""
    for tool in ("gunicorn", "nova-manage", "keystone-manage", "neutron-db-manage",
                 "glance-manage", "placement-manage"):
        if not (plane_bin() / tool).is_file():
            return f"no {tool} in {plane_bin()}: run .ci/install.d/65-openstack-plane.sh " \
                   "or set ORCH_OPENSTACK_BIN"
    for tool in ("mariadbd", "mariadb-install-db", "epmd"):
        if not shutil.which(tool, path=f"{os.environ.get('PATH', '')}:/usr/sbin"):
            return f"no {tool}: install mariadb-server and rabbitmq-server (.ci/apt-packages.txt)"
    if not Path(conf.RABBIT_SERVER).is_file():
        return f"no {conf.RABBIT_SERVER}: install rabbitmq-server"
    return ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, deadline: float, proc: subprocess.Popen[bytes], what: str) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not listen on {port}")


def rss_mib(services: Iterable[Service]) -> float:
    """Resident memory of every process of ``services``, in MiB (gone processes count 0)."""
    total = 0
    for service in services:
        for pid in service.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
    return total / 1024


@dataclass
class Service:
    """One process of the plane, restartable (the tests stop and start APIs mid-wait)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    port: int = 0
    cwd: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=out, cwd=self.cwd,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def pids(self) -> list[int]:
        """The process and its descendants (gunicorn workers)."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        found, frontier = [self.proc.pid], [self.proc.pid]
        while frontier:
            parent = frontier.pop()
            children = Path(f"/proc/{parent}/task/{parent}/children")
            try:
                kids = [int(p) for p in children.read_text().split()]
            except OSError:
                kids = []
            found += kids
            frontier += kids
        return found


@dataclass
class Plane:
    state: Path
    password: str
    ports: dict[str, int]
    services: dict[str, Service] = field(default_factory=dict)
    startup_seconds: float = 0.0
    clouds_yaml: Path = Path()
    cloud: str = CLOUD
    flavor: str = "orch-plane-tiny"
    image: str = "orch-plane-blank"

    @property
    def auth_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['keystone']}/v3"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def rss_mib(self) -> float:
        return rss_mib(self.services.values())

    def logs(self) -> list[Path]:
        return sorted(self.state.rglob("*.log"))

    def stop(self) -> None:
        for service in reversed(list(self.services.values())):
            service.stop()

    def restart(self, name: str, timeout: float = 60.0) -> None:
        service = self.services[name]
        service.stop()
        service.start()
        if service.port and service.proc is not None:
            wait_port(service.port, time.monotonic() + timeout, service.proc, name)

    def connect(self, **overrides: Any) -> Any:
        """An openstacksdk connection as the plane's admin (for the tests' own checks)."""
        import openstack

        auth = {"auth_url": self.auth_url, "username": "admin", "password": self.password,
                "project_name": "admin", "user_domain_name": "Default",
                "project_domain_name": "Default", **overrides}
        return openstack.connect(auth=auth, region_name="RegionOne", load_yaml_config=False,
                                 load_envvars=False)


def run(argv: list[str], env: dict[str, str], log: Path, timeout: float = 300) -> None:
    with log.open("ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        done = subprocess.run(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, timeout=timeout, check=False)
    if done.returncode:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{argv[0]} {argv[1:3]} failed ({done.returncode}):\n{tail}")


def start(state: Path) -> Plane:
    """Start the whole plane under ``state``; on any failure stop what was started."""
    started = time.monotonic()
    deadline = started + STARTUP_TIMEOUT
    plane = Plane(state=state, password=secrets.token_urlsafe(18),
                  ports={name: free_port() for name in conf.PORTS})
    atexit.register(plane.stop)  # also when the session is interrupted
    try:
        _start(plane, deadline)
    except BaseException:
        plane.stop()
        raise
    plane.startup_seconds = round(time.monotonic() - started, 1)
    return plane


def _env(plane: Plane, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OS_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(HOME=str(plane.state / "home"), PATH=f"{plane_bin()}:/usr/sbin:/usr/bin:/bin",
               **extra)
    return env


def _start(plane: Plane, deadline: float) -> None:
    state = plane.state
    (state / "home").mkdir(parents=True, exist_ok=True)
    files = conf.write_all(plane, HERE)
    env = _env(plane)
    bin_ = plane_bin()

    # the database and the bus, side by side
    mysql_dir = state / "mysql"
    run(["mariadb-install-db", "--no-defaults", f"--datadir={mysql_dir}",
         f"--user={conf.user()}", "--auth-root-authentication-method=normal",
         "--skip-test-db"], env, state / "mariadb-install.log", timeout=120)
    db = Service("mariadb", ["mariadbd", "--no-defaults", *conf.mariadb_args(plane)], env,
                 state / "mariadb.log")
    plane.services["mariadb"] = db
    db.start()
    epmd = Service("epmd", ["epmd", "-port", str(plane.ports["epmd"])], env,
                   state / "epmd.log", port=plane.ports["epmd"])
    plane.services["epmd"] = epmd
    epmd.start()
    assert epmd.proc is not None
    wait_port(epmd.port, deadline, epmd.proc, "epmd")
    rabbit = Service("rabbitmq", [conf.RABBIT_SERVER], {**env, **conf.rabbit_env(plane)},
                     state / "rabbitmq" / "console.log", port=plane.ports["rabbit"])
    plane.services["rabbitmq"] = rabbit
    rabbit.start()
    sock = conf.mysql_socket(plane)
    while not sock.exists():
        assert db.proc is not None
        if db.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("mariadbd did not start:\n" +
                               (state / "mariadb.log").read_text(errors="replace")[-2000:])
        time.sleep(0.2)
    run(["mariadb", "--no-defaults", f"--socket={sock}", "-uroot", "-e",
         "".join(f"CREATE DATABASE IF NOT EXISTS {name};" for name in conf.DATABASES)],
        env, state / "mariadb-client.log", timeout=60)

    # schemas, in parallel: each service's own migration tool
    # (the admin password reaches keystone-manage bootstrap through its environment)
    migrate_env = {**env, "OS_BOOTSTRAP_PASSWORD": plane.password,
                   "PYTHONPATH": str(state / "neutron" / "site")}

    def migrate(name: str, commands: list[list[str]]) -> None:
        for argv in commands:
            run([str(bin_ / argv[0]), *argv[1:]], migrate_env, state / f"{name}-manage.log")

    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        jobs = [pool.submit(migrate, name, commands)
                for name, commands in conf.migrations(plane, files).items()]
        for job in jobs:
            job.result()

    # the APIs, then the catalog, then Nova's services
    for name in conf.APIS:  # no arguments: neutron parses gunicorn's argv as its own
        svc = Service(name, [str(bin_ / "gunicorn")], {**env, **conf.api_env(plane, name, files)},
                      state / f"{name}.log", port=plane.ports[name],
                      cwd=state / "gunicorn" / name)
        plane.services[name] = svc
        svc.start()
    assert rabbit.proc is not None
    wait_port(rabbit.port, deadline, rabbit.proc, "rabbitmq")
    for name in ("conductor", "scheduler"):
        svc = Service(f"nova-{name}", [str(bin_ / f"nova-{name}"), "--config-file",
                                       str(files["nova"]), "--log-file",
                                       str(state / f"nova-{name}.log")], env,
                      state / f"nova-{name}.out")
        plane.services[svc.name] = svc
        svc.start()
    for name in conf.APIS:
        svc = plane.services[name]
        assert svc.proc is not None
        wait_port(svc.port, deadline, svc.proc, name)
    _catalog(plane)
    _wait_log(state / "nova-conductor.log", "Starting conductor node", deadline,
              plane.services["nova-conductor"])
    compute = Service("nova-compute", [str(bin_ / "nova-compute"), "--config-file",
                                       str(files["nova"]), "--log-file",
                                       str(state / "nova-compute.log")], env,
                      state / "nova-compute.out")
    plane.services["nova-compute"] = compute
    compute.start()
    plane.clouds_yaml = conf.write_clouds_yaml(plane)
    _wait_schedulable(plane, deadline)


def _wait_log(log: Path, text: str, deadline: float, service: Service) -> None:
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        if service.proc is None or service.proc.poll() is not None:
            raise RuntimeError(f"{service.name} exited; see {log}")
        time.sleep(0.5)
    raise RuntimeError(f"{service.name}: no {text!r} in {log}")


def _catalog(plane: Plane) -> None:
    """Services and their endpoints in Keystone (bootstrap registered identity)."""
    conn = plane.connect()
    try:
        for name, (stype, path) in conf.CATALOG.items():
            service = conn.identity.create_service(name=name, type=stype)
            for interface in ("public", "internal"):  # keystonemiddleware uses internal
                conn.identity.create_endpoint(service_id=service.id, interface=interface,
                                              url=plane.url(name) + path, region_id="RegionOne")
    finally:
        conn.close()


def join_zone(conn: Any, aggregate: Any, host: str) -> bool:
    """Add ``host`` to the zone's aggregate; False while the host is not yet mapped to its
    cell (the scheduler discovers hosts every 2 s)."""
    if host in (conn.compute.get_aggregate(aggregate).hosts or ()):
        return True
    try:
        conn.compute.add_host_to_aggregate(aggregate, host)
    except Exception as exc:  # openstacksdk's NotFound: not mapped yet
        if "not found" not in str(exc).lower():
            raise
        return False
    return True


def _wait_schedulable(plane: Plane, deadline: float) -> None:
    """Until a server can be built: the compute host registered in Placement and mapped to
    the cell, shown by a probe server reaching ACTIVE (then deleted)."""
    conn = plane.connect()
    try:
        if conn.compute.find_flavor(plane.flavor, ignore_missing=True) is None:
            conn.compute.create_flavor(name=plane.flavor, vcpus=1, ram=64, disk=1)
        image = conn.image.find_image(plane.image, ignore_missing=True)
        if image is None:
            image = conn.image.create_image(name=plane.image, disk_format="raw",
                                            container_format="bare", data=b"\0" * 65536,
                                            visibility="public")
        flavor = conn.compute.find_flavor(plane.flavor)
        last = ""
        zone = None
        while time.monotonic() < deadline:
            if not list(conn.compute.hypervisors()):
                time.sleep(1)
                continue
            zone = zone or conn.compute.create_aggregate(name=conf.FAKE_AZ,
                                                         availability_zone=conf.FAKE_AZ)
            if not join_zone(conn, zone, "orch-plane"):
                time.sleep(1)
                continue
            server = conn.compute.create_server(name="orch-plane-probe", image_id=image.id,
                                                flavor_id=flavor.id, networks="none")
            while time.monotonic() < deadline:
                server = conn.compute.get_server(server.id)
                if server.status in ("ACTIVE", "ERROR"):
                    break
                time.sleep(1)
            last = f"{server.status} {(server.fault or {}).get('message', '')}"
            conn.compute.delete_server(server)
            conn.compute.wait_for_delete(server, wait=120)  # (refreshes `server` in place)
            if last.startswith("ACTIVE"):
                return
            time.sleep(2)
        raise RuntimeError(f"no server could be scheduled: {last}")
    finally:
        conn.close()

