"""The OpenStack driver's settings, each with a type, a default and a one-line description."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec


class OpenStackSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    cloud: Annotated[str, msgspec.Meta(
        description="cloud name in clouds.yaml (empty: use auth_type and auth); a step's "
                    "`cloud` input (a name, or {name, clouds_yaml}) overrides it")] = ""
    clouds_yaml: Annotated[str, msgspec.Meta(
        description="clouds.yaml holding `cloud`: a file (empty: where openstacksdk looks) "
                    "or a secret reference, usually what the layer that built the cloud "
                    "published (published:clouds/NAME); a step may hand one over instead: "
                    "cloud: {name, clouds_yaml: {$secret: REF}}")] = ""
    auth_type: Annotated[str, msgspec.Meta(
        description="keystoneauth plugin when no cloud is named: password, "
                    "v3applicationcredential, none (standalone Ironic)")] = "password"
    auth: Annotated[dict[str, Any], msgspec.Meta(
        description="auth_url, username, project_name ...; secrets as {$secret: REF}")] = {}
    region: Annotated[str, msgspec.Meta(description="region name (empty: the cloud's)")] = ""
    endpoints: Annotated[dict[str, str], msgspec.Meta(
        description="service type -> endpoint URL override, e.g. baremetal: "
                    "http://127.0.0.1:6385 for a standalone Ironic")] = {}
    verify_tls: Annotated[bool, msgspec.Meta(
        description="verify the API's TLS certificate")] = True
    ca_bundle: Annotated[str, msgspec.Meta(
        description="CA bundle file for the API's certificate")] = ""
    api_timeout: Annotated[float, msgspec.Meta(
        gt=0, description="seconds one API request may take")] = 30.0
    poll_interval: Annotated[float, msgspec.Meta(
        gt=0, description="seconds between reads while waiting for a state")] = 2.0
