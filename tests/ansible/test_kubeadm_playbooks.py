"""The kubeadm playbooks' configuration, rendered by Ansible itself from init.yml's own play
variables: the kubeadm API version follows the Kubernetes version, kubelet settings land in
the KubeletConfiguration, the image repository and endpoint are the variables given; and
join.yml picks the first control plane and the joining control planes from the inventory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"


def _need_ansible() -> None:
    if not shutil.which("ansible-playbook"):
        if os.environ.get("CI") == "true":
            pytest.fail("ansible-playbook is not installed")
        pytest.skip("ansible-playbook is not installed")


def _run(tmp_path: Path, play: dict[str, Any], extra: dict[str, Any],
         inventory: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
    # a copy of playbooks/kubeadm, so the play finds templates/ and tasks/ beside it
    folder = tmp_path / "kubeadm"
    if not folder.exists():
        shutil.copytree(PLAYBOOKS / "kubeadm", folder)
    book = folder / "orch-test-render.yml"
    book.write_text(yaml.safe_dump([play]))
    (tmp_path / "extra.yml").write_text(yaml.safe_dump(extra))
    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump(inventory or {"all": {"hosts": {"cp0": {
        "ansible_host": "192.0.2.10", "ansible_connection": "local"}}}}))
    return subprocess.run(
        ["ansible-playbook", "-i", str(inv), str(book), "-e", f"@{tmp_path / 'extra.yml'}"],
        capture_output=True, text=True, timeout=180,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1",
             "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
             "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp")})


def _render_init(tmp_path: Path, extra: dict[str, Any]) -> list[dict[str, Any]]:
    init = yaml.safe_load((PLAYBOOKS / "kubeadm" / "init.yml").read_text())[0]
    out = tmp_path / "kubeadm-config.yaml"
    template = next(t for t in init["tasks"] if "ansible.builtin.template" in t)
    task = {"name": "render", "ansible.builtin.template": {
        **template["ansible.builtin.template"], "dest": str(out)}}
    play = {"name": "render", "hosts": "all", "gather_facts": False, "vars": init["vars"],
            "tasks": [init["tasks"][0], task]}
    result = _run(tmp_path, play, extra)
    assert result.returncode == 0, result.stdout[-3000:]
    return list(yaml.safe_load_all(out.read_text()))


@pytest.mark.slow
@pytest.mark.parametrize(("version", "api"), [("1.20.2", "v1beta2"), ("1.21.14", "v1beta2"),
                                              ("1.22.0", "v1beta3"), ("1.30.2", "v1beta3"),
                                              ("1.31.1", "v1beta4")])
def test_the_kubeadm_api_follows_the_kubernetes_version(tmp_path: Path, version: str,
                                                       api: str) -> None:
    _need_ansible()
    docs = _render_init(tmp_path, {"k8s_version": version})
    kinds = {d["kind"]: d for d in docs}
    assert kinds["InitConfiguration"]["apiVersion"] == f"kubeadm.k8s.io/{api}"
    assert kinds["ClusterConfiguration"]["apiVersion"] == f"kubeadm.k8s.io/{api}"
    assert kinds["ClusterConfiguration"]["kubernetesVersion"] == f"v{version}"


@pytest.mark.slow
def test_kubelet_settings_mirror_and_endpoint_are_applied(tmp_path: Path) -> None:
    _need_ansible()
    docs = _render_init(tmp_path, {
        "k8s_version": "1.20.2", "k8s_cpu_manager_policy": "static",
        "k8s_reserved_cpus": "0-1", "k8s_image_repository": "10.0.0.1:5000/k8s",
        "k8s_control_plane_endpoint": "vip.example:6443", "k8s_pod_cidr": "10.81.0.0/16",
        "k8s_cert_sans": ["edge.example"]})
    kinds = {d["kind"]: d for d in docs}
    kubelet = kinds["KubeletConfiguration"]
    assert kubelet["cpuManagerPolicy"] == "static"
    assert kubelet["reservedSystemCPUs"] == "0-1"
    assert kubelet["cgroupDriver"] == "systemd"
    cluster = kinds["ClusterConfiguration"]
    assert cluster["imageRepository"] == "10.0.0.1:5000/k8s"
    assert cluster["controlPlaneEndpoint"] == "vip.example:6443"
    assert cluster["networking"]["podSubnet"] == "10.81.0.0/16"
    assert cluster["apiServer"]["certSANs"] == ["vip.example", "edge.example"]
    assert kinds["InitConfiguration"]["localAPIEndpoint"]["advertiseAddress"] == "192.0.2.10"


@pytest.mark.slow
def test_join_finds_the_first_node_and_the_joining_control_planes(tmp_path: Path) -> None:
    _need_ansible()
    join = yaml.safe_load((PLAYBOOKS / "kubeadm" / "join.yml").read_text())[0]
    out = tmp_path / "roles.txt"
    show = {"name": "show", "ansible.builtin.copy": {
        "dest": str(out), "mode": "0600",
        "content": "{{ {'first': _first, 'joiners': _joiners, 'control': _control} | to_json }}"},
        "delegate_to": "localhost", "run_once": True}
    play = {"name": "join roles", "hosts": "all", "gather_facts": False,
            "vars": join["vars"], "tasks": [join["tasks"][0], show]}
    hosts = {f"lab-0{i}": {"ansible_host": f"192.0.2.1{i}", "ansible_connection": "local",
                           "orch_role": role}
             for i, role in ((1, "cp"), (2, "cp"), (3, "cp"), (4, "worker"))}
    inventory = {"all": {"hosts": hosts, "children": {
        "cp": {"hosts": {"lab-01": {}, "lab-02": {}, "lab-03": {}}},
        "worker": {"hosts": {"lab-04": {}}}}}}
    result = _run(tmp_path, play, {"k8s_first": "192.0.2.11", "k8s_control_roles": ["cp"]},
                  inventory)
    assert result.returncode == 0, result.stdout[-3000:]
    got = yaml.safe_load(out.read_text())
    assert got == {"first": "lab-01", "joiners": ["lab-02", "lab-03", "lab-04"],
                   "control": ["lab-02", "lab-03"]}


def test_join_accepts_a_host_without_ansible_host(tmp_path: Path) -> None:
    # a worker reached by its inventory name (no ansible_host) used to fail the whole play
    # in _addresses (extract of an undefined ansible_host); the first node is still found by
    # its address, and a name given as k8s_first still works
    _need_ansible()
    join = yaml.safe_load((PLAYBOOKS / "kubeadm" / "join.yml").read_text())[0]
    out = tmp_path / "roles.txt"
    show = {"name": "show", "ansible.builtin.copy": {
        "dest": str(out), "mode": "0600",
        "content": "{{ {'first': _first, 'joiners': _joiners, 'addresses': _addresses}"
                   " | to_json }}"},
        "delegate_to": "localhost", "run_once": True}
    play = {"name": "join roles", "hosts": "all", "gather_facts": False,
            "vars": join["vars"], "tasks": [join["tasks"][0], show]}
    hosts = {"lab-01": {"ansible_host": "192.0.2.11", "ansible_connection": "local"},
             "lab-02": {"ansible_connection": "local"}}
    inventory = {"all": {"hosts": hosts, "children": {
        "cp": {"hosts": {"lab-01": {}}}, "worker": {"hosts": {"lab-02": {}}}}}}
    result = _run(tmp_path, play, {"k8s_first": "192.0.2.11", "k8s_control_roles": ["cp"]},
                  inventory)
    assert result.returncode == 0, result.stdout[-3000:]
    got = yaml.safe_load(out.read_text())
    assert got == {"first": "lab-01", "joiners": ["lab-02"],
                   "addresses": ["192.0.2.11", "lab-02"]}


@pytest.mark.slow
def test_the_labs_air_gapped_settings_land_in_the_init_configuration(tmp_path: Path) -> None:
    """What the lab's 1.20 cluster needs (dockershim, pinned identity, Debian's CNI plugin
    directory, Debian's etcd tag, a long control-plane timeout), in v1beta2's shapes."""
    _need_ansible()
    docs = _render_init(tmp_path, {
        "k8s_version": "v1.20.2", "k8s_runtime": "docker", "k8s_pin_node_identity": True,
        "k8s_cni_bin_dir": "/usr/lib/cni", "k8s_etcd_image_tag": "3.4.23-0",
        "k8s_control_plane_timeout": "20m"})
    kinds = {d["kind"]: d for d in docs}
    registration = kinds["InitConfiguration"]["nodeRegistration"]
    assert registration == {"name": "cp0", "criSocket": "/var/run/dockershim.sock",
                            "kubeletExtraArgs": {"node-ip": "192.0.2.10",
                                                 "cni-bin-dir": "/usr/lib/cni"}}
    cluster = kinds["ClusterConfiguration"]
    assert cluster["etcd"] == {"local": {"imageTag": "3.4.23-0"}}
    assert cluster["apiServer"]["timeoutForControlPlane"] == "20m"


@pytest.mark.slow
def test_defaults_leave_node_registration_to_kubeadm(tmp_path: Path) -> None:
    _need_ansible()
    kinds = {d["kind"]: d for d in _render_init(tmp_path, {"k8s_version": "1.30.2"})}
    assert "nodeRegistration" not in kinds["InitConfiguration"]
    assert "etcd" not in kinds["ClusterConfiguration"]
    assert "timeoutForControlPlane" not in kinds["ClusterConfiguration"]["apiServer"]


@pytest.mark.slow
def test_v1beta4_takes_kubelet_args_as_a_list_and_the_timeout_in_init(tmp_path: Path) -> None:
    _need_ansible()
    docs = _render_init(tmp_path, {"k8s_version": "1.31.1", "k8s_pin_node_identity": True,
                                   "k8s_control_plane_timeout": "10m"})
    init = {d["kind"]: d for d in docs}["InitConfiguration"]
    assert init["nodeRegistration"]["kubeletExtraArgs"] == [
        {"name": "node-ip", "value": "192.0.2.10"}]
    assert init["timeouts"] == {"controlPlaneComponentHealthCheck": "10m"}


@pytest.mark.slow
@pytest.mark.parametrize(("version", "api", "control"), [
    ("v1.20.2", "v1beta2", False), ("v1.30.2", "v1beta3", True), ("v1.31.0", "v1beta4", False)])
def test_the_join_configuration_comes_from_the_join_command(
        tmp_path: Path, version: str, api: str, control: bool) -> None:
    _need_ansible()
    join = yaml.safe_load((PLAYBOOKS / "kubeadm" / "join.yml").read_text())[0]
    out = tmp_path / "join.yaml"
    facts = {"name": "fake what the first node and kubeadm said", "ansible.builtin.set_fact": {
        "join": {"stdout": "kubeadm join 192.0.2.11:6443 --token abcdef.0123456789abcdef "
                           "--discovery-token-ca-cert-hash sha256:" + "a" * 64},
        "kubeadm_version": {"stdout": version}, "certkey": {"stdout": "c" * 64}}}
    render = {"name": "render", "ansible.builtin.template": {
        "src": "templates/kubeadm-join.yaml.j2", "dest": str(out), "mode": "0600"}}
    play = {"name": "join config", "hosts": "all", "gather_facts": False,
            "vars": join["vars"], "tasks": [facts, render]}
    hosts = {"lab-01": {"ansible_host": "192.0.2.11", "ansible_connection": "local"},
             "lab-02": {"ansible_host": "192.0.2.12", "ansible_connection": "local"}}
    inventory = {"all": {"hosts": hosts, "children": {
        "cp": {"hosts": {"lab-01": {}, **({"lab-02": {}} if control else {})}}}}}
    result = _run(tmp_path, {**play, "hosts": "lab-02"}, {
        "k8s_first": "lab-01", "k8s_control_roles": ["cp"], "k8s_runtime": "docker",
        "k8s_pin_node_identity": True, "k8s_cni_bin_dir": "/usr/lib/cni"}, inventory)
    assert result.returncode == 0, result.stdout[-3000:]
    config = yaml.safe_load(out.read_text())
    assert config["apiVersion"] == f"kubeadm.k8s.io/{api}"
    assert config["discovery"]["bootstrapToken"] == {
        "apiServerEndpoint": "192.0.2.11:6443", "token": "abcdef.0123456789abcdef",
        "caCertHashes": ["sha256:" + "a" * 64]}
    registration = config["nodeRegistration"]
    assert registration["name"] == "lab-02"
    args = registration["kubeletExtraArgs"]
    if api == "v1beta4":
        assert {"name": "node-ip", "value": "192.0.2.12"} in args
    else:
        assert args == {"node-ip": "192.0.2.12", "cni-bin-dir": "/usr/lib/cni"}
        assert registration["criSocket"].endswith("/var/run/dockershim.sock")
    if control:
        assert config["controlPlane"] == {"certificateKey": "c" * 64, "localAPIEndpoint": {
            "advertiseAddress": "192.0.2.12", "bindPort": 6443}}
    else:
        assert "controlPlane" not in config
