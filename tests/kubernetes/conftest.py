"""Fixtures for the Kubernetes driver tests.

The driver runs through the real ``kubernetes`` client against a genuine kube-apiserver
v1.20.2 with etcd (:mod:`realserver`, the session fixture ``kube_server``), loaded with the
upstream CRDs of ../shared/k8s/crds; each session works in a fresh namespace. With
kube-controller-manager built too, its garbage collector and namespace controller run;
without it, tests that need them play those controllers and say so.

Set ``ORCH_TEST_KUBECONFIG`` (and optionally ``ORCH_TEST_KUBE_CONTEXT``) to run the same
tests against any real cluster instead: tests that need the local server (its tokens and
certificates, a restart) are skipped, and so are kinds the cluster does not serve.

Faults a real server cannot be made to show on demand (a 429 with Retry-After, a 503, a
dropped connection, a slow answer) come from :mod:`faultproxy`, an HTTP proxy in front of
the real server (fixture ``proxy``): the answers are the real server's unless a test
injects one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("kubernetes")

from faultproxy import FaultProxy
from kube_harness import REAL_KUBECONFIG, Cluster, run_step
from realserver import KubeServer, kube_server  # noqa: F401  (the session fixture)

from drivers.kubernetes import KubernetesDriver
from drivers.kubernetes.settings import KubernetesSettings
from orchestrator.plan import Action


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    namespace = f"orch-test-{uuid.uuid4().hex[:6]}"
    if REAL_KUBECONFIG:
        real = Cluster(Path(REAL_KUBECONFIG), os.environ.get("ORCH_TEST_KUBE_CONTEXT", ""),
                       namespace, None)
    else:
        server: KubeServer = request.getfixturevalue("kube_server")
        real = Cluster(server.kubeconfig_path, "", namespace, server)
    driver = KubernetesDriver(real.settings())
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    run_step(driver, "kubernetes.manifest", {"manifest": ns})
    yield real
    if real.server is None or real.server.controllers:
        run_step(driver, "kubernetes.manifest", {"manifest": ns}, action=Action.DELETE,
                 timeout=300)
    driver.close()


@pytest.fixture
def server(cluster: Cluster) -> KubeServer:
    """The local kube-apiserver; tests using it skip when ORCH_TEST_KUBECONFIG is set."""
    if cluster.server is None:
        pytest.skip("needs the local kube-apiserver (ORCH_TEST_KUBECONFIG is set)")
    return cluster.server


@pytest.fixture(scope="module")
def proxy_server(request: pytest.FixtureRequest) -> Iterator[FaultProxy]:
    if REAL_KUBECONFIG:
        pytest.skip("the fault proxy fronts the local kube-apiserver (ORCH_TEST_KUBECONFIG set)")
    server: KubeServer = request.getfixturevalue("kube_server")
    proxy = FaultProxy(server.url, server.ca_file)
    yield proxy
    proxy.close()


@pytest.fixture
def proxy(proxy_server: FaultProxy) -> Iterator[FaultProxy]:
    """The fault proxy in front of the real server, with no fault left from another test."""
    proxy_server.reset()
    yield proxy_server
    proxy_server.reset()


@pytest.fixture
def proxy_driver(proxy: FaultProxy, server: KubeServer,
                 tmp_path: Path) -> Iterator[KubernetesDriver]:
    """The driver talking to the real server through the proxy, as the admin token's user."""
    path = tmp_path / "proxy.kubeconfig"
    path.write_text(proxy.kubeconfig(server.admin_token), encoding="utf-8")
    drv = KubernetesDriver(KubernetesSettings(kubeconfig=str(path), poll_interval=0.1,
                                              request_timeout=10.0))
    yield drv
    drv.close()


@pytest.fixture
def driver(cluster: Cluster) -> Iterator[KubernetesDriver]:
    drv = KubernetesDriver(cluster.settings())
    yield drv
    drv.close()
