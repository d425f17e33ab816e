"""Virtual media: insert an image by URL (optionally booting once from it) or eject it.

The CD/DVD slot is looked for on the system (newer BMCs) and then on its managers. Insert
is idempotent: the same image already inserted is left alone; another is ejected first.
Both are read back from the BMC.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from drivers.redfish.boot import BootRequest, check_advertised, send_boot_options
from drivers.redfish.boot import read_back as read_back_boot
from drivers.redfish.context import OperationContext
from orchestrator.errors import NotSupportedError, PermanentError, TransientError

MEDIA_TYPES = {"cd": ("CD", "DVD"), "usb": ("USBStick",), "floppy": ("Floppy",)}


def image_url(inputs: Mapping[str, Any]) -> str:
    """The media URL: ``url``, or ``image`` as the bmc.virtual_media and os.install
    components call it."""
    return str(inputs.get("url") or inputs.get("image") or "")


def check_inputs(inputs: Mapping[str, Any]) -> None:
    action = inputs.get("action", "insert")
    if action not in ("insert", "eject"):
        raise PermanentError(f"action {action!r} is not insert or eject",
                             operation="redfish.virtual_media")
    if action == "insert" and not image_url(inputs):
        raise PermanentError("insert needs url", operation="redfish.virtual_media")
    if inputs.get("media", "cd") not in MEDIA_TYPES:
        raise PermanentError(f"media {inputs.get('media')!r} is not one of "
                             f"{', '.join(MEDIA_TYPES)}", operation="redfish.virtual_media")


def _collections(system: Any) -> list[Any]:
    from sushy import exceptions as sx

    found = []
    with contextlib.suppress(sx.MissingAttributeError, sx.ResourceNotFoundError):
        found.append(system.virtual_media)
    with contextlib.suppress(sx.MissingAttributeError, sx.ResourceNotFoundError):
        found.extend(m.virtual_media for m in system.managers)
    return found


def find_slot(system: Any, media: str, ctx: OperationContext) -> Any:
    """The first virtual media slot accepting ``media`` (cd, usb, floppy)."""
    from sushy import exceptions as sx

    wanted = MEDIA_TYPES[media]
    for collection in _collections(system):
        try:
            members = collection.get_members()
        except (sx.MissingAttributeError, sx.ResourceNotFoundError):
            continue
        for slot in members:
            types = {str(getattr(t, "value", t)) for t in (slot.media_types or ())}
            if types & set(wanted):
                return slot
    raise NotSupportedError(f"the BMC has no virtual media slot for {media}",
                            endpoint=ctx.endpoint, operation=ctx.operation)


def virtual_media(system: Any, inputs: Mapping[str, Any],
                  ctx: OperationContext) -> dict[str, Any]:
    check_inputs(inputs)
    media = str(inputs.get("media", "cd"))
    boot = None
    if inputs.get("action", "insert") == "insert" and inputs.get("boot_once"):
        boot = BootRequest("cd", "once", inputs.get("mode"))
        system.refresh(force=True)
        check_advertised(system, boot, ctx)  # refuse before the image is even inserted
    slot = find_slot(system, media, ctx)
    if inputs.get("action", "insert") == "eject":
        if slot.inserted or slot.image:
            slot.eject_media()
        return {"action": "eject", **_read_slot(slot, ctx, None)}
    url = image_url(inputs)
    if slot.image != url or not slot.inserted:
        if slot.inserted or slot.image:
            slot.eject_media()
            slot.refresh(force=True)
        slot.insert_media(url, inserted=True, write_protected=True)
    out = {"action": "insert", **_read_slot(slot, ctx, url)}
    if boot is not None:
        send_boot_options(system, boot)
        out["boot"] = read_back_boot(system, boot, ctx)
    return out


def _read_slot(slot: Any, ctx: OperationContext, url: str | None) -> dict[str, Any]:
    slot.refresh(force=True)
    inserted, image = bool(slot.inserted), slot.image or None
    if (url is None and (inserted or image)) or (url is not None and image != url):
        raise TransientError(f"virtual media reads back image={image!r} inserted={inserted}",
                             endpoint=ctx.endpoint, operation=ctx.operation)
    return {"slot": slot.identity, "image": image, "inserted": inserted}
