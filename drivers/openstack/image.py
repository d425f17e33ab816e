"""``openstack.image`` through Glance: created once by name, its data uploaded from a local
``file`` or imported by Glance from a ``url`` (web-download), then waited for until
``active``.

A failed import does not leave the image in an error state: Glance puts it back to
``queued`` and names the store in ``os_glance_failed_import``. That ends the wait at once as a
permanent error carrying the import task's message. An image found ``queued`` with no data
(an earlier upload or import that did not finish) is deleted and made again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drivers.openstack import bodies
from drivers.openstack.calls import Calls
from drivers.openstack.waiting import poll


def _prop(image: Any, key: str) -> str:
    """An ``os_glance_*`` property (the SDK keeps unknown attributes in ``properties``)."""
    value = getattr(image, key, None) or (getattr(image, "properties", None) or {}).get(key)
    return str(value or "")


def import_failure(c: Calls, image: Any) -> str:
    """Why the image's data will never come, or "" while it may still come."""
    if image.status in ("killed", "deleted"):
        return f"image is {image.status}"
    if image.status != "queued" or not _prop(image, "os_glance_failed_import"):
        return ""
    reason = ""
    try:  # the import task's message (Glance 2.12+); the fact of failure is enough without it
        tasks = list(c.proxy("image").image_tasks(image))
        failed = [t for t in tasks if getattr(t, "status", "") == "failure"]
        reason = str(getattr(failed[-1], "message", "") or "") if failed else ""
    except Exception:
        reason = ""
    stores = _prop(image, "os_glance_failed_import")
    return f"import failed (store {stores})" + (f": {reason}" if reason else "")


def ensure_image(c: Calls, inputs: Mapping[str, Any]) -> dict[str, Any]:
    body = bodies.image(inputs)
    name = body["name"]
    image = c.call(f"find image {name}", c.proxy("image").find_image, name, ignore_missing=True)
    if image is not None and image.status == "queued" and \
            not _prop(image, "os_glance_importing_to_stores"):
        # no data and nothing bringing it: what an interrupted or failed earlier run leaves
        c.call(f"delete unfinished image {name}", c.proxy("image").delete_image, image,
               ignore_missing=True)
        image = None
    if image is None:
        if inputs.get("file"):
            image = c.call(f"upload image {name}", c.proxy("image").create_image,
                           filename=str(inputs["file"]), wait=False, **body)
        else:
            image = c.call(f"create image {name}", c.proxy("image").create_image, **body)
            c.call(f"import image {name}", c.proxy("image").import_image, image,
                   method="web-download", uri=str(inputs["url"]))
    image = poll(lambda: c.call(f"read image {name}", c.proxy("image").get_image, image.id),
                 done=lambda i: i.status == "active",
                 failed=lambda i: import_failure(c, i),
                 what=f"wait for image {name} active", endpoint=c.endpoint,
                 deadline=c.deadline, interval=c.poll_interval, report=c.report,
                 cancelled=c.cancelled)
    return {"id": image.id, "name": name, "checksum": image.checksum or ""}


def delete_image(c: Calls, name_or_id: str) -> None:
    image = c.call(f"find image {name_or_id}", c.proxy("image").find_image, name_or_id,
                   ignore_missing=True)
    if image is not None:
        c.call(f"delete image {name_or_id}", c.proxy("image").delete_image, image,
               ignore_missing=True)
