"""The API server going away mid-operation is transient: an apply whose connection is cut
fails with a TransientError and the retry succeeds; a wait outlives dropped connections and a
restart of the real kube-apiserver, and finishes once the awaited state is there."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from faultproxy import DROP, FaultProxy
from kube_harness import Cluster, configmap, run_step, unique
from realserver import KubeServer

from drivers.kubernetes import KubernetesDriver
from orchestrator.errors import TransientError


def later(delay: float, action: Any) -> threading.Thread:
    errors: list[BaseException] = []

    def run() -> None:
        time.sleep(delay)
        try:
            action()
        except BaseException as exc:  # surfaced by the test through thread.errors
            errors.append(exc)
    thread = threading.Thread(target=run, daemon=True)
    thread.errors = errors  # type: ignore[attr-defined]
    thread.start()
    return thread


def test_a_connection_cut_during_apply_is_transient_and_the_retry_applies(
        proxy_driver: KubernetesDriver, cluster: Cluster, proxy: FaultProxy) -> None:
    """STAND-IN for the network: the fault proxy closes the connection without answering."""
    proxy_driver.cluster()
    proxy.inject(DROP, method="PATCH")
    inputs = {"manifest": configmap(unique("cm"), cluster.namespace, a="1")}
    with pytest.raises(TransientError, match="connection closed") as info:
        run_step(proxy_driver, "kubernetes.manifest", inputs)
    assert info.value.endpoint == proxy.url
    result = run_step(proxy_driver, "kubernetes.manifest", inputs)
    assert result.outputs["objects"][0]["uid"]


def test_a_wait_outlives_dropped_connections(
        proxy_driver: KubernetesDriver, driver: KubernetesDriver, cluster: Cluster,
        proxy: FaultProxy) -> None:
    """STAND-IN for the network: the proxy drops the wait's next five reads."""
    name = unique("cm")
    run_step(driver, "kubernetes.manifest",
             {"manifest": configmap(name, cluster.namespace, ready="no")})
    proxy_driver.cluster()
    proxy.inject(DROP, method="GET", path_contains=f"/configmaps/{name}", times=5)
    flip = later(1.5, lambda: run_step(driver, "kubernetes.manifest", {
        "manifest": configmap(name, cluster.namespace, ready="yes")}))
    result = run_step(proxy_driver, "kubernetes.wait", {
        "kind": "ConfigMap", "name": name, "namespace": cluster.namespace,
        "field": "data.ready", "value": "yes"}, timeout=30)
    flip.join()
    assert not flip.errors  # type: ignore[attr-defined]
    assert result.outputs["state"] == "data.ready='yes'"
    assert proxy.faults[0].times == 0  # every drop was met, and the wait went on


@pytest.mark.slow
def test_apply_while_the_api_server_is_down_is_transient(
        server: KubeServer, driver: KubernetesDriver, cluster: Cluster) -> None:
    driver.cluster()
    server.stop_apiserver()
    try:
        with pytest.raises(TransientError, match=r"connection refused|connection closed"):
            run_step(driver, "kubernetes.manifest",
                     {"manifest": configmap(unique("cm"), cluster.namespace)})
    finally:
        server.start_apiserver()
    run_step(driver, "kubernetes.manifest",
             {"manifest": configmap(unique("cm"), cluster.namespace)})


@pytest.mark.slow
def test_a_wait_outlives_a_restart_of_the_real_api_server(
        server: KubeServer, driver: KubernetesDriver, cluster: Cluster) -> None:
    name = unique("cm")
    run_step(driver, "kubernetes.manifest",
             {"manifest": configmap(name, cluster.namespace, ready="no")})

    def restart_then_flip() -> None:
        server.restart_apiserver(down=1.0)
        run_step(driver, "kubernetes.manifest",
                 {"manifest": configmap(name, cluster.namespace, ready="yes")})
    flip = later(0.5, restart_then_flip)
    result = run_step(driver, "kubernetes.wait", {
        "kind": "ConfigMap", "name": name, "namespace": cluster.namespace,
        "field": "data.ready", "value": "yes"}, timeout=120)
    flip.join()
    assert not flip.errors  # type: ignore[attr-defined]
    assert result.outputs["waited"] >= 1.0
    assert result.outputs["state"] == "data.ready='yes'"
