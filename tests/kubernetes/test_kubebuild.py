"""lab.kubebuild: the binaries it made are the genuine versions, the cache key follows what
the build depends on, and a second run only links the cached binaries."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from realserver import BIN, binaries_missing

from lab import kubebuild


def test_the_cache_key_changes_with_target_toolchain_and_flags(
        monkeypatch: pytest.MonkeyPatch) -> None:
    key = kubebuild.cache_key("cmd/kube-apiserver", "go1.15.15")
    assert key == kubebuild.cache_key("cmd/kube-apiserver", "go1.15.15")
    assert key != kubebuild.cache_key("cmd/kube-controller-manager", "go1.15.15")
    assert key != kubebuild.cache_key("cmd/kube-apiserver", "go1.15.14")
    monkeypatch.setitem(kubebuild.BUILD_ENV, "GOFLAGS", "")
    assert key != kubebuild.cache_key("cmd/kube-apiserver", "go1.15.15")
    assert kubebuild.cached_binary("cmd/kube-apiserver", "go1.15.15").name == "kube-apiserver"


def test_a_bad_argument_is_one_line_and_exit_2() -> None:
    done = subprocess.run([sys.executable, "-m", "lab.kubebuild", "--timeout", "soon"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "invalid float value" in done.stderr


def versions() -> dict[str, str]:
    def out(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout
    return {"kube-apiserver": out(str(BIN / "kube-apiserver"), "--version").strip(),
            "etcd": out(str(BIN / "etcd"), "--version").splitlines()[0],
            "kubectl": out(str(BIN / "kubectl"), "version", "--client", "--short").strip()}


@pytest.mark.slow
def test_the_built_binaries_are_the_genuine_versions_and_a_second_run_is_cached() -> None:
    from tests.conftest import require_service

    if binaries_missing() or not (BIN / "kubectl").exists():
        require_service(f"no kube binaries in {BIN}: run `python3 -m lab.kubebuild`")
    found = versions()
    assert found["kube-apiserver"] == "Kubernetes v1.20.2"
    assert found["kubectl"] == "Client Version: v1.20.2"
    assert found["etcd"].startswith("etcd Version: 3.4.")  # the minor v1.20.2 pins
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "lab.kubebuild", "--what",
                           "cmd/kube-apiserver", "--bin-dir", str(BIN)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == str(BIN)
    assert "make WHAT" not in done.stderr  # nothing was built again
    assert time.monotonic() - started < 120
