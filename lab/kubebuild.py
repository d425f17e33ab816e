"""Build genuine Kubernetes v1.20.2 binaries from Debian's archive, and fetch etcd and kubectl.

    python3 -m lab.kubebuild [--what cmd/kube-apiserver ...] [--bin-dir DIR] [--timeout S]

Why this way (issue 9): Debian bookworm's source package ``kubernetes``
``1.20.5+really1.20.2-1.1+deb12u1`` is the untouched upstream v1.20.2 archive with its full
``vendor/`` (the newest complete Kubernetes source reachable here). It must be built with
Go 1.15 (Go >= 1.18 builds a kube-apiserver that crashes on the first custom-resource write),
taken from Debian bullseye's ``golang-1.15-go`` and ``golang-1.15-src``. Both archives come
through a *private* apt configuration (its own sources list, lists and cache under
``~/.cache/orch/apt-private``): nothing is installed system-wide and the system's apt state is
never touched. The Go packages are unpacked with ``dpkg-deb -x`` into a folder.

The build is ``GOPROXY=off GOMAXPROCS=2 CGO_ENABLED=0 GOFLAGS=-tags=providerless make
WHAT=...`` in the unpacked tree (``make`` runs the OpenAPI generator a plain ``go build``
lacks). Each binary is cached under ``~/.cache/orch/k8s/<key>/`` where the key hashes the
tarball's sha256, the Go version, the build flags and the target, so a second run only links
the cached binaries into ``--bin-dir``. etcd (bookworm ``etcd-server`` 3.4.x, the minor
v1.20.2 pins) and the exact kubectl (bookworm ``kubernetes-client`` 1.20.2) are downloaded
and unpacked the same way. Every external command is bounded by a timeout.

The last line printed is the bin directory (kube binaries, ``etcd``, ``kubectl``).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

CACHE = Path(os.environ.get("ORCH_CACHE_DIR", Path.home() / ".cache" / "orch"))
APT_DIR = CACHE / "apt-private"
K8S_DIR = CACHE / "k8s"

SOURCE_PACKAGE = "kubernetes"
SOURCE_VERSION = "1.20.5+really1.20.2-1.1+deb12u1"
UPSTREAM_VERSION = "v1.20.2"
ORIG_SHA256 = "b83c0780efb182d928dc63d46488a847f161f04e40a94b96bf5247dd671ecdfc"
GO_PACKAGES = ("golang-1.15-go", "golang-1.15-src")
GO_ROOT_IN_DEB = "usr/lib/go-1.15"
ETCD_PACKAGE, ETCD_PREFIX = "etcd-server", "3.4."
KUBECTL_PACKAGE, KUBECTL_PREFIX = "kubernetes-client", "1.20.5+really1.20.2"
BUILD_ENV = {"GOPROXY": "off", "GOMAXPROCS": "2", "CGO_ENABLED": "0",
             "GOFLAGS": "-tags=providerless"}
DEFAULT_WHAT = ("cmd/kube-apiserver",)

DEBIAN = "http://deb.debian.org/debian"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
SOURCES = f"""\
deb [signed-by={KEYRING}] {DEBIAN} bookworm main
deb-src [signed-by={KEYRING}] {DEBIAN} bookworm main
deb [signed-by={KEYRING}] {DEBIAN} bullseye main
"""


class BuildError(RuntimeError):
    """A step of the build failed; the message names the step."""


def log(message: str) -> None:
    print(f"kubebuild: {message}", file=sys.stderr, flush=True)


def run(argv: Sequence[str], *, timeout: float, cwd: Path | None = None,
        env: dict[str, str] | None = None, capture: bool = False) -> str:
    try:
        done = subprocess.run(list(argv), cwd=cwd, env=env, timeout=timeout, check=False,
                              stdout=subprocess.PIPE if capture else sys.stderr,
                              stderr=subprocess.PIPE if capture else sys.stderr, text=True)
    except subprocess.TimeoutExpired:
        what = " ".join(argv[:3])
        raise BuildError(f"{what} did not finish in {timeout:.0f} s") from None
    except FileNotFoundError:
        raise BuildError(f"{argv[0]} is not installed") from None
    if done.returncode != 0:
        detail = (done.stderr or "").strip().splitlines()[-1:] if capture else []
        raise BuildError(f"{' '.join(argv[:3])} exited {done.returncode} {' '.join(detail)}")
    return done.stdout if capture else ""


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Serialise builders sharing the cache (e.g. CI and the lab mirror)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# --- the private apt configuration -------------------------------------------------------

def apt_options() -> list[str]:
    status = APT_DIR / "status"
    parts = APT_DIR / "sources.list.d"
    options = {
        "Dir::Etc::SourceList": APT_DIR / "sources.list",
        "Dir::Etc::SourceParts": parts,
        "Dir::Etc::Preferences": APT_DIR / "preferences",
        "Dir::Etc::PreferencesParts": parts,
        "Dir::State": APT_DIR / "state",
        "Dir::State::Lists": APT_DIR / "lists",
        "Dir::State::status": status,
        "Dir::Cache": APT_DIR / "cache",
        "Debug::NoLocking": "1",
        "APT::Get::List-Cleanup": "0",
    }
    if os.geteuid() == 0:  # the private dirs are root's; apt's _apt sandbox cannot write them
        options["APT::Sandbox::User"] = "root"
    return [arg for key, value in options.items() for arg in ("-o", f"{key}={value}")]


def apt_update(timeout: float) -> None:
    for sub in ("lists/partial", "cache/archives/partial", "state", "sources.list.d"):
        (APT_DIR / sub).mkdir(parents=True, exist_ok=True)
    (APT_DIR / "status").touch()
    (APT_DIR / "preferences").touch()
    sources = APT_DIR / "sources.list"
    stamp = APT_DIR / "updated"
    if (sources.exists() and sources.read_text() == SOURCES and stamp.exists()
            and time.time() - stamp.stat().st_mtime < 86400):
        return
    sources.write_text(SOURCES)
    log("apt-get update (private configuration: bookworm deb/deb-src, bullseye)")
    run(["apt-get", *apt_options(), "-qq", "update"], timeout=timeout)
    stamp.touch()


def candidate(package: str, prefix: str, timeout: float) -> str:
    """The newest version of ``package`` in the private lists starting with ``prefix``."""
    out = run(["apt-cache", *apt_options(), "madison", package], timeout=timeout, capture=True)
    versions = [parts[1].strip() for line in out.splitlines()
                if len(parts := line.split("|")) >= 3 and "Sources" not in parts[2]]
    for version in versions:
        if version.startswith(prefix):
            return version
    raise BuildError(f"no {package} {prefix}* in bookworm/bullseye (found {versions})")


def download_deb(package: str, version: str, into: Path, timeout: float) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    found = sorted(into.glob(f"{package}_*.deb"))
    if not found:
        run(["apt-get", *apt_options(), "-qq", "download", f"{package}={version}"],
            timeout=timeout, cwd=into)
        found = sorted(into.glob(f"{package}_*.deb"))
    if not found:
        raise BuildError(f"apt-get download {package} left no .deb in {into}")
    return found[-1]


def unpack_debs(packages: Sequence[tuple[str, str]], dest: Path, timeout: float) -> Path:
    """``dpkg-deb -x`` each package into ``dest`` (once: a marker records completion)."""
    marker = dest / ".unpacked"
    if marker.exists():
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for package, version in packages:
        deb = download_deb(package, version, APT_DIR / "debs", timeout)
        run(["dpkg-deb", "-x", str(deb), str(dest)], timeout=timeout)
    marker.write_text("\n".join(f"{p} {v}" for p, v in packages) + "\n")
    return dest


# --- the source tree and the toolchain --------------------------------------------------

def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def orig_tarball(timeout: float) -> Path:
    into = APT_DIR / "source"
    into.mkdir(parents=True, exist_ok=True)
    found = sorted(into.glob(f"{SOURCE_PACKAGE}_*.orig.tar.*"))
    if not found:
        log(f"apt-get source --download-only {SOURCE_PACKAGE}={SOURCE_VERSION}")
        run(["apt-get", *apt_options(), "-qq", "source", "--download-only",
             f"{SOURCE_PACKAGE}={SOURCE_VERSION}"], timeout=timeout, cwd=into)
        found = sorted(into.glob(f"{SOURCE_PACKAGE}_*.orig.tar.*"))
    if len(found) != 1:
        raise BuildError(f"expected one orig tarball in {into}, found {found}")
    actual = sha256(found[0])
    if actual != ORIG_SHA256:
        found[0].unlink()
        raise BuildError(f"{found[0].name}: sha256 {actual}, expected {ORIG_SHA256}")
    return found[0]


def source_tree(tarball: Path) -> Path:
    """The upstream tree, unpacked once per tarball digest."""
    tree = K8S_DIR / f"src-{ORIG_SHA256[:16]}"
    if (tree / ".unpacked").exists():
        return tree
    shutil.rmtree(tree, ignore_errors=True)
    log(f"unpacking {tarball.name}")
    staging = tree.with_name(tree.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    with tarfile.open(tarball) as archive:
        archive.extractall(staging, filter="tar")
    entries = list(staging.iterdir())
    top = entries[0] if len(entries) == 1 and entries[0].is_dir() else staging
    top.rename(tree)
    shutil.rmtree(staging, ignore_errors=True)
    major, minor = UPSTREAM_VERSION[1:].split(".")[:2]
    (tree / ".orch-version").write_text(
        f"KUBE_GIT_COMMIT=''\nKUBE_GIT_TREE_STATE='archive'\n"
        f"KUBE_GIT_VERSION='{UPSTREAM_VERSION}'\nKUBE_GIT_MAJOR='{major}'\n"
        f"KUBE_GIT_MINOR='{minor}'\n")
    (tree / ".unpacked").touch()
    return tree


def go_toolchain(timeout: float) -> tuple[Path, str]:
    """GOROOT of the unpacked Go 1.15 and its exact version (e.g. ``go1.15.15``)."""
    packages = [(name, candidate(name, "1.15", timeout)) for name in GO_PACKAGES]
    root = unpack_debs(packages, K8S_DIR / f"go-{packages[0][1]}", timeout) / GO_ROOT_IN_DEB
    src = root / "src"
    if src.is_symlink() and not src.exists():  # an absolute link into /usr/share: re-point it
        target = os.readlink(src)
        src.unlink()
        src.symlink_to(root.parents[2] / target.lstrip("/"))
    version = (root / "VERSION").read_text().split()[0] if (root / "VERSION").exists() else ""
    if not version:
        out = run([str(root / "bin" / "go"), "version"], timeout=60, capture=True,
                  env={**os.environ, "GOROOT": str(root)})
        version = out.split()[2]
    return root, version


# --- building and caching ----------------------------------------------------------------

def binary_name(target: str) -> str:
    return target.rstrip("/").rsplit("/", 1)[-1]


def cache_key(target: str, go_version: str) -> str:
    flags = " ".join(f"{k}={v}" for k, v in sorted(BUILD_ENV.items()))
    material = f"{ORIG_SHA256}\n{go_version}\n{flags}\n{target}\n"
    return hashlib.sha256(material.encode()).hexdigest()[:20]


def cached_binary(target: str, go_version: str) -> Path:
    return K8S_DIR / cache_key(target, go_version) / binary_name(target)


def make(tree: Path, goroot: Path, targets: Sequence[str], timeout: float) -> None:
    env = {**os.environ, **BUILD_ENV,
           "GOROOT": str(goroot), "PATH": f"{goroot / 'bin'}:{os.environ.get('PATH', '')}",
           "KUBE_GIT_VERSION_FILE": str(tree / ".orch-version"), "KUBE_VERBOSE": "1"}
    for name in ("GOTOOLCHAIN", "GO111MODULE", "GOBIN"):
        env.pop(name, None)
    started = time.monotonic()
    log(f"make WHAT='{' '.join(targets)}' ({timeout:.0f} s at most)")
    run(["make", f"WHAT={' '.join(targets)}"], cwd=tree, env=env, timeout=timeout)
    log(f"built {', '.join(targets)} in {time.monotonic() - started:.0f} s")


def build(targets: Sequence[str], timeout: float) -> dict[str, Path]:
    """Each target's cached binary, building those not cached yet in one ``make``."""
    apt_update(timeout=600)
    goroot, go_version = go_toolchain(timeout=600)
    missing = [t for t in targets if not cached_binary(t, go_version).exists()]
    if missing:
        tree = source_tree(orig_tarball(timeout=900))
        make(tree, goroot, missing, timeout)
        out = tree / "_output" / "local" / "bin" / "linux" / "amd64"
        for target in missing:
            built = out / binary_name(target)
            if not built.exists():
                raise BuildError(f"make WHAT={target} produced no {built}")
            dest = cached_binary(target, go_version)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(built, dest.with_suffix(".tmp"))
            dest.with_suffix(".tmp").rename(dest)
    return {binary_name(t): cached_binary(t, go_version) for t in targets}


def tools(timeout: float) -> dict[str, Path]:
    """etcd and kubectl from bookworm, unpacked into the cache."""
    found: dict[str, Path] = {}
    for package, prefix, binary in ((ETCD_PACKAGE, ETCD_PREFIX, "etcd"),
                                    (KUBECTL_PACKAGE, KUBECTL_PREFIX, "kubectl")):
        version = candidate(package, prefix, timeout)
        dest = unpack_debs([(package, version)], K8S_DIR / f"{package}-{version}", timeout)
        path = dest / "usr" / "bin" / binary
        if not path.exists():
            raise BuildError(f"{package} {version} has no usr/bin/{binary}")
        found[binary] = path
    return found


def link_bin_dir(binaries: dict[str, Path], bin_dir: Path) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, path in binaries.items():
        link = bin_dir / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m lab.kubebuild", description=__doc__
                                     .split("\n\n")[0])
    parser.add_argument("--what", nargs="+", default=list(DEFAULT_WHAT),
                        help="make WHAT targets, e.g. cmd/kube-apiserver cmd/kubelet")
    parser.add_argument("--bin-dir", type=Path, default=K8S_DIR / "bin",
                        help="directory to link the binaries, etcd and kubectl into")
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds the make may take (default 1800)")
    parser.add_argument("--no-tools", action="store_true", help="skip etcd and kubectl")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        with locked(K8S_DIR / ".lock"):
            binaries = build(args.what, args.timeout)
            if not args.no_tools:
                binaries.update(tools(timeout=600))
            link_bin_dir(binaries, args.bin_dir)
    except BuildError as exc:
        print(f"kubebuild: error: {exc}", file=sys.stderr)
        return 1
    log(f"{', '.join(sorted(binaries))} ready in {time.monotonic() - started:.0f} s")
    print(args.bin_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
