"""The libvirt driver: networks, storage pools, volumes and domains through libvirt.

Imports ``libvirt`` only inside functions; see :mod:`drivers.libvirt.driver`.
"""

from drivers.libvirt.driver import LibvirtDriver, LibvirtSettings

__all__ = ["LibvirtDriver", "LibvirtSettings"]
