"""A connection to one cloud: ``openstack.connect`` from a clouds.yaml entry (handed over by
the step that built the cloud, as a secret reference -- ``published:clouds/NAME`` -- in a
step's ``cloud`` input or in the driver's ``clouds_yaml`` setting; or a name in the
``clouds_yaml`` file) or from the driver's auth settings, with secret references resolved
only here.

Requests are bounded by ``api_timeout``; keystoneauth does not retry on its own (the
executor's policy does, on classified errors).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.openstack.errors import translate
from drivers.openstack.settings import OpenStackSettings
from orchestrator.errors import PermanentError
from orchestrator.secrets import Secret, is_reference, looks_secret, resolve, resolve_inputs


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


CloudRef = str | Mapping[str, Any]


def cloud_key(cloud: CloudRef) -> str:
    """The driver's cache key for a ``cloud`` input (a hash of a handed-over clouds.yaml: the
    text itself is a secret)."""
    if isinstance(cloud, Mapping):
        text = cloud.get("clouds_yaml")
        text = text.reveal() if isinstance(text, Secret) else str(text or "")
        return f"{cloud.get('name', '')}#{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    return cloud


def cloud_entry(text: str, name: str, where: str) -> dict[str, Any]:
    """The ``clouds: NAME:`` entry of a clouds.yaml text. Raises PermanentError."""
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise PermanentError(f"{where}{line}: not valid YAML", endpoint=where,
                             operation="read clouds.yaml") from None
    clouds = doc.get("clouds") if isinstance(doc, Mapping) else None
    entry = clouds.get(name) if isinstance(clouds, Mapping) else None
    if not isinstance(entry, Mapping):
        names = ", ".join(sorted(clouds)) if isinstance(clouds, Mapping) else "none"
        raise PermanentError(f"{where} has no cloud {name!r} (it has: {names})",
                             endpoint=where, operation="read clouds.yaml",
                             hint="name one of its clouds")
    return dict(entry)


def _entry_secrets(entry: Mapping[str, Any]) -> list[str]:
    auth = entry.get("auth")
    return [str(v) for k, v in dict(auth if isinstance(auth, Mapping) else {}).items()
            if looks_secret(k) and v]


def _handed_over(settings: OpenStackSettings, cloud: CloudRef) -> tuple[str, dict[str, Any]]:
    """(label, clouds.yaml entry) for a step's ``{name, clouds_yaml}`` or for a name looked up
    in the settings' ``clouds_yaml`` (a file, or a secret reference such as
    ``published:clouds/NAME``); ("", {}) when the SDK's own lookup applies.
    Raises PermanentError, or SecretError for a reference that cannot be read."""
    if isinstance(cloud, Mapping):
        name = str(cloud.get("name") or "")
        text = cloud.get("clouds_yaml")
        if not name or text is None:
            raise PermanentError("a step's `cloud` mapping needs `name` and `clouds_yaml` "
                                 "(a secret reference: {$secret: file:PATH})",
                                 endpoint="-", operation="configure cloud")
        if not isinstance(text, Secret):
            raise PermanentError("`cloud.clouds_yaml` must be a secret reference "
                                 "({$secret: file:PATH}): it holds credentials",
                                 endpoint=f"cloud:{name}", operation="configure cloud")
        return f"cloud:{name}", cloud_entry(text.reveal(), name, f"cloud:{name}")
    if cloud and settings.clouds_yaml and is_reference(settings.clouds_yaml):
        # `published:clouds/NAME` (what the layer that built the cloud handed over) or
        # `file:PATH`: a secret, read only now
        handed = resolve(settings.clouds_yaml)
        return f"cloud:{cloud}", cloud_entry(handed.reveal(), cloud, f"cloud:{cloud}")
    if cloud and settings.clouds_yaml:
        path = Path(os.path.expanduser(settings.clouds_yaml))
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PermanentError(f"clouds_yaml {path} cannot be read: {exc.strerror}",
                                 endpoint=f"cloud:{cloud}", operation="read clouds.yaml",
                                 hint="check the driver setting clouds_yaml") from None
        return f"cloud:{cloud}", cloud_entry(text, cloud, str(path))
    return "", {}


def open_cloud(settings: OpenStackSettings, cloud: CloudRef = "") -> Cloud:
    """Connect (lazily: the SDK authenticates on the first request) to ``cloud``: a step's
    handed-over ``{name, clouds_yaml}``, a name in the settings' ``clouds_yaml`` file (or,
    without one, where openstacksdk looks), or the settings' auth. Raises PermanentError for
    a cloud or auth that cannot be configured."""
    import openstack

    if not cloud:
        cloud = settings.cloud
    secrets: list[str] = []
    common: dict[str, Any] = {
        "api_timeout": settings.api_timeout, "connect_retries": 0, "status_code_retries": 0,
        "verify": settings.ca_bundle or settings.verify_tls, "load_envvars": False,
    }
    if settings.region:
        common["region_name"] = settings.region
    for service, url in settings.endpoints.items():
        common[f"{service.replace('-', '_')}_endpoint_override"] = url
    label, entry = _handed_over(settings, cloud)
    if not label:
        label = f"cloud:{cloud}" if cloud else str(settings.auth.get("auth_url") or
                                                   next(iter(settings.endpoints.values()), "-"))
    # an unset secret raises SecretError (with its hint) here, before any request
    auth = _reveal(resolve_inputs(dict(settings.auth)), secrets) if not cloud else {}
    secrets += _entry_secrets(entry)
    try:
        if entry:
            conn = openstack.connect(load_yaml_config=False, **{**entry, **common})
        elif cloud:
            conn = openstack.connect(cloud=str(cloud), **common)
        else:
            conn = openstack.connect(auth_type=settings.auth_type, auth=auth,
                                     load_yaml_config=False, **common)
    except Exception as exc:
        raise translate(exc, endpoint=label, operation="configure cloud",
                        secrets=secrets) from None
    return Cloud(conn, label, dict(settings.endpoints), tuple(secrets))
