"""The Kubernetes driver's settings, each with a type, a default and a one-line description."""

from __future__ import annotations

from typing import Annotated

import msgspec


class KubernetesSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    kubeconfig: Annotated[str, msgspec.Meta(
        description="kubeconfig file (empty: $KUBECONFIG, then ~/.kube/config), or a secret "
                    "reference to one (published:NAME, file:PATH, env:NAME) resolved when a "
                    "step first needs the cluster; a step's `kubeconfig` input overrides "
                    "it")] = ""
    context: Annotated[str, msgspec.Meta(
        description="kubeconfig context (empty: the current context); a step's `cluster` "
                    "input overrides it")] = ""
    field_manager: Annotated[str, msgspec.Meta(
        min_length=1, description="field manager named in server-side apply")] = "orch"
    request_timeout: Annotated[float, msgspec.Meta(
        gt=0, description="seconds one API request may take")] = 30.0
    poll_interval: Annotated[float, msgspec.Meta(
        gt=0, description="seconds between reads while waiting for a condition or a "
                          "deletion")] = 2.0
    manifests_dir: Annotated[str, msgspec.Meta(
        description="directory a relative `file` input is read from")] = "manifests"
    wait_for_deletion: Annotated[bool, msgspec.Meta(
        description="on delete, wait until the objects are gone (finalizers done)")] = True
