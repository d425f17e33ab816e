"""The driver conformance kit (orchestrator.testing) on the Kubernetes driver, against the
genuine kube-apiserver the Kubernetes tier starts (:mod:`realserver`). The step reaches the
server through a per-step kubeconfig given as a secret reference, so the kit can check that
the token it holds never comes back in outputs, reads or errors."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from kube_harness import Cluster, configmap, unique
from realserver import KubeServer, kubeconfig_text

from drivers.kubernetes import KubernetesDriver
from orchestrator.step import Step
from orchestrator.testing import CHECKS, Case


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _case(server: KubeServer, cluster: Cluster, tmp_path: Path) -> Case:
    kubeconfig = tmp_path / "token.kubeconfig"
    kubeconfig.write_text(server.kubeconfig(token=server.admin_token), encoding="utf-8")
    inputs = {"manifest": configmap(unique("conform"), cluster.namespace, colour="green"),
              "kubeconfig": {"$secret": f"file:{kubeconfig}"}}
    step = Step("test/conform", "kubernetes.manifest", "kubernetes", "conform", "test",
                inputs, endpoint="k8s:conform")
    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(kubeconfig_text(f"https://127.0.0.1:{_closed_port()}", ca=server.ca_file,
                                    token=server.admin_token), encoding="utf-8")
    failing = Step("test/refused", "kubernetes.manifest", "kubernetes", "refused", "test",
                   {"manifest": configmap(unique("never"), cluster.namespace),
                    "kubeconfig": {"$secret": f"file:{dead}"}}, endpoint="k8s:refused")
    return Case(step, failing, secrets=(server.admin_token,), timeout=60)


@pytest.mark.slow
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_the_kubernetes_driver_conforms(check, server: KubeServer, cluster: Cluster,
                                        driver: KubernetesDriver, tmp_path: Path) -> None:
    check(driver, _case(server, cluster, tmp_path))
