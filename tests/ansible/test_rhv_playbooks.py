"""The RHV migration playbooks (profile 94: rhv/export-ova.yml, rhv/vm-shutdown.yml,
rhv/retire-hosts.yml), run by Ansible on this machine against a STAND-IN for the oVirt
engine's REST API: a small HTTP server in this process answering the calls the playbooks
make with the JSON shapes of oVirt 4.5 (vms?search=, exporttopathonhost returning a job,
jobs/ID, shutdown, hosts, deactivate, DELETE). No RHV engine can run here. What is checked
is the playbooks' own logic: the export job awaited to its end and a failed one failing, a
VM name that matches nothing refused, the marker that makes a re-run a no-op, the shutdown
awaited until `down`, hosts retired only once no unmigrated VM runs, the hosted engine's
host kept, every wait bounded."""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from standins import play_local

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks" / "rhv"
API = "/ovirt-engine/api"


class Engine:
    """What the stand-in engine knows, and every call it was sent."""

    def __init__(self, staging: Path) -> None:
        self.staging = staging
        self.vms = [{"id": "v1", "name": "app01", "status": "up"},
                    {"id": "v2", "name": "HostedEngine", "status": "up"}]
        self.hosts = [{"id": "h1", "name": "rhvh-1", "status": "up"},
                      {"id": "h2", "name": "rhvh-2", "status": "up",
                       "hosted_engine": {"active": True, "configured": True}}]
        self.job_result = "finished"
        self.job_polls = 0
        self.calls: list[str] = []
        self.ignore_shutdown = False

    def handle(self, method: str, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        self.calls.append(f"{method} {path}")
        if path == f"{API}/vms" and method == "GET":
            search = query.get("search", [""])[0]
            if search.startswith("name="):
                return 200, {"vm": [v for v in self.vms if v["name"] == search[5:]]}
            if search == "status=up":
                return 200, {"vm": [v for v in self.vms if v["status"] == "up"]}
            return 200, {"vm": self.vms}
        for vm in self.vms:
            base = f"{API}/vms/{vm['id']}"
            if path == base:
                return 200, vm
            if path == f"{base}/exporttopathonhost":
                return 200, {"status": "complete",
                             "job": {"id": "j1", "href": f"{API}/jobs/j1"}}
            if path == f"{base}/shutdown":
                if not self.ignore_shutdown:
                    vm["status"] = "down"
                return 200, {"status": "complete"}
            if path == f"{base}/stop":
                vm["status"] = "down"
                return 200, {"status": "complete"}
        if path == f"{API}/jobs/j1":
            self.job_polls += 1
            if self.job_polls < 2:
                return 200, {"id": "j1", "status": "started"}
            if self.job_result == "finished":
                (self.staging / "app01.ova").write_bytes(b"OVA" * 100)
            return 200, {"id": "j1", "status": self.job_result, "description": "Exporting VM"}
        if path == f"{API}/hosts":
            return 200, {"host": self.hosts}
        for host in self.hosts:
            if path == f"{API}/hosts/{host['id']}/deactivate":
                host["status"] = "preparing_for_maintenance"
                return 200, {"status": "complete"}
            if path == f"{API}/hosts/{host['id']}" and method == "DELETE":
                if host["status"] != "maintenance":
                    return 409, {"fault": {"reason": "host not in maintenance"}}
                self.hosts.remove(host)
                return 200, {}
        if path == f"{API}/hosts" or path.startswith(f"{API}/hosts"):
            return 404, {}
        return 404, {"fault": {"reason": f"no {path}"}}

    def tick(self) -> None:
        for host in self.hosts:  # maintenance is reached one poll after deactivate
            if host["status"] == "preparing_for_maintenance":
                host["status"] = "maintenance_soon"
            elif host["status"] == "maintenance_soon":
                host["status"] = "maintenance"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[tuple[Engine, str]]:
    staging = tmp_path / "ova"
    staging.mkdir()
    state = Engine(staging)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            parts = urlsplit(self.path)
            if self.command == "GET" and parts.path == f"{API}/hosts":
                state.tick()
            status, body = state.handle(self.command, parts.path, parse_qs(parts.query))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}{API}"
    server.shutdown()
    server.server_close()


def _play(book: str, tmp_path: Path, api: str, **extra: object) -> subprocess.CompletedProcess[str]:
    # the stand-in speaks http; the uri module still loads the CA file, so give it a real one
    ca = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")
    variables = {"rhv_api": api, "rhv_password": "rhv-s3cret", "rhv_ca_file": str(ca),
                 "rhv_poll_delay": 1, **extra}
    return play_local(PLAYBOOKS / book, variables, tmp_path)


def _export(tmp_path: Path, api: str, vm: str = "app01") -> subprocess.CompletedProcess[str]:
    return _play("export-ova.yml", tmp_path, api, rhv_vm=vm, rhv_export_host="rhvh-1",
                 rhv_staging_dir=str(tmp_path / "ova"), rhv_export_timeout=60)


@pytest.mark.slow
def test_export_waits_for_the_job_then_marks_the_ova_and_a_rerun_does_nothing(
        tmp_path: Path, engine: tuple[Engine, str]) -> None:
    state, api = engine
    run = _export(tmp_path, api)
    assert run.returncode == 0, run.stdout[-3000:]
    assert state.job_polls == 2
    assert (tmp_path / "ova" / "app01.ova.exported").read_text() == "j1\n"
    assert "rhv-s3cret" not in run.stdout
    state.calls.clear()
    again = _export(tmp_path, api)
    assert again.returncode == 0, again.stdout[-3000:]
    assert state.calls == []


@pytest.mark.slow
def test_a_failed_export_job_fails_and_leaves_no_marker(
        tmp_path: Path, engine: tuple[Engine, str]) -> None:
    state, api = engine
    state.job_result = "failed"
    run = _export(tmp_path, api)
    assert run.returncode != 0
    assert "ended failed" in run.stdout
    assert not (tmp_path / "ova" / "app01.ova.exported").exists()


@pytest.mark.slow
def test_a_vm_name_that_matches_nothing_is_refused(
        tmp_path: Path, engine: tuple[Engine, str]) -> None:
    state, api = engine
    run = _export(tmp_path, api, vm="nosuchvm")
    assert run.returncode != 0
    assert "0 VMs named nosuchvm" in run.stdout
    assert not any("exporttopathonhost" in c for c in state.calls)


@pytest.mark.slow
def test_shutdown_waits_until_down_and_fails_when_the_guest_ignores_it(
        tmp_path: Path, engine: tuple[Engine, str]) -> None:
    state, api = engine
    run = _play("vm-shutdown.yml", tmp_path, api, rhv_vm="app01")
    assert run.returncode == 0, run.stdout[-3000:]
    assert state.vms[0]["status"] == "down"

    state.vms[0]["status"] = "up"
    state.ignore_shutdown = True
    stuck = _play("vm-shutdown.yml", tmp_path, api, rhv_vm="app01", rhv_shutdown_timeout=10)
    assert stuck.returncode != 0
    assert "still up after 10 s" in stuck.stdout
    assert not any(c.endswith("/stop") for c in state.calls)
    forced = _play("vm-shutdown.yml", tmp_path, api, rhv_vm="app01", rhv_shutdown_timeout=10,
                   rhv_force_stop=True)
    assert forced.returncode == 0, forced.stdout[-3000:]
    assert any(c.endswith("/stop") for c in state.calls)


@pytest.mark.slow
def test_hosts_are_not_retired_while_unmigrated_vms_run(
        tmp_path: Path, engine: tuple[Engine, str]) -> None:
    state, api = engine
    run = _play("retire-hosts.yml", tmp_path, api)
    assert run.returncode != 0
    assert "not migrated: app01" in run.stdout
    assert not any("deactivate" in c or c.startswith("DELETE") for c in state.calls)


@pytest.mark.slow
def test_hosts_go_to_maintenance_then_are_removed_but_the_hosted_engines(
        tmp_path: Path, engine: tuple[Engine, str]) -> None:
    state, api = engine
    state.vms[0]["status"] = "down"
    run = _play("retire-hosts.yml", tmp_path, api)
    assert run.returncode == 0, run.stdout[-3000:]
    assert [h["name"] for h in state.hosts] == ["rhvh-2"]
    assert f"POST {API}/hosts/h1/deactivate" in state.calls
    assert f"DELETE {API}/hosts/h1" in state.calls
    assert not any("/hosts/h2/" in c for c in state.calls)
