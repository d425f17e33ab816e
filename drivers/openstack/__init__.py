"""The OpenStack driver: Ironic bare-metal nodes, Nova servers and flavors, Glance images,
Neutron networks, through ``openstacksdk`` (imported lazily)."""

from drivers.openstack.driver import OpenStackDriver

__all__ = ["OpenStackDriver"]
