"""A real two-node Kubernetes cluster in the lab, air-gapped (issue 11).

`orch lab up --mirror` boots a control-plane guest and a worker guest (2 vCPU, 2 GiB) and
serves the offline mirror (lab/mirror.py: kubeadm/kubelet/kubectl v1.20.2 built here,
Debian's node packages, images built here) on the lab network. `orch apply` of
tests/lab/data/profiles/k8s-lab.yaml then runs the catalog's own kubeadm playbooks
(playbooks/kubeadm/prepare.yml, init.yml, join.yml) pointed at the mirror, with the bridge
CNI from Debian's plugins; the `kubernetes` driver, given the kubeconfig init.yml published
(`published:kubeconfig/k8s-lab`), waits for both nodes Ready, creates a RuntimeClass and a
Deployment of the mirror's `hello` image and waits for its rollout. Then: `orch verify`
(testinfra: kubelet active, the control plane's and kube-proxy's containers running), the
pods answer HTTP from the other node (the bridge CNI's routes), a second apply changes
nothing, `orch destroy` removes the workloads, and `orch lab down` leaves nothing behind.

Each stage's wall time goes to ``$ORCH_BENCH_OUT`` (JSON) when set, for bench/README.md.
Under QEMU TCG it is CI's longest test: measured ~60 min at a load of ~20 on 2 cores
(node preparation alone ~36 min), see bench/README.md.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labhelpers import DATA, force_down, leftovers, opt_in, orch, profile_copy, unique

from lab.image import lab_keypair

pytestmark = [pytest.mark.slow, pytest.mark.libvirt, pytest.mark.timeout(5400),
              opt_in("ORCH_TEST_LAB_CLUSTER",
                     "~60 min under QEMU TCG at load ~20 (node preparation ~36 min), beyond "
                     "what CI's 90-minute limit leaves; not yet passed end to end in one run")]

FIGURES: dict[str, Any] = {}


def _ssh(address: str, command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    key = str(lab_keypair()[0])
    return subprocess.run(["ssh", "-i", key, "-o", "BatchMode=yes", "-o",
                           "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                           "-o", "LogLevel=ERROR", f"root@{address}", command],
                          capture_output=True, text=True, timeout=timeout, check=False)


def _stages(log: str) -> dict[str, float]:
    """Each step's own duration from apply's progress lines ("succeeded cp-1/k8s.init (…s)")."""
    found: dict[str, float] = {}
    for match in re.finditer(r"succeeded (\S+) \((\d+(?:\.\d+)?)s\)", log):
        found[match.group(1)] = float(match.group(2))
    return found


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("k8s")
    name = unique("labk8s")
    profile = profile_copy(tmp, DATA / "profiles" / "k8s-lab.yaml", name)
    inventory = tmp / "inventory.yaml"
    started = time.monotonic()
    up = orch("lab", "up", str(profile), "--mirror", "--memory-mib", "2048", "--no-bmc",
              "--out", str(inventory), timeout=3000)
    FIGURES["lab_up_s"] = round(time.monotonic() - started, 1)
    try:
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-3000:]
        url = re.search(r"Offline mirror: (http://\S+)", up.stdout)
        assert url, up.stdout
        import yaml

        data = yaml.safe_load(inventory.read_text())
        yield {"name": name, "profile": profile, "inventory": inventory, "tmp": tmp,
               "addresses": {h["name"]: h["address"] for h in data["hosts"]},
               "common": ["-i", str(inventory), "-p", f"k8s_mirror={url.group(1)}",
                          "--state", str(tmp / "state.db")]}
    finally:
        started = time.monotonic()
        down = orch("lab", "down", str(profile), timeout=600)
        FIGURES["lab_down_s"] = round(time.monotonic() - started, 1)
        if down.returncode != 0:
            force_down(name)
        if os.environ.get("ORCH_BENCH_OUT"):
            Path(os.environ["ORCH_BENCH_OUT"]).write_text(json.dumps(FIGURES, indent=2) + "\n")
        assert leftovers(f"orch-{name}") == []


def test_apply_brings_up_the_cluster_from_the_mirror(cluster: dict[str, Any]) -> None:
    started = time.monotonic()
    result = orch("apply", str(cluster["profile"]), *cluster["common"], "--auto-approve",
                  timeout=4200)
    FIGURES["apply_s"] = round(time.monotonic() - started, 1)
    FIGURES["steps_s"] = _stages(result.stderr)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    assert "10 succeeded, 0 failed" in result.stderr, result.stderr[-3000:]
    cp = cluster["addresses"]["cp-1"]
    nodes = _ssh(cp, "kubectl get nodes --no-headers")
    assert nodes.stdout.count(" Ready ") == 2, nodes.stdout + nodes.stderr
    for host, address in cluster["addresses"].items():
        FIGURES[f"memory_used_mib_{host}"] = _ssh(address, "free -m | awk '/^Mem:/ {print $3}'"
                                                  ).stdout.strip()


def test_the_kubeconfig_was_handed_over_privately(cluster: dict[str, Any]) -> None:
    published = Path(f"{cluster['tmp'] / 'state.db'}.published")
    found = list(published.rglob("k8s-lab"))
    assert len(found) == 1, list(published.rglob("*"))
    assert found[0].stat().st_mode & 0o077 == 0
    assert "client-key-data" in found[0].read_text()
    state_text = (cluster["tmp"] / "state.db").read_bytes()
    assert b"client-key-data" not in state_text


def test_verify_checks_kubelet_and_containers_in_the_guests(cluster: dict[str, Any]) -> None:
    result = orch("verify", str(cluster["profile"]), "-i", str(cluster["inventory"]),
                  timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"== [1-9]\d* passed, 0 failed", result.stdout), result.stdout
    assert "control plane containers running" in result.stdout
    assert "kube-proxy running" in result.stdout


def test_pods_answer_from_the_other_node(cluster: dict[str, Any]) -> None:
    """Both replicas run on the worker (the control plane keeps its NoSchedule taint): the
    control plane reaches them only through the bridge CNI's route to the worker's pods."""
    cp = cluster["addresses"]["cp-1"]
    pods = _ssh(cp, "kubectl get pods -l app=hello -o "
                    "jsonpath='{range .items[*]}{.status.podIP} {.spec.nodeName}{\"\\n\"}{end}'")
    lines = [ln.split() for ln in pods.stdout.splitlines() if ln.strip()]
    assert len(lines) == 2, pods.stdout + pods.stderr
    for ip, node in lines:
        assert node == "worker-1"
        answer = _ssh(cp, "python3 -c \"import urllib.request as u; print(u.urlopen("
                          f"'http://{ip}:8080', timeout=20).read().decode())\"")
        assert answer.stdout.startswith("hello from hello-"), answer.stdout + answer.stderr
    containers = _ssh(cluster["addresses"]["worker-1"], "docker ps --format '{{.Names}}'")
    assert containers.stdout.count("k8s_hello_") == 2, containers.stdout


def test_second_apply_changes_nothing(cluster: dict[str, Any]) -> None:
    result = orch("plan", str(cluster["profile"]), *cluster["common"], timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "No changes" in result.stdout + result.stderr
    result = orch("apply", str(cluster["profile"]), *cluster["common"], "--auto-approve",
                  timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "No changes" in result.stderr


def test_destroy_removes_the_workloads(cluster: dict[str, Any]) -> None:
    started = time.monotonic()
    result = orch("destroy", str(cluster["profile"]), *cluster["common"], "--auto-approve",
                  timeout=1800)
    FIGURES["destroy_s"] = round(time.monotonic() - started, 1)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    left = _ssh(cluster["addresses"]["cp-1"],
                "kubectl get deployment hello runtimeclass docker --ignore-not-found -o name")
    assert left.returncode == 0 and left.stdout.strip() == "", left.stdout + left.stderr
