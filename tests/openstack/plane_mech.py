"""THE SIMULATED PIECE of the test OpenStack plane (tests/openstack/plane.py): an ML2
mechanism driver that binds every port in place of Neutron's L2 and DHCP agents, which would
need a real datapath. Everything else in the plane is the real service. Loaded by
neutron-server (in the plane's own virtualenv) through the entry point ``orch_test_bind``
that the plane writes beside it; never imported by the tests themselves.

* A port bound to the fake-driver compute gets ``vif_type = tap`` (nothing is plugged).
* A port bound to the libvirt compute (host ``$ORCH_PLANE_LIBVIRT_HOST``, plane_libvirt.py)
  gets ``vif_type = bridge`` on the Linux bridge ``$ORCH_PLANE_BRIDGE`` that the harness
  made on the machine (libvirt adds the guest's tap to it), and its MAC -> fixed IP goes
  into dnsmasq's hosts directory ``$ORCH_PLANE_DHCP_HOSTS`` (dnsmasq rereads it by itself),
  so the guest's own DHCP client gets the address Neutron allocated.
"""

import contextlib
import os

from neutron_lib import constants
from neutron_lib.plugins.ml2 import api


def _hosts_file(port_id: str) -> str:
    return os.path.join(os.environ.get("ORCH_PLANE_DHCP_HOSTS", ""), port_id)


class BindEveryPort(api.MechanismDriver):
    """Binds each port to the first segment offered, as an L2 agent would once wired."""

    def initialize(self) -> None:
        pass

    def bind_port(self, context) -> None:  # type: ignore[no-untyped-def]
        libvirt_host = os.environ.get("ORCH_PLANE_LIBVIRT_HOST", "")
        bridged = bool(libvirt_host) and context.host == libvirt_host
        for segment in context.segments_to_bind:
            if bridged:
                self._dhcp_entry(context.current)
                context.set_binding(segment[api.ID], "bridge",
                                    {"port_filter": False,
                                     "bridge_name": os.environ["ORCH_PLANE_BRIDGE"]},
                                    status=constants.PORT_STATUS_ACTIVE)
            else:
                context.set_binding(segment[api.ID], "tap", {"port_filter": False},
                                    status=constants.PORT_STATUS_ACTIVE)
            return

    def _dhcp_entry(self, port) -> None:  # type: ignore[no-untyped-def]
        ips = [ip["ip_address"] for ip in port.get("fixed_ips") or () if ":" not in
               ip["ip_address"]]
        if not ips or not os.environ.get("ORCH_PLANE_DHCP_HOSTS"):
            return
        path = _hosts_file(port["id"])
        tmp = _hosts_file("." + port["id"])  # dnsmasq skips dot files: never half-read
        with open(tmp, "w") as fh:
            fh.write(f"{port['mac_address']},{ips[0]}\n")
        os.replace(tmp, path)

    def delete_port_postcommit(self, context) -> None:  # type: ignore[no-untyped-def]
        if os.environ.get("ORCH_PLANE_DHCP_HOSTS"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(_hosts_file(context.current["id"]))
