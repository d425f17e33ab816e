"""The chassis commands the driver sends (IPMI 2.0, netfn 0x00), on an open pyghmi session.

Kept to the handful of commands power and boot device need, so each request on the wire is
visible here: Get Chassis Status (0x01), Chassis Control (0x02), Set/Get System Boot
Options (0x08/0x09, parameter 5: boot flags).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drivers.ipmi.errors import from_completion_code, from_exception

CHASSIS = 0x00
GET_STATUS, CONTROL, SET_BOOT, GET_BOOT = 0x01, 0x02, 0x08, 0x09
CONTROL_CODES = {"off": 0x00, "on": 0x01, "cycle": 0x02, "reset": 0x03, "soft": 0x05}
# boot flags data2 bits 5:2 (table 28-14)
DEVICE_CODES = {"pxe": 0x04, "disk": 0x08, "cd": 0x14}
DEVICE_NAMES = {v: k for k, v in DEVICE_CODES.items()}
VALID, PERSISTENT, UEFI = 0x80, 0x40, 0x20


@dataclass
class Chassis:
    session: Any
    endpoint: str
    operation: str
    password: str

    def _call(self, command: int, data: tuple[int, ...], what: str) -> bytes:
        try:
            response = self.session.raw_command(netfn=CHASSIS, command=command, data=data)
        except Exception as exc:
            raise from_exception(exc, endpoint=self.endpoint, operation=self.operation,
                                 password=self.password) from None
        if "error" in response and not response.get("code"):
            raise from_exception(RuntimeError(response["error"]), endpoint=self.endpoint,
                                 operation=self.operation, password=self.password)
        if response.get("code"):
            raise from_completion_code(int(response["code"]), endpoint=self.endpoint,
                                       operation=self.operation, command=what)
        return bytes(response.get("data") or b"")

    def power(self) -> str:
        data = self._call(GET_STATUS, (), "get chassis status")
        return "on" if data and data[0] & 0x01 else "off"

    def control(self, action: str) -> None:
        self._call(CONTROL, (CONTROL_CODES[action],), f"chassis control {action}")

    def set_boot(self, device: str, persistent: bool, uefi: bool) -> None:
        self._call(SET_BOOT, (3, 8), "set boot info acknowledge")
        flags = VALID | (PERSISTENT if persistent else 0) | (UEFI if uefi else 0)
        self._call(SET_BOOT, (5, flags, DEVICE_CODES[device], 0, 0, 0), "set boot flags")

    def boot(self) -> dict[str, Any]:
        data = self._call(GET_BOOT, (5, 0, 0), "get boot flags")
        # data: version, parameter (5), then the five boot flag bytes
        flags = data[2] if len(data) > 2 else 0
        code = (data[3] & 0x3C) if len(data) > 3 else 0
        return {"device": DEVICE_NAMES.get(code, f"{code:#04x}" if code else "default"),
                "persistent": bool(flags & PERSISTENT), "uefi": bool(flags & UEFI),
                "valid": bool(flags & VALID)}
