"""API errors become classified orch errors naming the API server and the operation, and no
token ever appears in them. The server is the real kube-apiserver; answers it cannot be made
to give on demand (5xx, 409 and 429 with Retry-After, a slow answer, a proxy echoing the
token) are injected by the fault proxy in front of it (a stand-in, named in each test)."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest
from faultproxy import FaultProxy
from kube_harness import Cluster, ListLog, run_step, served, unique
from realserver import KubeServer

from drivers.kubernetes import KubernetesDriver
from drivers.kubernetes.settings import KubernetesSettings
from orchestrator.errors import PermanentError, TransientError


def cm_inputs(cluster: Cluster) -> dict[str, Any]:
    return {"manifest": {"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": unique("cm"), "namespace": cluster.namespace}}}


# -- what the real server answers ----------------------------------------------------------
def test_an_invalid_object_is_a_permanent_422_naming_the_field(
        driver: KubernetesDriver, cluster: Cluster) -> None:
    name = unique("web")
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": name, "namespace": cluster.namespace},
                  "spec": {"replicas": -1, "selector": {"matchLabels": {"app": name}},
                           "template": {"metadata": {"labels": {"app": name}},
                                        "spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    with pytest.raises(PermanentError) as info:
        run_step(driver, "kubernetes.manifest", {"manifest": deployment})
    err = info.value
    assert "HTTP 422 Invalid" in str(err) and "spec.replicas" in str(err)
    assert "schema" in err.hint and "spec.replicas" in err.hint
    assert err.operation == f"apply Deployment {cluster.namespace}/{name}"


def test_a_wrong_field_type_on_a_custom_resource_is_the_servers_500_yet_permanent(
        driver: KubernetesDriver, cluster: Cluster) -> None:
    """kube-apiserver 1.20 answers a server-side apply whose object does not fit the schema's
    structure (a map where the Multus CRD says string) with HTTP 500 "failed to create typed
    patch object"; the same object by POST gets 422. No retry can cure it: permanent, with
    the field path."""
    from kubernetes.client.exceptions import ApiException

    served(driver, "k8s.cni.cncf.io/v1", "NetworkAttachmentDefinition")
    nad = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
           "metadata": {"name": unique("nad"), "namespace": cluster.namespace},
           "spec": {"config": {"type": "bridge"}}}
    with pytest.raises(PermanentError) as info:
        run_step(driver, "kubernetes.manifest", {"manifest": nad})
    err = info.value
    if cluster.local:  # what 1.20 answers; newer servers may say 422 (permanent as well)
        assert "HTTP 500" in str(err) and "failed to create typed patch object" in str(err)
        assert "(field .spec.config)" in err.hint
    assert "schema" in err.hint
    # the same object by POST: the server's 422, as the classification assumes
    dyn = driver.cluster().dynamic
    resource = dyn.resources.get(api_version="k8s.cni.cncf.io/v1",
                                 kind="NetworkAttachmentDefinition")
    with pytest.raises(ApiException) as posted:
        dyn.create(resource, body=nad, namespace=cluster.namespace)
    assert posted.value.status == 422


def test_duplicate_list_keys_are_the_servers_500_yet_permanent(
        driver: KubernetesDriver, cluster: Cluster) -> None:
    name = unique("web")
    containers = [{"name": "c", "image": "a"}, {"name": "c", "image": "b"}]
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": name, "namespace": cluster.namespace},
                  "spec": {"selector": {"matchLabels": {"app": name}},
                           "template": {"metadata": {"labels": {"app": name}},
                                        "spec": {"containers": containers}}}}
    with pytest.raises(PermanentError, match="duplicate entries") as info:
        run_step(driver, "kubernetes.manifest", {"manifest": deployment})
    if cluster.local:
        assert "HTTP 500" in str(info.value)
        assert "(field .spec.template.spec.containers)" in info.value.hint


def test_a_missing_namespace_is_a_permanent_not_found(driver: KubernetesDriver) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x",
                                                                "namespace": "no-such-ns"}}
    with pytest.raises(PermanentError, match='HTTP 404 NotFound: namespaces "no-such-ns"'):
        run_step(driver, "kubernetes.manifest", {"manifest": cm})


def test_an_api_server_that_is_down_is_transient_and_fails_fast(
        tmp_path: Path, server: KubeServer) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"https://127.0.0.1:{port}"
    (tmp_path / "kubeconfig").write_text(server.kubeconfig().replace(server.url, url),
                                         encoding="utf-8")
    driver = KubernetesDriver(KubernetesSettings(kubeconfig=str(tmp_path / "kubeconfig")))
    started = time.monotonic()
    with pytest.raises(TransientError, match="connection refused") as info:
        driver.cluster()
    assert time.monotonic() - started < 2
    assert info.value.endpoint == url


def test_a_broken_kubeconfig_is_permanent(tmp_path: Path) -> None:
    (tmp_path / "kubeconfig").write_text("apiVersion: v1\nkind: Config\n", encoding="utf-8")
    driver = KubernetesDriver(KubernetesSettings(kubeconfig=str(tmp_path / "kubeconfig"),
                                                 context="nope"))
    with pytest.raises(PermanentError, match="kubeconfig") as info:
        driver.cluster()
    assert info.value.operation == "load kubeconfig"


# -- injected by the fault proxy (stand-in) in front of the real server -----------------------
@pytest.mark.parametrize("code", [500, 503, 409])
def test_server_errors_and_conflicts_are_transient(
        proxy_driver: KubernetesDriver, cluster: Cluster, proxy: FaultProxy, code: int) -> None:
    """STAND-IN: the fault proxy answers the PATCH; the retry reaches the real server."""
    proxy_driver.cluster()  # discovery first, so that the fault hits the apply
    proxy.inject(code, method="PATCH", message="etcdserver: request timed out")
    inputs = cm_inputs(cluster)
    with pytest.raises(TransientError) as info:
        run_step(proxy_driver, "kubernetes.manifest", inputs)
    err = info.value
    assert err.endpoint == proxy.url
    assert err.operation.startswith("apply ConfigMap ")
    assert f"HTTP {code}" in str(err) and "etcdserver: request timed out" in str(err)
    run_step(proxy_driver, "kubernetes.manifest", inputs)  # the retry the executor would make


def test_too_many_requests_is_transient_with_the_servers_retry_after(
        proxy_driver: KubernetesDriver, cluster: Cluster, proxy: FaultProxy) -> None:
    """STAND-IN: the fault proxy answers 429 (the real server's priority and fairness would
    need a flood of requests)."""
    proxy_driver.cluster()
    proxy.inject(429, method="PATCH", message="too many requests", retry_after=7)
    with pytest.raises(TransientError) as info:
        run_step(proxy_driver, "kubernetes.manifest", cm_inputs(cluster))
    assert info.value.retry_after == 7


def test_a_slow_api_server_times_out_transiently_within_the_request_timeout(
        cluster: Cluster, proxy: FaultProxy, server: KubeServer, tmp_path: Path) -> None:
    """STAND-IN: the fault proxy holds each request 2 s before forwarding it."""
    path = tmp_path / "kubeconfig"
    path.write_text(proxy.kubeconfig(server.admin_token), encoding="utf-8")
    driver = KubernetesDriver(KubernetesSettings(kubeconfig=str(path), request_timeout=0.5))
    try:
        driver.cluster()
        proxy.slow = 2.0
        started = time.monotonic()
        with pytest.raises(TransientError, match="timed out"):
            run_step(driver, "kubernetes.manifest", cm_inputs(cluster))
        assert time.monotonic() - started < 1.5
    finally:
        proxy.slow = 0.0
        driver.close()


def test_a_token_echoed_back_is_masked(proxy_driver: KubernetesDriver, cluster: Cluster,
                                       proxy: FaultProxy, server: KubeServer) -> None:
    """STAND-IN: a proxy or webhook that echoes the Authorization header must not leak it
    through us; the fault proxy plays that proxy."""
    proxy_driver.cluster()
    proxy.inject(500, method="PATCH", message=f"upstream saw Bearer {server.admin_token}")
    log = ListLog()
    with pytest.raises(TransientError) as info:
        run_step(proxy_driver, "kubernetes.manifest", cm_inputs(cluster), log=log)
    assert server.admin_token not in info.value.render()
    assert "********" in str(info.value)
    assert not any(server.admin_token in event for event in log.events)
