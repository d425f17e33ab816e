"""Opening a bounded sushy client for one BMC and finding the system a host names.

sushy's own retries are kept out of the way: its connector repeats a failed connection up
to ``server_side_retries`` times (3 when 0 is given) and a GET answered 5xx with a fixed
delay. Here it gets one connection attempt and at most one immediate GET repeat, so the
driver's tenacity policy alone decides how long a failing BMC is tried.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from drivers.redfish.settings import RedfishSettings
from orchestrator.errors import PermanentError
from orchestrator.secrets import Secret

MAC = re.compile(r"^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$", re.IGNORECASE)


@dataclass(frozen=True)
class BmcTarget:
    """A host's ``bmc:`` inputs, read once; ``password`` is the revealed value."""

    endpoint: str
    system: str
    username: str
    password: str = field(repr=False)  # revealed: never in a repr, log or error
    verify: bool | str

    @classmethod
    def from_inputs(cls, inputs: Mapping[str, Any]) -> BmcTarget:
        bmc = (inputs.get("host") or {}).get("bmc") or {}
        endpoint = str(bmc.get("endpoint") or "")
        if not endpoint:
            raise PermanentError("host has no bmc.endpoint", operation="redfish")
        if "://" not in endpoint:
            endpoint = f"https://{endpoint}"
        password = bmc.get("password")
        revealed = password.reveal() if isinstance(password, Secret) else (password or "")
        verify: bool | str = bool(bmc.get("verify_tls", True))
        if verify and bmc.get("ca_bundle"):
            verify = str(bmc["ca_bundle"])
        return cls(endpoint.rstrip("/"), str(bmc.get("system") or ""),
                   str(bmc.get("username") or ""), str(revealed), verify)


class _NoPublicNetwork:
    """Stands in for sushy's Internet connector (message registries): never reached out."""

    def get(self, url: str, *args: Any, **kwargs: Any) -> Any:
        import requests

        raise requests.ConnectionError(f"registry download from {url} disabled")


def open_client(target: BmcTarget, settings: RedfishSettings) -> Any:
    """A connected ``sushy.Sushy`` for ``target`` (GETs the service root, authenticates)."""
    import sushy
    from sushy import auth as sushy_auth
    from sushy import connector as sushy_connector

    conn = sushy_connector.Connector(
        target.endpoint, verify=target.verify, server_side_retries=1,
        server_side_retries_delay=0, default_request_timeout=settings.read_timeout,
        connect_timeout=settings.connect_timeout)
    auth_cls = sushy_auth.BasicAuth if settings.auth == "basic" else sushy_auth.SessionAuth
    auth = auth_cls(username=target.username, password=target.password)
    try:
        return sushy.Sushy(target.endpoint, auth=auth, connector=conn,
                           public_connector=_NoPublicNetwork())
    except BaseException:
        conn.close()
        raise


def close_client(client: Any) -> None:
    """Log out and drop the connection; failures here change nothing and are ignored."""
    auth = getattr(client, "_auth", None)
    try:
        if auth is not None:
            auth.close()
    except Exception:  # best effort: the session times out on the BMC anyway
        pass
    finally:
        client._auth = None  # keeps sushy's __del__ from trying again later
        client._conn.close()


def find_system(client: Any, wanted: str) -> Any:
    """The system ``wanted`` names by Redfish id, name, UUID or a NIC's MAC address.

    With ``wanted`` empty, the only system. Raises :class:`PermanentError` listing the
    systems there are when none matches.
    """
    members = list(client.get_system_collection().members_identities)
    if not wanted:
        if len(members) == 1:
            return client.get_system(members[0])
        raise PermanentError(f"bmc.system is empty and the BMC has {len(members)} systems",
                             operation="find system", endpoint=client._conn._url)
    for path in members:
        if path.rstrip("/").rsplit("/", 1)[-1] == wanted:
            return client.get_system(path)
    seen = []
    for path in members:
        system = client.get_system(path)
        seen.append(f"{system.identity} ({system.name})")
        if wanted in (system.name, system.uuid):
            return system
        if MAC.match(wanted) and _has_mac(system, wanted):
            return system
    raise PermanentError(f"no system matches {wanted!r}; the BMC lists: "
                         f"{', '.join(seen) or 'none'}", operation="find system",
                         endpoint=client._conn._url)


def _has_mac(system: Any, mac: str) -> bool:
    from sushy import exceptions as sx

    wanted = mac.lower().replace("-", ":")
    try:
        macs = system.ethernet_interfaces.summary
    except sx.MissingAttributeError:  # a system without NICs listed simply does not match
        return False
    return any(str(m).lower() == wanted for m in macs)
