"""Fixtures for the Kubernetes driver tests.

By default the driver runs through the real ``kubernetes`` client against
:class:`ApiServerDouble` (a test double; no real API server can run on this machine). Set
``ORCH_TEST_KUBECONFIG`` (and optionally ``ORCH_TEST_KUBE_CONTEXT``) to run the same tests
against a real cluster instead: each session works in a fresh namespace it deletes at the
end, tests that need the double's fault injection are skipped, and kinds the cluster does not
serve (KubeVirt, CDI, Multus CRDs) are skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("kubernetes")

from apiserver_double import ApiServerDouble
from kube_harness import REAL_KUBECONFIG, Cluster, run_step

from drivers.kubernetes import KubernetesDriver
from drivers.kubernetes.settings import KubernetesSettings
from orchestrator.plan import Action


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    namespace = f"orch-test-{uuid.uuid4().hex[:6]}"
    if REAL_KUBECONFIG:
        real = Cluster(Path(REAL_KUBECONFIG), os.environ.get("ORCH_TEST_KUBE_CONTEXT", ""),
                       namespace, None)
        driver = KubernetesDriver(real.settings())
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        run_step(driver, "kubernetes.manifest", {"manifest": ns})
        yield real
        run_step(driver, "kubernetes.manifest", {"manifest": ns}, action=Action.DELETE,
                 timeout=300)
        driver.close()
        return
    double = ApiServerDouble().start()
    path = tmp_path_factory.mktemp("kube") / "kubeconfig"
    path.write_text(double.kubeconfig(), encoding="utf-8")
    driver = KubernetesDriver(KubernetesSettings(kubeconfig=str(path)))
    run_step(driver, "kubernetes.manifest", {"manifest": {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}})
    driver.close()
    yield Cluster(path, "", namespace, double)
    double.stop()


@pytest.fixture
def double(cluster: Cluster) -> Iterator[ApiServerDouble]:
    """The API server double; tests using it (fault injection) skip on a real cluster."""
    if cluster.double is None:
        pytest.skip("needs the ApiServerDouble's fault injection (ORCH_TEST_KUBECONFIG is set)")
    cluster.double.faults.clear()
    cluster.double.slow = 0.0
    yield cluster.double
    cluster.double.faults.clear()
    cluster.double.slow = 0.0


@pytest.fixture
def driver(cluster: Cluster) -> Iterator[KubernetesDriver]:
    drv = KubernetesDriver(cluster.settings())
    yield drv
    drv.close()


