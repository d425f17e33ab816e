"""A flat apt repository of any package list, for air-gapped lab guests.

The offline mirror (:mod:`lab.mirror`) serves the Kubernetes nodes' packages; playbooks
that install other things from Debian (Ceph, libvirt/KVM, containerd, chrony ...) need
their own packages in the same form. This module builds such a repository with the
mirror's resolver -- apt on this machine downloads the packages and exactly the
dependencies the lab image lacks, resolved against the image's own dpkg status -- and
caches it under ``<cache>/debrepo/<key>/`` by a content key over the package list, the
image's dpkg status and :data:`DEBREPO_VERSION`. A guest uses it as
``deb [trusted=yes] URL ./``; serve it with :func:`lab.mirrorserve.start`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from lab import cache_dir
from lab.mirror import MirrorError, apt_repository, guest_dpkg_status
from orchestrator.errors import OrchError

#: Bump when the repository's layout changes in a way the key does not see.
DEBREPO_VERSION = "1"


def build(packages: tuple[str, ...], *, force: bool = False,
          timeout: float = 1800) -> Path:
    """Return the repository's directory (``Packages`` at its root), building it if it is
    not cached. Needs root and the Debian mirror this machine's apt uses."""
    if not packages:
        raise MirrorError("no packages to put in the repository")
    status = guest_dpkg_status()
    key = hashlib.sha256("\n".join([
        DEBREPO_VERSION, hashlib.sha256(status.read_bytes()).hexdigest(),
        *sorted(set(packages)),
    ]).encode()).hexdigest()[:12]
    root = cache_dir("debrepo", key)
    done = root / "DEBREPO.json"
    if done.exists() and not force:
        return root
    started = time.monotonic()
    debs = apt_repository(root, status, timeout, tuple(sorted(set(packages))))
    size = sum(p.stat().st_size for p in root.glob("*.deb"))
    done.write_text(json.dumps({"key": key, "packages": sorted(set(packages)),
                                "debs": len(debs), "bytes": size,
                                "build_seconds": round(time.monotonic() - started, 1)},
                               indent=2) + "\n")
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.debrepo",
                                     description="Build (or reuse) a flat apt repository "
                                                 "of PACKAGE... for the lab guests.")
    parser.add_argument("packages", nargs="+", metavar="PACKAGE")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    args = parser.parse_args(argv)
    try:
        print(build(tuple(args.packages), force=args.force))
    except OrchError as exc:
        print(f"lab.debrepo: {exc.render()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
