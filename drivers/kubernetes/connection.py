"""A connection to one cluster: an ``ApiClient`` from a kubeconfig context and the dynamic
client over it.

The kubeconfig is a file path (the ``kubeconfig`` setting, ``$KUBECONFIG``, then
``~/.kube/config``) or a secret: a step's ``kubeconfig`` input resolved by the executor
(``{$secret: published:kubeconfig/mgmt}``, what the layer that built the cluster published), or
a reference string in the setting (``published:NAME``, ``file:PATH``, ``env:NAME``) resolved
here, when the first step needs the cluster. A secret kubeconfig is parsed in memory; the
client and its key are written only into a private 0700 directory (the client library needs
files for TLS) that is removed when the connection closes.

Every request is bounded by the settings' timeout (discovery included, which the dynamic
client would otherwise send without one), urllib3 does not retry on its own (the executor's
policy does, on classified errors), and discovery is cached in a private temporary file so
that one run never reads another cluster's or another run's stale resource list.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from drivers.kubernetes.errors import translate
from drivers.kubernetes.settings import KubernetesSettings
from orchestrator import secrets as orch_secrets
from orchestrator.errors import PermanentError


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
                _forget_key_files(self._cache_dir)
                shutil.rmtree(self._cache_dir, ignore_errors=True)


@dataclass(frozen=True)
class Kubeconfig:
    """Where a connection's kubeconfig comes from: a file ``path``, or the ``text`` of a
    secret (with its ``reference`` for messages: never the text itself)."""

    path: str = ""
    text: str = field(default="", repr=False)
    reference: str = ""

    @property
    def key(self) -> str:
        """Identifies the kubeconfig for the connection cache, without holding its text."""
        if self.text:
            return "sha256:" + hashlib.sha256(self.text.encode()).hexdigest()
        return "path:" + self.path

    @property
    def where(self) -> str:
        return self.reference or self.path or os.environ.get("KUBECONFIG", "~/.kube/config")


def kubeconfig_of(value: Any, settings: KubernetesSettings) -> Kubeconfig:
    """The kubeconfig a step names (its ``kubeconfig`` input: a resolved secret, a
    ``{$secret: REF}`` not yet resolved -- as :meth:`read` sees it -- or a path), else the
    settings' (a path, or a reference string such as ``published:kubeconfig/mgmt``).

    Raises :class:`~orchestrator.errors.SecretError` when a reference cannot be resolved.
    """
    if value in (None, ""):
        value = settings.kubeconfig
    if isinstance(value, str) and orch_secrets.check_reference(value) is None:
        value = orch_secrets.ref(value)  # `published:NAME` written without {$secret: ...}
    if orch_secrets.is_ref_value(value):
        value = orch_secrets.resolve(str(value[orch_secrets.SECRET_KEY]))
    if isinstance(value, orch_secrets.Secret):
        return Kubeconfig(text=value.reveal(), reference=value.reference)
    if isinstance(value, str):
        return Kubeconfig(path=os.path.expanduser(value) if value else "")
    raise PermanentError("input `kubeconfig` is a secret reference ({$secret: published:NAME} "
                         "or file:PATH) or a path", endpoint="kubeconfig",
                         operation="load kubeconfig")


def _forget_key_files(directory: str) -> None:
    """The client library caches the files it wrote by content; drop those in ``directory``
    so a later connection with the same kubeconfig writes them again."""
    try:
        from kubernetes.config import kube_config
    except ImportError:
        return
    cache = getattr(kube_config, "_temp_files", None)
    if isinstance(cache, dict):
        for content, name in list(cache.items()):
            if str(name).startswith(directory + os.sep):
                cache.pop(content, None)


def _kubeconfig_secrets(doc: Mapping[str, Any]) -> list[str]:
    """Values in a parsed kubeconfig that must never be shown: tokens, passwords, keys."""
    values: list[str] = []
    for user in doc.get("users") or ():
        spec = user.get("user") if isinstance(user, Mapping) else None
        if not isinstance(spec, Mapping):
            continue
        for key in ("token", "password", "client-key-data"):
            if spec.get(key):
                values.append(str(spec[key]))
        if spec.get("client-key-data"):
            with contextlib.suppress(ValueError):
                pem = base64.b64decode(str(spec["client-key-data"])).decode()
                values += [line for line in pem.splitlines() if len(line) > 16]
    return values


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


def _load(kubeconfig: Kubeconfig, context: str, configuration: Any,
          key_dir: str) -> tuple[str, ...]:
    """Fill ``configuration`` from the kubeconfig; returns the secret values it holds."""
    from kubernetes import config

    where = f"kubeconfig:{kubeconfig.where}"
    if not kubeconfig.text:
        try:
            config.load_kube_config(config_file=kubeconfig.path or None,
                                    context=context or None,
                                    client_configuration=configuration, persist_config=False)
        except Exception as exc:
            raise translate(exc, endpoint=where, operation="load kubeconfig") from None
        return ()
    try:
        doc = yaml.safe_load(kubeconfig.text)
    except yaml.YAMLError:
        doc = None  # the parser's message would quote the text: say only where
    if not isinstance(doc, Mapping):
        raise PermanentError("the kubeconfig is not a YAML mapping", endpoint=where,
                             operation="load kubeconfig",
                             hint="check what the publishing step wrote")
    hidden = tuple(_kubeconfig_secrets(doc))
    orch_secrets.remember(*hidden)
    try:
        config.load_kube_config_from_dict(dict(doc), context=context or None,
                                          client_configuration=configuration,
                                          persist_config=False, temp_file_path=key_dir)
    except Exception as exc:
        raise translate(exc, endpoint=where, operation="load kubeconfig",
                        secrets=hidden) from None
    return hidden


def open_cluster(settings: KubernetesSettings, context: str = "",
                 kubeconfig: Kubeconfig | None = None) -> Cluster:
    """Connect to the cluster of ``context`` (or the settings' or the current one) through
    ``kubeconfig`` (default: the settings').

    Raises :class:`~orchestrator.errors.PermanentError` for a kubeconfig that cannot be
    loaded, and the classified error of the first failed discovery request.
    """
    from kubernetes import client
    from kubernetes.dynamic import DynamicClient

    context = context or settings.context
    kubeconfig = kubeconfig or kubeconfig_of(None, settings)
    configuration = client.Configuration()
    cache_dir = tempfile.mkdtemp(prefix="orch-k8s-")  # 0700
    try:
        hidden = _load(kubeconfig, context, configuration, os.path.join(cache_dir, "tls"))
    except BaseException:
        _forget_key_files(cache_dir)
        shutil.rmtree(cache_dir, ignore_errors=True)
        raise
    configuration.retries = 0  # before the pool exists: urllib3 would retry 3 times unseen
    api = client.ApiClient(configuration)
    _bounded(api, settings.request_timeout)
    endpoint = str(configuration.host)
    secrets = _credentials(configuration) + hidden
    try:
        dynamic = DynamicClient(api, cache_file=os.path.join(cache_dir, "discovery.json"))
    except Exception as exc:
        _forget_key_files(cache_dir)
        shutil.rmtree(cache_dir, ignore_errors=True)
        api.close()
        raise translate(exc, endpoint=endpoint, operation="discover API resources",
                        secrets=secrets) from None
    return Cluster(api, dynamic, endpoint, context, secrets, cache_dir)
