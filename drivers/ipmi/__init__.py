"""IPMI driver (pyghmi, imported lazily inside the session module)."""

from drivers.ipmi.driver import IpmiDriver

__all__ = ["IpmiDriver"]
