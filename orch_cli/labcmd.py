"""Lab commands: ``orch image build``, ``orch lab up|down|plan``, ``orch verify``."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from orch_cli.common import EXIT_ERROR, errors_to_exit, parse_params, profile_options


def _say(text: str) -> None:
    click.echo(text, err=True)


# -- image -------------------------------------------------------------------------------
@click.group()
def image() -> None:
    """Lab guest images (cached under ~/.cache/orch/images)."""


@image.command("build")
@click.option("--force", is_flag=True, help="Rebuild even if cached.")
def image_build(force: bool) -> None:
    """Build (or reuse) the lab qcow2 image and the initramfs guest; print their paths."""
    with errors_to_exit():
        from drivers.libvirt.probeguest import build_initramfs_guest
        from lab.image import build_image, lab_keypair
        t0 = time.monotonic()
        path = build_image(force, progress=_say)
        t1 = time.monotonic()
        guest = build_initramfs_guest(force)
        t2 = time.monotonic()
        key, _ = lab_keypair()
        click.echo(f"image      {path}  ({t1 - t0:.1f} s)")
        click.echo(f"kernel     {guest.kernel}")
        click.echo(f"initrd     {guest.initrd}  ({t2 - t1:.1f} s)")
        click.echo(f"lab key    {key}")


# -- lab ---------------------------------------------------------------------------------
@click.group()
def lab() -> None:
    """Lab guests for a profile on this machine (libvirt, emulated BMCs)."""


def _name(profile: str) -> str:
    from lab.up import profile_name_of
    return profile_name_of(profile) if Path(profile).is_file() else profile


@lab.command("up")
@click.argument("profile", type=click.Path(exists=True, dir_okay=False))
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Override a profile parameter (repeatable).")
@click.option("--out", type=click.Path(dir_okay=False),
              help="Inventory to write (default: inventories/lab-<profile>.yaml).")
@click.option("--memory-mib", default=512, show_default=True, type=click.IntRange(128, 16384),
              help="Memory of each guest.")
@click.option("--max-guests", default=8, show_default=True, type=click.IntRange(1, 64),
              help="Refuse profiles that need more guests than this.")
@click.option("--no-bmc", is_flag=True, help="Do not start emulated BMCs.")
@click.option("--image", "image_kind", type=click.Choice(["lab", "l1"]), default="lab",
              show_default=True,
              help="Guest image: the lab image, or the L1 variant with QEMU and libvirt "
                   "(nested labs).")
@click.option("--bare-metal", is_flag=True,
              help="Blank OS disks, guests powered off behind their BMCs: the profile's "
                   "own os.install puts the OS there (Redfish virtual media, as on a rack).")
@click.option("--mirror", is_flag=True,
              help="Build the offline mirror (Kubernetes binaries, node packages, images) "
                   "and serve it on the lab network, as an air-gapped site does.")
def lab_up(profile: str, params: tuple[str, ...], out: str | None, memory_mib: int,
           max_guests: int, no_bmc: bool, image_kind: str, bare_metal: bool,
           mirror: bool) -> None:
    """Create (or resume) guests for PROFILE's nodes and write their inventory."""
    with errors_to_exit():
        from lab.up import up
        source = "lab"
        if image_kind == "l1":
            from lab.l1image import build_l1_image
            source = build_l1_image(progress=_say).name
        result = up(profile, params=parse_params(params), out=out, memory_mib=memory_mib,
                    max_guests=max_guests, bmc=not no_bmc, image_source=source,
                    bare_metal=bare_metal, mirror=mirror, say=_say)
        for g in result.guests:
            click.echo(f"{g.node:<16} {g.address:<15} {g.domain}  {g.vcpus} vCPU, "
                       f"{g.memory_mib} MiB, {len(g.data_disks)} data disk(s), "
                       f"{len(g.nics)} NIC(s)")
        state = " (powered off, blank disks: the profile installs them)" if bare_metal else ""
        if result.mirror_url:
            click.echo(f"Offline mirror: {result.mirror_url} (pass it to the profile's "
                       "mirror parameters)")
        click.echo(f"Lab ready in {result.seconds:.1f} s{state}: orch apply {profile} "
                   f"-i {result.inventory}")


@lab.command("down")
@click.argument("profile")
def lab_down(profile: str) -> None:
    """Remove PROFILE's lab (a profile file or its name): nothing is left behind."""
    with errors_to_exit():
        from lab.up import down
        if not down(_name(profile), say=_say):
            click.echo(f"No lab for {profile}.")


@lab.command("plan")
@click.argument("profile")
def lab_plan(profile: str) -> None:
    """The lab's own plan: drift of its guests, and the accelerator verdict."""
    with errors_to_exit():
        from lab.up import plan_text
        click.echo(plan_text(_name(profile)), nl=False)


# -- verify ------------------------------------------------------------------------------
def verify_targets(loaded: Any, base_dir: Path | None) -> list[Any]:
    """One HostChecks per (component with ``verify:``, bound node), secrets resolved."""
    from orchestrator.loader import condition_holds
    from orchestrator.secrets import resolve_inputs
    from orchestrator.verify import HostChecks
    targets = []
    comps = [c for lay in loaded.profile.layers for c in lay.components
             if c.verify and c.type != "external"
             and condition_holds(lay.when, loaded.parameters)
             and condition_holds(c.when, loaded.parameters)]
    for comp in comps:
        roles = [comp.on] if isinstance(comp.on, str) else list(comp.on or [])
        for role in roles:
            for node in _selected(loaded.nodes.get(role, []), comp.select):
                host = resolve_inputs(node.host_inputs(), base_dir=base_dir)
                targets.append(HostChecks(host, [{"name": _check_name(comp.name, c), **c}
                                                 for c in comp.verify]))
    return targets


def _selected(nodes: list[Any], select: str | int) -> list[Any]:
    if select == "first":
        return nodes[:1]
    if select == "rest":
        return nodes[1:]
    return nodes[:select] if isinstance(select, int) else nodes


def _check_name(component: str, decl: dict[str, Any]) -> str:
    from orchestrator.verify import parse_check
    return f"{component}: {decl.get('name') or parse_check(decl).name}"


@click.command("verify")
@click.argument("profile", type=click.Path(exists=True, dir_okay=False))
@profile_options
@click.option("--timeout", default=15.0, show_default=True, help="SSH timeout per host.")
def verify_cmd(profile: str, inventory: str | None, params: tuple[str, ...],
               timeout: float) -> None:
    """Run the components' `verify:` checks on the bound hosts; exit 1 on failures."""
    with errors_to_exit():
        from orchestrator.loader import load
        from orchestrator.verify import verify
        if not inventory:
            raise click.UsageError("orch verify needs -i INVENTORY (the hosts to check)")
        loaded = load(profile, inventory, parse_params(params))
        t0 = time.monotonic()
        results = verify(verify_targets(loaded, Path(profile).parent), timeout=timeout)
        for r in results:
            mark = "PASSED" if r.passed else "FAILED"
            click.echo(f"{mark} [{r.host}] {r.name} ({r.duration:.2f} s)")
            if not r.passed:
                click.echo(f"    {r.detail}")
        failed = sum(1 for r in results if not r.passed)
        passed = len(results) - failed
        click.echo(f"== {passed} passed, {failed} failed in {time.monotonic() - t0:.1f} s ==")
        if failed or not results:
            if not results:
                click.echo("no checks: no component with `verify:` runs on a bound node",
                           err=True)
            sys.exit(EXIT_ERROR)


def register(cli: Any) -> None:
    """Add the lab command groups to ``cli``."""
    cli.add_command(image)
    cli.add_command(lab)
    cli.add_command(verify_cmd)
