"""`orch lab up` against `vagrant up`: the same lab image, the same three guests, the same
machine, one run each, from nothing to all three guests accepting SSH.

orch: ``orch lab up`` of a three-node profile (network with fixed leases, pool, base
image upload, linked clones, domains, ``ssh.wait`` on each guest, emulated BMCs, the
inventory). Vagrant: ``vagrant up`` of ``vagrant/Vagrantfile`` (box already added; its
image volume removed from the pool first, so Vagrant uploads the image as orch does; the
isolated network made beforehand and not timed). Both labs are removed afterwards.

Last line: ``shape=lab size=3 orch_s=… vagrant_s=… ratio=…`` (ratio = orch / Vagrant).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REPO, measure, orch_cmd
from lab.guests import pick_cidr
from lab.vagrantbox import BOX_NAME, add_box, isolated_network, vagrant, vagrant_env

PROFILE = """\
apiVersion: orch/v1
kind: Profile
metadata: {{name: {name}, title: "bench: three lab guests"}}
roles:
  node:
    count: 3
    hardware: {{cpu: 1, memory_gib: 1}}
layers:
  - name: none
    components: []
"""


def time_orch(tmp: Path, name: str) -> float:
    profile = tmp / "profile.yaml"
    profile.write_text(PROFILE.format(name=name))
    try:
        m = measure(orch_cmd("lab", "up", str(profile), "--out", str(tmp / "inv.yaml")),
                    REPO, timeout=1800)
    finally:
        subprocess.run(orch_cmd("lab", "down", name), cwd=REPO, capture_output=True,
                       timeout=600, check=False)
    return m.seconds


def _drop_box_volume() -> None:
    """Vagrant caches the box image as a volume in the default pool: remove it, so this
    run uploads the image as orch's does."""
    vols = subprocess.run(["virsh", "vol-list", "default"], capture_output=True, text=True,
                          timeout=60, check=False).stdout
    for line in vols.splitlines():
        word = line.split()[0] if line.split() else ""
        if word.startswith(f"{BOX_NAME}_vagrant_box_image"):
            subprocess.run(["virsh", "vol-delete", word, "--pool", "default"],
                           capture_output=True, timeout=60, check=False)


def time_vagrant(tmp: Path, tag: str) -> float:
    add_box()
    _drop_box_volume()
    cidr = pick_cidr(tag)
    isolated_network(tag, cidr)
    env = vagrant_env(tag, cidr, tag, tmp / ".vagrant")
    try:
        t0 = time.perf_counter()
        up = vagrant(["up", "--provider", "libvirt"], env, timeout=1800)
        seconds = time.perf_counter() - t0
        if up.returncode != 0:
            raise SystemExit(f"vagrant up failed:\n{up.stdout[-2000:]}{up.stderr[-2000:]}")
    finally:
        vagrant(["destroy", "-f"], env, timeout=600)
        isolated_network(tag, cidr, create=False)
    return seconds


def main() -> None:
    tag = uuid.uuid4().hex[:5]
    with tempfile.TemporaryDirectory(prefix="orch-bench-lab-") as tmp:
        orch_s = time_orch(Path(tmp), f"benchlab-{tag}")
        print(f"orch lab up (3 guests to SSH):    {orch_s:7.1f} s", flush=True)
        vagrant_s = time_vagrant(Path(tmp), f"orch-bvg-{tag}")
        print(f"vagrant up (3 guests to SSH):     {vagrant_s:7.1f} s", flush=True)
    ratio = orch_s / vagrant_s
    print(f"orch / vagrant = {ratio:.3f} (goal ≤ 0.333)")
    print(f"shape=lab size=3 orch_s={orch_s:.1f} vagrant_s={vagrant_s:.1f} ratio={ratio:.3f}")


if __name__ == "__main__":
    main()
