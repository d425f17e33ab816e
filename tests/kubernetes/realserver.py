"""A genuine kube-apiserver v1.20.2 with etcd on loopback, for tests (issue 9).

The binaries come from ``python3 -m lab.kubebuild`` (``.ci/install.d/50-kube-apiserver.sh``),
found through ``ORCH_KUBE_BIN`` or the builder's default ``~/.cache/orch/k8s/bin``. Each
session gets fresh PKI (made with ``cryptography``), free loopback ports and a fresh etcd
data dir (in /dev/shm: etcd's fsyncs on a busy disk time requests out); everything is
stopped at the end. ``kube-controller-manager`` runs too, with the garbage collector and the
namespace and service-account controllers only, so foreground deletion, namespace deletion
and default ServiceAccounts are real (a bare kube-apiserver would leave every foreground
deletion pending on its ``foregroundDeletion`` finalizer). The fixture needs all three
binaries (with CI=true a missing one fails, elsewhere the tests skip saying so); the class
alone starts without the controller manager when it is not there (``server.controllers``).
Start-up phases are timed in ``server.timings``.

API (the session fixture ``kube_server`` yields a :class:`KubeServer`)::

    server.url               https://127.0.0.1:PORT
    server.ca_file           the test CA (PEM) that signed the serving and client certs
    server.admin_token       bearer token of user "admin" in group system:masters
    server.readonly_token    bearer token of user "viewer": get/list/watch on everything
    server.client_cert       admin client certificate (CN=orch-admin, O=system:masters)
    server.client_key        its private key (PEM file)
    server.kubeconfig_path   admin kubeconfig (embedded CA, client cert and key)
    server.kubeconfig(token=..., ca=True)   text of a kubeconfig for a token user
    server.api_client()      a kubernetes.client.ApiClient as admin
    server.controllers       True when kube-controller-manager runs
    server.restart_apiserver(down=0.0)      stop it, wait ``down`` s, start it, wait ready
    server.crds_created      the CRDs that had to be created (server-side apply refused)

Other test directories can use it with ``from realserver import kube_server`` after putting
``tests/kubernetes`` on ``sys.path`` -- or, simpler, live in ``tests/kubernetes``.
"""

from __future__ import annotations

import base64
import concurrent.futures
import datetime
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CRDS = Path(os.environ.get("ORCH_TEST_CRDS", REPO.parent / "shared" / "k8s" / "crds"))
BIN = Path(os.environ.get("ORCH_KUBE_BIN", Path.home() / ".cache" / "orch" / "k8s" / "bin"))
#: CRDs carrying CEL rules at typed paths: 1.20's server-side apply refuses them (HTTP 500)
#: and a plain create accepts them, dropping the rules (../shared/k8s/crds/SOURCES.md note 1)
CREATE_ONLY = frozenset({"helmreleases.helm.toolkit.fluxcd.io", "cephclusters.ceph.rook.io",
                         "cephfilesystemsubvolumegroups.ceph.rook.io",
                         "cephobjectstores.ceph.rook.io"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- PKI ----------------------------------------------------------------------------------
def _key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _cert(subject_cn: str, key: Any, *, issuer: tuple[Any, Any] | None = None,
          org: str = "", server_ip: str = "", ca: bool = False) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]
    if org:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    name = x509.Name(attrs)
    issuer_cert, issuer_key = issuer or (None, key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer_cert.subject if issuer_cert else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server_ip else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server_ip:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address(server_ip)), x509.DNSName("localhost")]),
            critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(d: Path) -> dict[str, Path]:
    """CA, serving cert (SAN IP:127.0.0.1), admin client cert, service-account key pair."""
    from cryptography.hazmat.primitives import serialization

    d.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}

    def write(name: str, data: bytes) -> None:
        out[name] = d / name
        out[name].write_bytes(data)
        out[name].chmod(0o600)

    ca_key = _key()
    ca = _cert("orch-test-ca", ca_key, ca=True)
    pem = serialization.Encoding.PEM
    write("ca.crt", ca.public_bytes(pem))
    write("ca.key", _pem_key(ca_key))
    for name, kwargs in (("apiserver", {"server_ip": "127.0.0.1"}),
                         ("admin", {"org": "system:masters"})):
        key = _key()
        cn = "kube-apiserver" if name == "apiserver" else "orch-admin"
        cert = _cert(cn, key, issuer=(ca, ca_key), **kwargs)  # type: ignore[arg-type]
        write(f"{name}.crt", cert.public_bytes(pem))
        write(f"{name}.key", _pem_key(key))
    sa = _key()
    write("sa.key", _pem_key(sa))
    write("sa.pub", sa.public_key().public_bytes(
        pem, serialization.PublicFormat.SubjectPublicKeyInfo))
    return out


def kubeconfig_text(url: str, *, ca: Path | None, token: str = "", cert: Path | None = None,
                    key: Path | None = None, user: str = "user") -> str:
    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    cluster: dict[str, Any] = {"server": url}
    if ca is not None:
        cluster["certificate-authority-data"] = b64(ca)
    creds: dict[str, Any] = {"token": token} if token else {}
    if cert is not None and key is not None:
        creds = {"client-certificate-data": b64(cert), "client-key-data": b64(key)}
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": cluster}],
        "users": [{"name": user, "user": creds}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": user}}]})


# -- the processes ------------------------------------------------------------------------
class ServerError(RuntimeError):
    pass


@dataclass
class Proc:
    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self.popen = None

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


@dataclass
class KubeServer:
    workdir: Path
    bin_dir: Path = BIN
    url: str = ""
    ca_file: Path = Path()
    client_cert: Path = Path()
    client_key: Path = Path()
    kubeconfig_path: Path = Path()
    admin_token: str = ""
    readonly_token: str = ""
    controllers: bool = False
    crds_created: list[str] = field(default_factory=list)
    procs: dict[str, Proc] = field(default_factory=dict)
    pki: dict[str, Path] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per start-up phase

    # -- lifecycle ----------------------------------------------------------------------
    def start(self, crds: Path | None = CRDS) -> KubeServer:
        started = time.monotonic()
        self.pki = make_pki(self.workdir / "pki")
        self.ca_file, self.client_cert, self.client_key = (
            self.pki["ca.crt"], self.pki["admin.crt"], self.pki["admin.key"])
        self.admin_token = base64.b32encode(os.urandom(20)).decode().lower()
        self.readonly_token = base64.b32encode(os.urandom(20)).decode().lower()
        tokens = self.workdir / "tokens.csv"
        tokens.write_text(f'{self.admin_token},admin,admin-uid,"system:masters"\n'
                          f"{self.readonly_token},viewer,viewer-uid\n")
        tokens.chmod(0o600)
        port = free_port()
        self.url = f"https://127.0.0.1:{port}"
        self.kubeconfig_path = self.workdir / "admin.kubeconfig"
        self.kubeconfig_path.write_text(kubeconfig_text(
            self.url, ca=self.ca_file, cert=self.client_cert, key=self.client_key,
            user="orch-admin"))
        self.kubeconfig_path.chmod(0o600)
        self._lap("pki", started)
        self._start_etcd()
        self._lap("etcd", started)
        self.procs["kube-apiserver"] = Proc("kube-apiserver", self._apiserver_argv(port, tokens),
                                            self.workdir / "kube-apiserver.log")
        self.start_apiserver()
        self._bind_viewer()
        self._lap("kube-apiserver", started)
        if (self.bin_dir / "kube-controller-manager").exists():
            self._start_controller_manager()
            self._lap("kube-controller-manager", started)
        if crds is not None and crds.is_dir():
            self.crds_created = load_crds(self, crds)
            self._lap("crds", started)
        self.startup_seconds = round(time.monotonic() - started, 1)
        return self

    def _lap(self, phase: str, started: float) -> None:
        self.timings[phase] = round(time.monotonic() - started - sum(self.timings.values()), 1)

    def stop(self) -> None:
        for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
            if name in self.procs:
                self.procs[name].stop()
        if getattr(self, "etcd_dir", None):
            shutil.rmtree(self.etcd_dir, ignore_errors=True)

    def _start_etcd(self) -> None:
        # etcd's data in memory when there is a tmpfs: its fsyncs on a busy disk otherwise
        # time requests out ("etcdserver: request timed out") on a loaded machine
        shm = Path("/dev/shm")
        self.etcd_dir = Path(tempfile.mkdtemp(prefix="orch-etcd-", dir=shm if shm.is_dir()
                                              else self.workdir))
        client, peer, metrics = free_port(), free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        argv = [str(self.bin_dir / "etcd"), "--name", "orch-test",
                "--data-dir", str(self.etcd_dir),
                "--listen-client-urls", self.etcd_url, "--advertise-client-urls", self.etcd_url,
                "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-cluster", f"orch-test=http://127.0.0.1:{peer}",
                "--listen-metrics-urls", f"http://127.0.0.1:{metrics}",
                "--log-level", "warn", "--logger", "zap"]
        self.procs["etcd"] = proc = Proc("etcd", argv, self.workdir / "etcd.log")
        proc.start()
        self._wait(proc, lambda: _http_ok(f"{self.etcd_url}/health"), 30)

    def _apiserver_argv(self, port: int, tokens: Path) -> list[str]:
        p = self.pki
        return [str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers={self.etcd_url}", "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1", f"--secure-port={port}", "--insecure-port=0",
                "--endpoint-reconciler-type=none", "--authorization-mode=RBAC",
                f"--tls-cert-file={p['apiserver.crt']}",
                f"--tls-private-key-file={p['apiserver.key']}",
                f"--client-ca-file={p['ca.crt']}", f"--token-auth-file={tokens}",
                f"--service-account-key-file={p['sa.pub']}",
                f"--service-account-signing-key-file={p['sa.key']}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--api-audiences=https://kubernetes.default.svc.cluster.local",
                "--service-cluster-ip-range=10.96.0.0/16", "--allow-privileged=true",
                f"--cert-dir={self.workdir / 'certs'}", "--profiling=false", "--v=0"]

    def start_apiserver(self, timeout: float = 90) -> None:
        proc = self.procs["kube-apiserver"]
        proc.start()
        self._wait(proc, self.ready, timeout)

    def restart_apiserver(self, down: float = 0.0) -> None:
        """Stop kube-apiserver, keep it down ``down`` s, start it again and wait until ready."""
        self.procs["kube-apiserver"].stop()
        time.sleep(down)
        self.start_apiserver()

    def stop_apiserver(self) -> None:
        self.procs["kube-apiserver"].stop()

    def ready(self) -> bool:
        return _http_ok(f"{self.url}/readyz", ca=self.ca_file, token=self.admin_token)

    def _wait(self, proc: Proc, check: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not proc.alive():
                raise ServerError(f"{proc.name} exited:\n{proc.tail()}")
            if check():
                return
            time.sleep(0.2)
        raise ServerError(f"{proc.name} not ready in {timeout:.0f} s:\n{proc.tail()}")

    def _start_controller_manager(self) -> None:
        argv = [str(self.bin_dir / "kube-controller-manager"),
                f"--kubeconfig={self.kubeconfig_path}",
                f"--authentication-kubeconfig={self.kubeconfig_path}",
                f"--authorization-kubeconfig={self.kubeconfig_path}",
                "--controllers=garbagecollector,namespace,serviceaccount,serviceaccount-token",
                f"--service-account-private-key-file={self.pki['sa.key']}",
                f"--root-ca-file={self.ca_file}", "--leader-elect=false",
                "--bind-address=127.0.0.1", "--secure-port=0", "--port=0",
                "--concurrent-gc-syncs=5", "--v=0"]
        self.procs["kube-controller-manager"] = proc = Proc(
            "kube-controller-manager", argv, self.workdir / "kube-controller-manager.log")
        proc.start()
        # ready when it made the default namespace's ServiceAccount
        api = self.api_client()
        try:
            from kubernetes import client

            core = client.CoreV1Api(api)

            def has_default_sa() -> bool:
                try:
                    core.read_namespaced_service_account("default", "default")
                    return True
                except Exception:
                    return False
            self._wait(proc, has_default_sa, 60)
        finally:
            api.close()
        self.controllers = True

    # -- clients --------------------------------------------------------------------------
    def kubeconfig(self, *, token: str = "", ca: bool = True, cert: bool = False) -> str:
        if cert:
            return kubeconfig_text(self.url, ca=self.ca_file if ca else None,
                                   cert=self.client_cert, key=self.client_key, user="orch-admin")
        return kubeconfig_text(self.url, ca=self.ca_file if ca else None,
                               token=token or self.admin_token, user="token-user")

    def api_client(self, token: str = "") -> Any:
        """A kubernetes ApiClient: admin by client certificate, or the given token."""
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        configuration.ssl_ca_cert = str(self.ca_file)
        configuration.verify_ssl = True
        if token:
            configuration.api_key = {"authorization": f"Bearer {token}"}
        else:
            configuration.cert_file = str(self.client_cert)
            configuration.key_file = str(self.client_key)
        return client.ApiClient(configuration)

    def _bind_viewer(self) -> None:
        """User "viewer" may get, list and watch everything, and nothing else. (Its own
        ClusterRole: the built-in ``view`` is an aggregated role, empty until
        kube-controller-manager's aggregation controller fills it.)"""
        from kubernetes import client

        api = self.api_client()
        try:
            rbac = client.RbacAuthorizationV1Api(api)
            rbac.create_cluster_role({
                "metadata": {"name": "orch-test-read-only"},
                "rules": [{"apiGroups": ["*"], "resources": ["*"],
                           "verbs": ["get", "list", "watch"]}]})
            rbac.create_cluster_role_binding({
                "metadata": {"name": "orch-test-read-only"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": "orch-test-read-only"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                              "name": "viewer"}]})
        finally:
            api.close()


def _http_ok(url: str, *, ca: Path | None = None, token: str = "") -> bool:
    context = ssl.create_default_context(cafile=str(ca)) if ca else None
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"}
                                     if token else {})
    try:
        with urllib.request.urlopen(request, timeout=2, context=context) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def load_crds(server: KubeServer, root: Path, timeout: float = 60) -> list[str]:
    """Server-side apply every CRD under ``root``; those 1.20 refuses (the CEL ones) are
    created instead. Waits until all are Established. Returns the created ones' names."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from kubernetes.dynamic import DynamicClient

    api = server.api_client()
    created: list[str] = []
    try:
        dyn = DynamicClient(api)
        crd_api = dyn.resources.get(api_version="apiextensions.k8s.io/v1",
                                    kind="CustomResourceDefinition")

        def install(path: Path) -> str:
            body = yaml.safe_load(path.read_text())
            name = str(body["metadata"]["name"])
            try:
                dyn.server_side_apply(crd_api, body=body, name=name, field_manager="orch-test",
                                      force_conflicts=True)
            except ApiException as exc:
                if exc.status != 500 or name not in CREATE_ONLY:
                    raise ServerError(f"{path.name}: HTTP {exc.status} {exc.body!r:.300}") \
                        from None
                crd_api.create(body=body)
                created.append(name)
            return name

        with concurrent.futures.ThreadPoolExecutor(4) as pool:  # the server is the bottleneck
            names = list(pool.map(install, sorted(root.rglob("*.yaml"))))
        ext = client.ApiextensionsV1Api(api)
        deadline = time.monotonic() + timeout
        pending = set(names)
        while pending and time.monotonic() < deadline:
            for name in sorted(pending):
                conds = ext.read_custom_resource_definition(name).status.conditions or ()
                if any(c.type == "Established" and c.status == "True" for c in conds):
                    pending.discard(name)
            if pending:
                time.sleep(0.3)
        if pending:
            raise ServerError(f"CRDs not Established in {timeout:.0f} s: {sorted(pending)}")
    finally:
        api.close()
    return created


def binaries_missing(bin_dir: Path = BIN) -> list[str]:
    return [name for name in ("kube-apiserver", "etcd", "kube-controller-manager")
            if not (bin_dir / name).exists()]


@pytest.fixture(scope="session")
def kube_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeServer]:
    """etcd + kube-apiserver v1.20.2 (+ kube-controller-manager when built) for the session."""
    from tests.conftest import require_service

    missing = binaries_missing()
    if missing:
        require_service(f"no {', '.join(missing)} in {BIN} (ORCH_KUBE_BIN): run "
                        "`python3 -m lab.kubebuild` (.ci/install.d/50-kube-apiserver.sh)")
    workdir = tmp_path_factory.mktemp("kube-server")
    server = KubeServer(workdir)
    try:
        server.start()
    except Exception:
        server.stop()
        raise
    try:
        yield server
    finally:
        server.stop()
