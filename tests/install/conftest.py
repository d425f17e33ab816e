"""Fixtures for the virtual-media install tests: blank-disk guests behind a real Redfish BMC.

Each test gets an :class:`InstallLab`: an isolated libvirt network with a fixed DHCP lease
per guest, a blank qcow2 disk of the lab image's size per guest, stopped domains that carry
the lab key as an SMBIOS credential (all three made through the real libvirt driver), the
sushy-tools Redfish emulator and virtualbmc for them (``lab.bmc.start``), the installer ISO
(``lab.installer``) served on 127.0.0.1, and an inventory pointing at all of it. Everything
is named ``orch-inst-<run>-...`` and removed afterwards, including the copies of the ISO the
emulator downloads into the ``default`` pool.

The guests are 512 MiB, one vCPU, under TCG when there is no usable KVM; the timeouts are
generous because the machine may be busy, but every one of them is bounded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.install.install_support import LOG, URI, _sweep


@pytest.fixture(scope="session")
def installer_iso() -> Any:
    from lab.installer import build_installer_iso

    started = time.monotonic()
    iso = build_installer_iso(progress=lambda text: LOG.info("installer: %s", text))
    print(f"\n[install] installer ISO {iso.path.name} ready in "
          f"{time.monotonic() - started:.1f} s ({iso.path.stat().st_size >> 20} MiB)")
    return iso



@pytest.fixture(scope="session")
def iso_url(installer_iso: Any) -> Iterator[str]:
    from lab.installer import serve

    with serve(installer_iso.path) as url:
        yield url



@pytest.fixture(scope="session")
def conn() -> Iterator[Any]:
    import libvirt

    try:
        c = libvirt.open(URI)
    except libvirt.libvirtError as exc:  # CI starts libvirtd; a skip would hide that
        pytest.fail(f"libvirtd is not reachable at {URI}: {exc}")
    yield c
    _sweep(c)
    c.close()



@pytest.fixture(scope="session")
def libvirt_driver(conn: Any) -> Iterator[Any]:
    from drivers.libvirt import LibvirtDriver, LibvirtSettings

    d = LibvirtDriver(LibvirtSettings(uri=URI))
    yield d
    d.close()


