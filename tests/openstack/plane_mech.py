"""THE ONE SIMULATED PIECE of the test OpenStack plane (tests/openstack/plane.py): an ML2
mechanism driver that binds every port (``vif_type = tap``, status ACTIVE) in place of a
Neutron L2 agent, which would need a real datapath. Everything else in the plane is the real
service. Loaded by neutron-server (in the plane's own virtualenv) through the entry point
``orch_test_bind`` that the plane writes beside it; never imported by the tests themselves.
"""

from neutron_lib import constants
from neutron_lib.plugins.ml2 import api


class BindEveryPort(api.MechanismDriver):
    """Binds each port to the first segment offered, as an L2 agent would once wired."""

    def initialize(self) -> None:
        pass

    def bind_port(self, context) -> None:  # type: ignore[no-untyped-def]
        for segment in context.segments_to_bind:
            context.set_binding(segment[api.ID], "tap", {"port_filter": False},
                                status=constants.PORT_STATUS_ACTIVE)
            return
