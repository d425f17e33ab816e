"""The offline mirror: what an air-gapped site serves its Kubernetes nodes, built here.

An air-gapped datacenter mirrors upstream and points its installers at the mirror. This
module builds such a mirror from what this machine can reach, and :mod:`lab.mirrorserve`
serves it on a lab network, so a profile's kubeadm playbooks install a real cluster in lab
guests exactly as they would at such a site, pointed at the mirror by their URL parameters:

* ``release/<version>/bin/linux/amd64/`` -- kubeadm, kubelet, kubectl, laid out as the
  upstream download site (``https://dl.k8s.io/release/v1.20.2/bin/linux/amd64/kubelet``),
  built from Debian's ``kubernetes`` source package by :mod:`lab.kubebuild`;
* ``debian/`` -- a flat apt repository (``deb [trusted=yes] URL/debian ./``) with the node
  packages (:data:`NODE_PACKAGES`: the container runtime, CNI plugins, conntrack ...) and
  exactly the dependencies the lab image lacks: apt resolves them against the image's own
  dpkg status;
* ``images/`` -- the control plane's and the pod sandbox's images as ``docker save``
  archives (:mod:`lab.ociarchive`), tagged under :data:`IMAGE_REPOSITORY`, listed in
  ``images/images.txt``: kube-apiserver, kube-controller-manager, kube-scheduler and
  kube-proxy from the same build, etcd from Debian's ``etcd-server``, and pause compiled
  here from :data:`PAUSE_C`; and a workload for tests, ``hello`` (:data:`HELLO_C`, a static
  HTTP server on port 8080).

What no package here provides is absent, and the playbooks skip it by name with the reason:
CoreDNS (not in Debian) and crictl (cri-tools is not in Debian; kubeadm 1.20 needs it for
any CRI socket but Docker's, which is why the lab's nodes run Docker's engine over
containerd). The tree is cached under ``<cache>/mirror/<key>/`` by a content key over the
binaries, the package list and :data:`MIRROR_VERSION`: built once per machine.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lab import cache_dir
from lab.ociarchive import ImageSpec, library_closure, write_archive
from orchestrator.errors import OrchError

#: Bump when the mirror's layout or contents change in a way the key does not see.
MIRROR_VERSION = "2"
K8S_VERSION = "v1.20.2"
#: The repository the mirror's images are tagged under (kubeadm's ``imageRepository``).
IMAGE_REPOSITORY = "registry.orch.lab/k8s"
#: What ``kubeadm config images list`` names for 1.20, by what the mirror serves it as.
PAUSE_TAG = "3.2"
#: Debian's etcd (3.4.23; v1.20.2 pins 3.4.13: the same minor), tagged by its own version.
ETCD_TAG = "3.4.23-0"
NODE_BINARIES = ("cmd/kubeadm", "cmd/kubelet", "cmd/kubectl")
CONTROL_PLANE = ("cmd/kube-apiserver", "cmd/kube-controller-manager", "cmd/kube-scheduler",
                 "cmd/kube-proxy")
#: What a node installs from the mirror's apt repository (python3-apt: Ansible's apt module;
#: apparmor: Docker loads its default profile with apparmor_parser on an AppArmor kernel).
NODE_PACKAGES = ("python3-apt", "apparmor", "docker.io", "containerd", "runc",
                 "containernetworking-plugins", "conntrack", "socat", "ebtables", "ethtool",
                 "iptables", "ipset")
#: What kube-proxy runs in iptables mode, copied with their libraries into its image.
PROXY_TOOLS = ("/usr/sbin/xtables-legacy-multi", "/usr/sbin/xtables-nft-multi",
               "/usr/sbin/conntrack", "/usr/sbin/ipset")
#: The test workload's image (a Deployment's pods): a static HTTP server built here.
HELLO_TAG = "v1"
HELLO_C = r"""
/* A pod's workload: answers every HTTP request on port 8080 with its host name. */
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(void) {
  char host[256] = "?", buf[1024], out[512];
  gethostname(host, sizeof host - 1);
  int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET; a.sin_port = htons(8080); a.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 16)) return 1;
  for (;;) {
    int c = accept(s, NULL, NULL);
    if (c < 0) continue;
    (void)read(c, buf, sizeof buf);
    int body = snprintf(buf, sizeof buf, "hello from %s\n", host);
    int n = snprintf(out, sizeof out, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"
                     "Content-Length: %d\r\n\r\n%s", body, buf);
    (void)write(c, out, (size_t)n);
    close(c);
  }
}
"""
PAUSE_C = r"""
/* The pod sandbox's process: holds the namespaces, reaps orphans, exits on a signal. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void stop(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }
int main(void) {
  if (getpid() != 1) return 1;
  struct sigaction s = {0}, r = {0};
  s.sa_handler = stop; sigaction(SIGINT, &s, NULL); sigaction(SIGTERM, &s, NULL);
  r.sa_handler = reap; r.sa_flags = SA_NOCLDSTOP; sigaction(SIGCHLD, &r, NULL);
  for (;;) pause();
}
"""

Progress = Callable[[str], None]


class MirrorError(OrchError):
    template = "offline mirror: {message}"


def _run(cmd: list[str], *, timeout: float, what: str, **kw: object) -> str:
    from lab.image import _run as run

    return run(cmd, timeout=timeout, what=what, error=MirrorError, **kw)


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def guest_dpkg_status() -> Path:
    """The lab image's dpkg status: what the guests already have installed."""
    from lab.image import _debootstrap, debian_mirror

    return _debootstrap(debian_mirror(), lambda _t: None) / "var/lib/dpkg/status"


def build(*, force: bool = False, progress: Progress | None = None,
          timeout: float = 3600) -> Path:
    """Return the mirror's root directory, building what is not cached. Needs root."""
    from lab import kubebuild

    say = progress or (lambda _text: None)
    started = time.monotonic()
    say(f"Kubernetes {K8S_VERSION} binaries (lab.kubebuild)")
    try:
        with kubebuild.locked(kubebuild.K8S_DIR / ".lock"):
            binaries = kubebuild.build([*NODE_BINARIES, *CONTROL_PLANE], timeout)
            etcd = _etcd_binary(timeout)
    except kubebuild.BuildError as exc:
        raise MirrorError(f"building Kubernetes failed: {exc}") from None
    status = guest_dpkg_status()
    key = hashlib.sha256("\n".join([
        MIRROR_VERSION, K8S_VERSION, IMAGE_REPOSITORY, ETCD_TAG, PAUSE_C, HELLO_C,
        _digest([binaries[t] for t in sorted(binaries)] + [etcd]),
        hashlib.sha256(status.read_bytes()).hexdigest(), *NODE_PACKAGES,
    ]).encode()).hexdigest()[:12]
    root = cache_dir("mirror", key)
    done = root / "MIRROR.json"
    if done.exists() and not force:
        return root
    say(f"building the mirror in {root}")
    release = root / "release" / K8S_VERSION / "bin/linux/amd64"
    release.mkdir(parents=True, exist_ok=True)
    for target in NODE_BINARIES:
        shutil.copyfile(binaries[Path(target).name], release / Path(target).name)
        os.chmod(release / Path(target).name, 0o755)
    debs = apt_repository(root / "debian", status, timeout)
    images = _images(root / "images", binaries, etcd)
    meta = {"key": key, "kubernetes": K8S_VERSION, "image_repository": IMAGE_REPOSITORY,
            "images": images, "packages": debs,
            "build_seconds": round(time.monotonic() - started, 1)}
    done.write_text(json.dumps(meta, indent=2) + "\n")
    say(f"mirror ready in {meta['build_seconds']} s: {len(debs)} packages, "
        f"{len(images)} images")
    return root


def _etcd_binary(timeout: float) -> Path:
    """Debian's etcd (package etcd-server), unpacked into the cache, not installed."""
    from lab import kubebuild

    tools = kubebuild.tools(timeout)
    etcd = tools.get("etcd")
    if etcd is None or not Path(etcd).exists():
        raise MirrorError("etcd is missing from lab.kubebuild's tools")
    return Path(etcd)


def apt_repository(repo: Path, status: Path, timeout: float,
                    packages: tuple[str, ...] = NODE_PACKAGES) -> list[str]:
    """Download ``packages`` (the node packages) and the dependencies the guest lacks;
    index them."""
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "partial").mkdir(exist_ok=True)
    _run(["apt-get", "install", "--download-only", "-y", "-qq", "--no-install-recommends",
          "-o", f"Dir::State::status={status}", "-o", f"Dir::Cache::archives={repo}",
          "-o", "Debug::NoLocking=1", "-o", "APT::Sandbox::User=root", *packages],
         timeout=timeout, what="apt-get download of " + " ".join(packages[:3]) + " ...")
    shutil.rmtree(repo / "partial", ignore_errors=True)
    (repo / "lock").unlink(missing_ok=True)
    for deb in repo.glob("*%3a*.deb"):  # an epoch's ':' would be URL-quoted twice
        deb.rename(deb.with_name(deb.name.replace("%3a", "+e")))
    index = _run(["dpkg-scanpackages", "--multiversion", "."], timeout=300,
                 what="dpkg-scanpackages", cwd=repo)
    (repo / "Packages").write_text(index)
    (repo / "Packages.gz").write_bytes(gzip.compress(index.encode(), mtime=0))
    return sorted(p.name for p in repo.glob("*.deb"))


def _static_binary(work: Path, name: str, source: str) -> Path:
    src, out = work / f"{name}.c", work / name
    src.write_text(source)
    _run(["gcc", "-static", "-Os", "-o", str(out), str(src)], timeout=120,
         what=f"gcc {name}.c")
    _run(["strip", str(out)], timeout=60, what=f"strip {name}")
    return out


def _with_libraries(files: dict[str, Path]) -> dict[str, Path]:
    return {**files, **library_closure(files.values())}


def _images(out: Path, binaries: dict[str, Path], etcd: Path) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    specs: list[ImageSpec] = []
    for target in CONTROL_PLANE:
        name = Path(target).name
        files = {f"/usr/local/bin/{name}": binaries[name]}
        links: dict[str, str] = {}
        if name == "kube-proxy":
            files.update({tool: Path(tool) for tool in PROXY_TOOLS if Path(tool).exists()})
            files = _with_libraries(files)
            xtables = Path("/usr/lib/x86_64-linux-gnu/xtables")
            files.update({str(p): p for p in xtables.glob("*.so")})
            files = _with_libraries(files)
            for variant, multi in (("legacy", "xtables-legacy-multi"),
                                   ("nft", "xtables-nft-multi")):
                for tool in ("iptables", "iptables-save", "iptables-restore", "ip6tables",
                             "ip6tables-save", "ip6tables-restore"):
                    links[f"/usr/sbin/{tool}-{variant}"] = multi
            for tool in ("iptables", "iptables-save", "iptables-restore", "ip6tables",
                         "ip6tables-save", "ip6tables-restore"):
                links[f"/usr/sbin/{tool}"] = f"{tool}-legacy"
        specs.append(ImageSpec(f"{IMAGE_REPOSITORY}/{name}:{K8S_VERSION}", files,
                               links=links))
    specs.append(ImageSpec(f"{IMAGE_REPOSITORY}/etcd:{ETCD_TAG}",
                           _with_libraries({"/usr/local/bin/etcd": etcd})))
    with tempfile.TemporaryDirectory(prefix="orch-pause-") as tmp:
        pause = _static_binary(Path(tmp), "pause", PAUSE_C)
        specs.append(ImageSpec(f"{IMAGE_REPOSITORY}/pause:{PAUSE_TAG}", {"/pause": pause},
                               entrypoint=("/pause",)))
        hello = _static_binary(Path(tmp), "hello", HELLO_C)
        specs.append(ImageSpec(f"{IMAGE_REPOSITORY}/hello:{HELLO_TAG}", {"/hello": hello},
                               entrypoint=("/hello",)))
        lines = []
        for spec in specs:
            file = spec.ref.rsplit("/", 1)[1].replace(":", "_") + ".tar"
            write_archive(spec, out / file)
            lines.append(f"{spec.ref} {file}")
    (out / "images.txt").write_text("\n".join(lines) + "\n")
    return [line.split()[0] for line in lines]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.mirror",
                                     description="Build (or reuse) the offline mirror.")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    args = parser.parse_args(argv)

    def say(text: str) -> None:
        print(f"lab.mirror: {text}", file=sys.stderr, flush=True)

    try:
        print(build(force=args.force, progress=say))
    except OrchError as exc:
        say(exc.render())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
