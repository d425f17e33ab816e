"""Steps: the unit a driver carries out.

A step has a stable id (``pve-2/ceph.osd[sdb]``: node, component, item), the step kind its
driver understands (``redfish.power``), the driver's name, JSON-able inputs (secrets only as
references), explicit dependencies, and the endpoint it talks to, so the executor can bound
concurrency per endpoint. Its *fingerprint* is a hash of what the driver will be asked to do;
a changed fingerprint is what makes the planner propose an update.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

EXTERNAL = "external"


class Step(msgspec.Struct, frozen=True, dict=True):
    """Immutable. A msgspec Struct rather than a frozen dataclass: a plan builds tens of
    thousands of these, and a frozen dataclass's ``__init__`` costs ~15x more. The instance
    ``__dict__`` holds memoised derived values (fingerprint, JSON), outside equality."""

    id: str
    kind: str
    driver: str
    component: str
    layer: str
    inputs: dict[str, Any] = {}
    depends_on: tuple[str, ...] = ()
    node: str | None = None
    endpoint: str | None = None
    description: str = ""
    #: For ``external`` steps: why nothing here can carry it, and what to do by hand.
    external_reason: str = ""
    #: Input keys whose change cannot be applied in place: the step is replaced instead.
    replace_on: tuple[str, ...] = ()
    #: Seconds the step may take, retries included.
    timeout: float = 600.0

    @property
    def external(self) -> bool:
        return self.driver == EXTERNAL

    def fingerprint(self) -> str:
        memo = self.__dict__
        fp = memo.get("_fp")
        if fp is None:
            fp = memo["_fp"] = fingerprint(self.kind, self.driver, self.inputs)
        return str(fp)

    def json(self) -> str:
        """The step as compact JSON with sorted keys (what the state store keeps)."""
        memo = self.__dict__
        text = memo.get("_json")
        if text is None:
            text = memo["_json"] = canonical_json(self.to_dict())
        return str(text)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id, "kind": self.kind, "driver": self.driver,
            "component": self.component, "layer": self.layer, "inputs": self.inputs,
            "depends_on": list(self.depends_on),
        }
        for key in ("node", "endpoint"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        if self.description:
            d["description"] = self.description
        if self.external_reason:
            d["external_reason"] = self.external_reason
        if self.replace_on:
            d["replace_on"] = list(self.replace_on)
        if self.timeout != 600.0:
            d["timeout"] = self.timeout
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Step:
        return cls(
            id=d["id"], kind=d["kind"], driver=d["driver"], component=d["component"],
            layer=d["layer"], inputs=d.get("inputs", {}),
            depends_on=tuple(d.get("depends_on", ())), node=d.get("node"),
            endpoint=d.get("endpoint"), description=d.get("description", ""),
            external_reason=d.get("external_reason", ""),
            replace_on=tuple(d.get("replace_on", ())), timeout=float(d.get("timeout", 600.0)),
        )


_encoder = msgspec.json.Encoder(order="sorted", enc_hook=str)


def canonical_bytes(value: Any) -> bytes:
    """Compact JSON with sorted keys: the same value always gives the same bytes."""
    return _encoder.encode(value)


def canonical_json(value: Any) -> str:
    return canonical_bytes(value).decode()


def fingerprint(kind: str, driver: str, inputs: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes([kind, driver, inputs])).hexdigest()[:20]
