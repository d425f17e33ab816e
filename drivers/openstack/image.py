"""``openstack.image`` through Glance: created once by name, its data uploaded from a local
``file`` or imported by Glance from a ``url`` (web-download), then waited for until
``active``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drivers.openstack import bodies
from drivers.openstack.calls import Calls
from drivers.openstack.waiting import poll


def ensure_image(c: Calls, inputs: Mapping[str, Any]) -> dict[str, Any]:
    body = bodies.image(inputs)
    name = body["name"]
    image = c.call(f"find image {name}", c.proxy("image").find_image, name, ignore_missing=True)
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
                 failed=lambda i: f"image is {i.status}" if i.status in ("killed", "deleted")
                 else "",
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
