"""A connection to one cloud: ``openstack.connect`` from a clouds.yaml name or from the
driver's auth settings, with secret references resolved only here.

Requests are bounded by ``api_timeout``; keystoneauth does not retry on its own (the
executor's policy does, on classified errors).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from drivers.openstack.errors import translate
from drivers.openstack.settings import OpenStackSettings
from orchestrator.secrets import Secret, resolve_inputs


@dataclass
class Cloud:
    conn: Any            # openstack.connection.Connection
    name: str            # the cloud's label in messages
    endpoints: Mapping[str, str]
    secrets: tuple[str, ...] = ()

    def endpoint(self, service: str) -> str:
        """The service's URL for messages: the override, or the cloud's label."""
        return self.endpoints.get(service) or self.name

    def close(self) -> None:
        self.conn.close()


def _reveal(value: Any, found: list[str]) -> Any:
    if isinstance(value, Secret):
        found.append(value.reveal())
        return value.reveal()
    if isinstance(value, Mapping):
        return {k: _reveal(v, found) for k, v in value.items()}
    return value


def open_cloud(settings: OpenStackSettings, cloud: str = "") -> Cloud:
    """Connect (lazily: the SDK authenticates on the first request) to ``cloud`` or to the
    settings' auth. Raises PermanentError for a cloud or auth that cannot be configured."""
    import openstack

    cloud = cloud or settings.cloud
    secrets: list[str] = []
    common: dict[str, Any] = {
        "api_timeout": settings.api_timeout, "connect_retries": 0, "status_code_retries": 0,
        "verify": settings.ca_bundle or settings.verify_tls, "load_envvars": False,
    }
    if settings.region:
        common["region_name"] = settings.region
    for service, url in settings.endpoints.items():
        common[f"{service.replace('-', '_')}_endpoint_override"] = url
    label = f"cloud:{cloud}" if cloud else str(settings.auth.get("auth_url") or
                                               next(iter(settings.endpoints.values()), "-"))
    # an unset secret raises SecretError (with its hint) here, before any request
    auth = _reveal(resolve_inputs(dict(settings.auth)), secrets) if not cloud else {}
    try:
        if cloud:
            conn = openstack.connect(cloud=cloud, **common)
        else:
            conn = openstack.connect(auth_type=settings.auth_type, auth=auth,
                                     load_yaml_config=False, **common)
    except Exception as exc:
        raise translate(exc, endpoint=label, operation="configure cloud",
                        secrets=secrets) from None
    return Cloud(conn, label, dict(settings.endpoints), tuple(secrets))
