"""``orch version``: orch's version, Python's, and each driver's dependencies with theirs.

``orch --version`` prints the one line; this prints what a bug report needs: which driver
libraries are installed, at which version, and the install command for a missing one.
"""

from __future__ import annotations

import platform
import sys
from typing import Any

import click

from orch_cli.common import format_option, write_json


def dependency_versions() -> dict[str, Any]:
    from importlib import metadata

    from orchestrator import __version__, distribution_extras
    from orchestrator.driver import DriverRegistry
    from orchestrator.preflight import install_hint
    dist, _ = distribution_extras()
    by_module = metadata.packages_distributions()
    reg = DriverRegistry()
    drivers: dict[str, Any] = {}
    for name in reg.names():
        info = reg.info(name)
        modules = {}
        for module in info.requires:
            dists = by_module.get(module.split(".")[0], [])
            modules[module] = {d: _version_of(d) for d in dists} if module not in info.missing \
                else None
        drivers[name] = {"available": info.available, "requires": modules,
                         "error": info.error or None,
                         "install": install_hint(name, info.missing) if info.missing else None}
    return {"orch": __version__, "distribution": dist, "python": platform.python_version(),
            "executable": sys.executable,
            "core": {d: _version_of(d) for d in ("msgspec", "PyYAML", "click", "structlog",
                                                 "tenacity", "rich")},
            "drivers": drivers}


def _version_of(dist: str) -> str | None:
    from importlib import metadata
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


@click.command()
@format_option
def version(fmt: str) -> None:
    """orch's version, Python's, and every driver dependency's version."""
    info = dependency_versions()
    if fmt == "json":
        write_json(info)
        return
    click.echo(f"orch {info['orch']} (distribution {info['distribution']}), "
               f"Python {info['python']} ({info['executable']})")
    click.echo("core: " + ", ".join(f"{d} {v or 'missing'}" for d, v in info["core"].items()))
    for name, d in info["drivers"].items():
        if d["error"]:
            click.echo(f"  {name:<11} error: {d['error']}")
            continue
        parts = []
        for module, dists in d["requires"].items():
            if dists is None:
                parts.append(f"{module} missing")
            else:
                parts.extend(f"{dn} {v}" for dn, v in dists.items())
        click.echo(f"  {name:<11} {', '.join(parts) or 'no dependency'}"
                   + (f"  ({d['install']})" if d["install"] else ""))
