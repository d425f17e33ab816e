"""API errors become classified orch errors naming the API server and the operation, and no
token ever appears in them. Faults are injected into the API server double (skipped on a
real cluster)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from apiserver_double import ApiServerDouble
from kube_harness import Cluster, ListLog, run_step, unique

from drivers.kubernetes import KubernetesDriver
from drivers.kubernetes.settings import KubernetesSettings
from orchestrator.errors import PermanentError, TransientError


def cm_inputs(cluster: Cluster) -> dict[str, object]:
    return {"manifest": {"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": unique("cm"), "namespace": cluster.namespace}}}


@pytest.mark.parametrize("code", [500, 503, 409])
def test_server_errors_and_conflicts_are_transient(
        driver: KubernetesDriver, cluster: Cluster, double: ApiServerDouble, code: int) -> None:
    driver.cluster()  # discovery first, so that the fault hits the apply
    double.inject(code, method="PATCH", message="etcdserver: request timed out")
    inputs = cm_inputs(cluster)
    with pytest.raises(TransientError) as info:
        run_step(driver, "kubernetes.manifest", inputs)
    err = info.value
    assert err.endpoint == double.url
    assert err.operation.startswith("apply ConfigMap ")
    assert f"HTTP {code}" in str(err) and "etcdserver: request timed out" in str(err)
    run_step(driver, "kubernetes.manifest", inputs)  # the retry the executor would make


def test_too_many_requests_is_transient_with_the_servers_retry_after(
        driver: KubernetesDriver, cluster: Cluster, double: ApiServerDouble) -> None:
    driver.cluster()
    double.inject(429, method="PATCH", message="too many requests", retry_after=7)
    with pytest.raises(TransientError) as info:
        run_step(driver, "kubernetes.manifest", cm_inputs(cluster))
    assert info.value.retry_after == 7


@pytest.mark.parametrize(("code", "hint"), [(400, ""), (403, "RBAC"), (404, ""),
                                            (422, "schema")])
def test_client_errors_are_permanent(driver: KubernetesDriver, cluster: Cluster,
                                     double: ApiServerDouble, code: int, hint: str) -> None:
    driver.cluster()
    double.inject(code, method="PATCH", message="refused by the double")
    with pytest.raises(PermanentError) as info:
        run_step(driver, "kubernetes.manifest", cm_inputs(cluster))
    assert f"HTTP {code}" in str(info.value) and "refused by the double" in str(info.value)
    assert hint in info.value.hint


def test_a_missing_namespace_is_a_permanent_not_found(driver: KubernetesDriver,
                                                      double: ApiServerDouble) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x",
                                                                "namespace": "no-such-ns"}}
    with pytest.raises(PermanentError, match='HTTP 404 NotFound: namespaces "no-such-ns"'):
        run_step(driver, "kubernetes.manifest", {"manifest": cm})


def test_a_slow_api_server_times_out_transiently_within_the_request_timeout(
        cluster: Cluster, double: ApiServerDouble) -> None:
    driver = KubernetesDriver(cluster.settings(request_timeout=0.5))
    try:
        driver.cluster()
        double.slow = 2.0
        started = time.monotonic()
        with pytest.raises(TransientError, match="timed out"):
            run_step(driver, "kubernetes.manifest", cm_inputs(cluster))
        assert time.monotonic() - started < 1.5
    finally:
        double.slow = 0.0
        driver.close()


def test_an_api_server_that_is_down_is_transient_and_fails_fast(tmp_path: Path,
                                                                double: ApiServerDouble) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = double.kubeconfig().replace(double.url, f"http://127.0.0.1:{port}")
    (tmp_path / "kubeconfig").write_text(config, encoding="utf-8")
    driver = KubernetesDriver(KubernetesSettings(kubeconfig=str(tmp_path / "kubeconfig")))
    started = time.monotonic()
    with pytest.raises(TransientError, match="connection refused") as info:
        driver.cluster()
    assert time.monotonic() - started < 2
    assert info.value.endpoint == f"http://127.0.0.1:{port}"


def test_a_refused_token_is_permanent_and_never_shown(tmp_path: Path,
                                                      double: ApiServerDouble) -> None:
    wrong = "wrong-token-0123456789abcdef"
    (tmp_path / "kubeconfig").write_text(double.kubeconfig(token=wrong), encoding="utf-8")
    driver = KubernetesDriver(KubernetesSettings(kubeconfig=str(tmp_path / "kubeconfig")))
    with pytest.raises(PermanentError) as info:
        driver.cluster()
    assert "HTTP 401" in str(info.value) and "credentials" in info.value.hint
    assert wrong not in info.value.render()


def test_a_token_echoed_by_the_server_is_masked(driver: KubernetesDriver, cluster: Cluster,
                                                double: ApiServerDouble) -> None:
    """A proxy or webhook that echoes the Authorization header must not leak it through us."""
    driver.cluster()
    double.inject(500, method="PATCH", message=f"upstream saw Bearer {double.token}")
    log = ListLog()
    with pytest.raises(TransientError) as info:
        run_step(driver, "kubernetes.manifest", cm_inputs(cluster), log=log)
    assert double.token not in info.value.render()
    assert "********" in str(info.value)
    assert not any(double.token in event for event in log.events)


def test_a_broken_kubeconfig_is_permanent(tmp_path: Path) -> None:
    (tmp_path / "kubeconfig").write_text("apiVersion: v1\nkind: Config\n", encoding="utf-8")
    driver = KubernetesDriver(KubernetesSettings(kubeconfig=str(tmp_path / "kubeconfig"),
                                                 context="nope"))
    with pytest.raises(PermanentError, match="kubeconfig") as info:
        driver.cluster()
    assert info.value.operation == "load kubeconfig"
