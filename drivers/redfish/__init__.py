"""Redfish driver (sushy, imported lazily inside the operations)."""

from drivers.redfish.driver import RedfishDriver

__all__ = ["RedfishDriver"]
