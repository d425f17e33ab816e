"""A connection to one cluster: an ``ApiClient`` from a kubeconfig context and the dynamic
client over it.

Every request is bounded by the settings' timeout (discovery included, which the dynamic
client would otherwise send without one), urllib3 does not retry on its own (the executor's
policy does, on classified errors), and discovery is cached in a private temporary file so
that one run never reads another cluster's or another run's stale resource list.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

from drivers.kubernetes.errors import translate
from drivers.kubernetes.settings import KubernetesSettings


@dataclass
class Cluster:
    """One API server as the kubeconfig context describes it."""

    api: Any          # kubernetes.client.ApiClient
    dynamic: Any      # kubernetes.dynamic.DynamicClient
    endpoint: str     # the API server URL, for error messages and logs
    context: str
    secrets: tuple[str, ...] = ()
    _cache_dir: str = field(default="", repr=False)

    def close(self) -> None:
        try:
            self.api.close()
        finally:
            if self._cache_dir:
                shutil.rmtree(self._cache_dir, ignore_errors=True)


def _bounded(api: Any, timeout: float) -> None:
    """Give every request of ``api`` a timeout unless the caller set one."""
    original = api.rest_client.request

    def request(*args: Any, _request_timeout: Any = None, **kwargs: Any) -> Any:
        return original(*args, _request_timeout=_request_timeout or timeout, **kwargs)

    api.rest_client.request = request


def _credentials(configuration: Any) -> tuple[str, ...]:
    """Token values the configuration holds, so that error texts can be scrubbed of them."""
    values: list[str] = []
    for value in (configuration.api_key or {}).values():
        if value:
            values.append(str(value))
            values.append(str(value).removeprefix("Bearer ").strip())
    if configuration.password:
        values.append(str(configuration.password))
    return tuple(v for v in values if v)


def open_cluster(settings: KubernetesSettings, context: str = "") -> Cluster:
    """Connect to the cluster of ``context`` (or the settings' or the current one).

    Raises :class:`~orchestrator.errors.PermanentError` for a kubeconfig that cannot be
    loaded, and the classified error of the first failed discovery request.
    """
    from kubernetes import client, config
    from kubernetes.dynamic import DynamicClient

    context = context or settings.context
    path = os.path.expanduser(settings.kubeconfig) if settings.kubeconfig else None
    where = path or os.environ.get("KUBECONFIG", "~/.kube/config")
    configuration = client.Configuration()
    try:
        config.load_kube_config(config_file=path, context=context or None,
                                client_configuration=configuration, persist_config=False)
    except Exception as exc:
        raise translate(exc, endpoint=f"kubeconfig:{where}", operation="load kubeconfig") \
            from None
    configuration.retries = 0  # before the pool exists: urllib3 would retry 3 times unseen
    api = client.ApiClient(configuration)
    _bounded(api, settings.request_timeout)
    endpoint = str(configuration.host)
    secrets = _credentials(configuration)
    cache_dir = tempfile.mkdtemp(prefix="orch-k8s-")
    try:
        dynamic = DynamicClient(api, cache_file=os.path.join(cache_dir, "discovery.json"))
    except Exception as exc:
        shutil.rmtree(cache_dir, ignore_errors=True)
        api.close()
        raise translate(exc, endpoint=endpoint, operation="discover API resources",
                        secrets=secrets) from None
    return Cluster(api, dynamic, endpoint, context, secrets, cache_dir)
