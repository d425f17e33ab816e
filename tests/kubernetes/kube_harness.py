"""Helpers shared by the Kubernetes driver tests: the cluster under test and a step runner.

(A module of its own, not ``conftest``: test modules import it by a name no other test
directory uses.)
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from realserver import KubeServer

from drivers.kubernetes import KubernetesDriver
from drivers.kubernetes.settings import KubernetesSettings
from orchestrator.driver import ApplyRequest, ApplyResult
from orchestrator.plan import Action
from orchestrator.step import Step

REAL_KUBECONFIG = os.environ.get("ORCH_TEST_KUBECONFIG", "")


class ListLog:
    """A structlog-like logger that keeps what it was given, to check nothing leaks."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def __getattr__(self, level: str) -> Callable[..., None]:
        def log(event: str, **fields: Any) -> None:
            self.events.append(f"{level} {event} {fields}")
        return log


@dataclass
class Cluster:
    kubeconfig: Path
    context: str
    namespace: str
    server: KubeServer | None  # the local kube-apiserver; None with ORCH_TEST_KUBECONFIG

    @property
    def local(self) -> bool:
        return self.server is not None

    def settings(self, **overrides: Any) -> KubernetesSettings:
        values: dict[str, Any] = {"kubeconfig": str(self.kubeconfig), "context": self.context,
                                  "poll_interval": 0.2 if self.local else 2.0,
                                  "request_timeout": 10.0}
        return KubernetesSettings(**{**values, **overrides})


def run_step(driver: KubernetesDriver, kind: str, inputs: Mapping[str, Any], *,
             action: Action = Action.CREATE, prior: Mapping[str, Any] | None = None,
             timeout: float = 60.0, log: Any = None) -> ApplyResult:
    step = Step(id=f"test/{kind}", kind=kind, driver="kubernetes", component="test",
                layer="test", inputs=dict(inputs), endpoint="k8s:test")
    request = ApplyRequest(step=step, action=action, inputs=dict(inputs),
                           prior_outputs=dict(prior or {}), upstream={},
                           deadline=time.monotonic() + timeout, log=log or ListLog())
    return driver.apply(request)


def step_of(kind: str, inputs: Mapping[str, Any]) -> Step:
    return Step(id=f"test/{kind}", kind=kind, driver="kubernetes", component="test",
                layer="test", inputs=dict(inputs), endpoint="k8s:test")


def configmap(name: str, namespace: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace}, "data": data}


def deployment(app: str, namespace: str, /, **container: Any) -> dict[str, Any]:
    """A one-replica Deployment ``app`` whose pods carry ``app: APP`` and one container."""
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": app, "namespace": namespace},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": app}},
                     "template": {"metadata": {"labels": {"app": app}},
                                  "spec": {"containers": [container]}}}}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def served(driver: KubernetesDriver, api_version: str, kind: str) -> None:
    """On ORCH_TEST_KUBECONFIG's cluster, skip kinds it does not serve; the local server has
    the genuine CRDs loaded, so there a missing kind fails."""
    from kubernetes.dynamic.exceptions import ResourceNotFoundError

    try:
        driver.cluster().dynamic.resources.get(api_version=api_version, kind=kind)
    except ResourceNotFoundError:
        if os.environ.get("ORCH_TEST_KUBECONFIG"):
            pytest.skip(f"the cluster does not serve {kind} ({api_version})")
        raise
