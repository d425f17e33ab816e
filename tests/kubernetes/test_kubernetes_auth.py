"""Authentication, TLS and RBAC against the real kube-apiserver: a bearer token and a client
certificate each work; the server's certificate is verified against the test CA and refused
without it; a token bound to a read-only role (get, list, watch) reads but cannot apply, and the
refusal is a permanent error naming the verb and the resource; a refused token is never
shown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kube_harness import Cluster, ListLog, run_step, unique
from realserver import KubeServer

from drivers.kubernetes import KubernetesDriver
from drivers.kubernetes.objects import get_object
from drivers.kubernetes.settings import KubernetesSettings
from orchestrator.errors import PermanentError


@pytest.fixture
def driver_for(tmp_path: Path) -> Iterator[object]:
    drivers: list[KubernetesDriver] = []

    def make(text: str) -> KubernetesDriver:
        path = tmp_path / f"kubeconfig-{len(drivers)}"
        path.write_text(text, encoding="utf-8")
        drivers.append(KubernetesDriver(KubernetesSettings(kubeconfig=str(path))))
        return drivers[-1]
    yield make
    for drv in drivers:
        drv.close()


def configmap(cluster: Cluster) -> dict[str, object]:
    return {"manifest": {"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": unique("cm"), "namespace": cluster.namespace},
                         "data": {"k": "v"}}}


@pytest.mark.parametrize("how", ["token", "client certificate"])
def test_token_and_client_certificate_both_authenticate(
        server: KubeServer, cluster: Cluster, driver_for: object, how: str) -> None:
    text = server.kubeconfig(cert=True) if how == "client certificate" else server.kubeconfig()
    driver = driver_for(text)  # type: ignore[operator]
    result = run_step(driver, "kubernetes.manifest", configmap(cluster))
    [ref] = result.outputs["objects"]
    assert get_object(driver.cluster(), ref)["data"] == {"k": "v"}  # type: ignore[index]
    assert driver.cluster().endpoint == server.url


def test_without_the_ca_the_servers_certificate_is_refused_permanently(
        server: KubeServer, driver_for: object) -> None:
    driver = driver_for(server.kubeconfig(ca=False))  # type: ignore[operator]
    with pytest.raises(PermanentError, match="TLS") as info:
        driver.cluster()
    assert info.value.endpoint == server.url


def test_a_refused_token_is_permanent_and_never_shown(server: KubeServer,
                                                      driver_for: object) -> None:
    wrong = "wrong-token-0123456789abcdef"
    driver = driver_for(server.kubeconfig(token=wrong))  # type: ignore[operator]
    with pytest.raises(PermanentError) as info:
        driver.cluster()
    assert "HTTP 401" in str(info.value) and "credentials" in info.value.hint
    assert wrong not in info.value.render()


def test_a_read_only_token_reads_but_its_apply_is_denied_naming_verb_and_resource(
        server: KubeServer, cluster: Cluster, driver: KubernetesDriver,
        driver_for: object) -> None:
    inputs = configmap(cluster)
    ref = run_step(driver, "kubernetes.manifest", inputs).outputs["objects"][0]
    viewer = driver_for(server.kubeconfig(token=server.readonly_token))  # type: ignore[operator]
    assert get_object(viewer.cluster(), ref) is not None  # the view role may read

    log = ListLog()
    with pytest.raises(PermanentError) as info:
        run_step(viewer, "kubernetes.manifest", inputs, log=log)
    err = info.value
    assert "HTTP 403 Forbidden" in str(err)
    assert 'User "viewer" cannot patch resource "configmaps"' in str(err)
    assert f'in the namespace "{cluster.namespace}"' in str(err)
    assert "RBAC" in err.hint
    assert server.readonly_token not in err.render()
    assert not any(server.readonly_token in event for event in log.events)
