"""A cluster built by one layer drives the next (issue 9, item 4).

The fast tests pin the mechanism (:mod:`orchestrator.published`): ``{$publish: NAME}`` becomes
a path in the deployment's private directory, ``published:NAME`` reads what was written
there, and the Kubernetes driver takes a kubeconfig as a secret.

The slow test is the hand-off end to end through the ``orch`` command: a profile whose first
layer publishes two kubeconfigs of the real kube-apiserver (one with a client certificate and
key, one with a bearer token) with the shared playbook ``common/publish-kubeconfig.yml``,
run by the Ansible driver over a real sshd on loopback -- as a kubeadm node's admin.conf is
fetched -- and whose next layer applies a ConfigMap through each. Then everything orch wrote
(state database, saved plan, JSON logs, stdout, stderr) is searched for key material.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from drivers.kubernetes.connection import kubeconfig_of
from drivers.kubernetes.settings import KubernetesSettings
from orchestrator import published
from orchestrator.errors import SecretError
from orchestrator.secrets import Secret, check_reference, resolve, resolve_inputs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def publish_dir(tmp_path: Path) -> Iterator[Path]:
    directory = published.directory_for(str(tmp_path / "p.orch.db"), "p")
    published.use(directory)
    yield directory
    published.use(None)


def test_publish_gives_a_private_path_and_published_reads_it(publish_dir: Path) -> None:
    inputs = resolve_inputs({"vars": {"out": {"$publish": "kubeconfig/mgmt"}}})
    path = Path(inputs["vars"]["out"])
    assert path == publish_dir / "kubeconfig" / "mgmt"
    assert publish_dir.parent.name == "p.orch.db.published"
    for d in (publish_dir, path.parent):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700
    path.write_text("apiVersion: v1\n")
    secret = resolve_inputs({"$secret": "published:kubeconfig/mgmt"})
    assert isinstance(secret, Secret) and secret.reveal() == "apiVersion: v1"
    assert "apiVersion" not in repr(secret) and str(secret) == "********"


def test_a_reference_before_its_publisher_ran_says_what_to_do(publish_dir: Path) -> None:
    with pytest.raises(SecretError) as err:
        resolve("published:kubeconfig/tenant-a")
    assert "has not been published yet" in str(err.value) and "after:" in err.value.hint


def test_published_names_cannot_leave_the_directory(publish_dir: Path) -> None:
    for bad in ("published:../x", "published:/etc/passwd", "published:"):
        assert check_reference(bad) is not None, bad
    with pytest.raises(SecretError):
        resolve_inputs({"$publish": "../../escape"})


def test_without_a_run_there_is_no_published_directory() -> None:
    published.use(None)
    with pytest.raises(SecretError, match="outside an orch run"):
        resolve("published:kubeconfig/mgmt")


def test_published_directory_per_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ORCH_PUBLISHED_DIR", raising=False)
    assert published.directory_for(f"sqlite:///{tmp_path}/a.orch.db", "x") == \
        tmp_path / "a.orch.db.published" / "x"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert published.directory_for("postgresql://orch@db.example:5432/orch", "x") == \
        tmp_path / "xdg" / "orch" / "published" / "db.example-orch" / "x"
    monkeypatch.setenv("ORCH_PUBLISHED_DIR", str(tmp_path / "given"))
    assert published.directory_for("anything.db", "x") == tmp_path / "given" / "x"


def test_kubeconfig_from_a_step_input_or_a_setting_reference(publish_dir: Path) -> None:
    path = Path(resolve_inputs({"$publish": "kubeconfig/a"}))
    path.write_text("kind: Config\n")
    from_setting = kubeconfig_of(None, KubernetesSettings(kubeconfig="published:kubeconfig/a"))
    from_input = kubeconfig_of({"$secret": "published:kubeconfig/a"}, KubernetesSettings())
    assert from_setting.text == from_input.text == "kind: Config"
    assert from_input.reference == "published:kubeconfig/a"
    assert "kind: Config" not in repr(from_input)
    assert kubeconfig_of("published:kubeconfig/a", KubernetesSettings()).text == "kind: Config"
    assert kubeconfig_of("", KubernetesSettings(kubeconfig="/x/config")).path == "/x/config"


def _plan_profile(tmp_path: Path, text: str) -> Any:
    from orchestrator.loader import load
    from orchestrator.planner import PlanOptions, make_plan
    from orchestrator.state import open_store

    (tmp_path / "profiles").mkdir(exist_ok=True)
    if not (tmp_path / "playbooks").exists():
        (tmp_path / "playbooks").symlink_to(ROOT / "playbooks")
    profile = tmp_path / "profiles" / "p.yaml"
    profile.write_text(text)
    inventory = tmp_path / "i.yaml"
    inventory.write_text("apiVersion: orch/v1\nkind: Inventory\nmetadata: {name: i}\n"
                         "hosts: [{name: h1, address: 192.0.2.1}]\n")
    store = open_store(str(tmp_path / "p.orch.db"))
    try:
        return make_plan(load(profile, inventory), store, PlanOptions(refresh=False))
    finally:
        store.close()


def test_a_reader_must_come_after_its_publisher(tmp_path: Path) -> None:
    from orchestrator.errors import PlanError

    ordered = PROFILE.replace("NODE", "/n").replace("NS", "ns").replace("URL", "https://x")
    plan = _plan_profile(tmp_path, ordered)
    assert {p.step.id for p in plan} >= {"cp-1/publish.cert", "app.by-cert"}
    with pytest.raises(PlanError) as err:
        _plan_profile(tmp_path, ordered.replace("after: [publish.cert]", "after: []"))
    assert "app.by-cert reads published:kubeconfig/cert but does not come after " \
           "cp-1/publish.cert" in str(err.value) and "after: [publish.cert]" in str(err.value)
    with pytest.raises(PlanError, match="no step of this profile publishes"):
        _plan_profile(tmp_path, ordered.replace("published:kubeconfig/token",
                                                "published:kubeconfig/other"))


def test_a_driver_setting_reference_binds_every_step_of_the_driver(tmp_path: Path) -> None:
    from orchestrator.errors import PlanError

    text = PROFILE.replace("NODE", "/n").replace("NS", "ns").replace("URL", "https://x").replace(
        "roles:", "drivers:\n  kubernetes: {kubeconfig: \"published:kubeconfig/cert\"}\nroles:")
    with pytest.raises(PlanError, match=r"app\.by-token reads published:kubeconfig/cert"):
        _plan_profile(tmp_path, text)


# -- end to end --------------------------------------------------------------------------
def _sshd_helpers() -> Any:
    path = ROOT / "tests" / "ssh" / "sshd_server.py"
    spec = importlib.util.spec_from_file_location("orch_test_sshd_server_handoff", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    helpers = _sshd_helpers()
    why = helpers.available()
    if why:
        pytest.fail(why)
    with helpers.running_sshd(tmp_path_factory.mktemp("sshd-handoff")) as server:
        yield server


PROFILE = """\
apiVersion: orch/v1
kind: Profile
metadata: {name: handoff, title: "a cluster built by one layer drives the next"}
roles:
  cp: {count: 1, bmc: none}
layers:
  - name: cluster
    components:
      - name: publish.cert
        type: ansible.playbook
        on: cp
        with:
          playbook: common/publish-kubeconfig.yml
          vars: {kubeconfig_src: NODE/cert.conf, kubeconfig_out: {$publish: kubeconfig/cert}}
      - name: publish.token
        type: ansible.playbook
        on: cp
        with:
          playbook: common/publish-kubeconfig.yml
          vars: {kubeconfig_src: NODE/token.conf, kubeconfig_out: {$publish: kubeconfig/token},
                 api_server: URL}
  - name: apps
    components:
      - name: app.by-cert
        type: kubernetes.manifest
        after: [publish.cert]
        with:
          kubeconfig: {$secret: published:kubeconfig/cert}
          manifest: {apiVersion: v1, kind: ConfigMap, metadata: {name: by-cert, namespace: NS},
                     data: {layer: apps}}
      - name: app.by-token
        type: kubernetes.manifest
        after: [publish.token]
        with:
          kubeconfig: {$secret: published:kubeconfig/token}
          manifest: {apiVersion: v1, kind: ConfigMap, metadata: {name: by-token, namespace: NS},
                     data: {layer: apps}}
"""


def _orch(*args: str, cwd: Path, log: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("ORCH_PUBLISHED_DIR", None)
    done = subprocess.run([sys.executable, "-m", "orch_cli.main", "--log-format", "json",
                           "--log-level", "debug", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    with log.open("a") as out:
        out.write(f"$ orch {' '.join(args)}\n{done.stdout}\n{done.stderr}\n")
    return done


@pytest.mark.slow
def test_a_published_kubeconfig_drives_the_next_layer_and_no_key_leaks(
        tmp_path: Path, kube_server: Any, sshd: Any) -> None:
    import uuid

    from kubernetes import client

    ns = f"handoff-{uuid.uuid4().hex[:6]}"
    api = kube_server.api_client()
    client.CoreV1Api(api).create_namespace({"metadata": {"name": ns}})
    # the "node": the kubeconfigs a cluster build leaves on a host, as admin.conf
    node = tmp_path / "node"
    node.mkdir()
    cert_conf = Path(kube_server.kubeconfig_path).read_text()
    (node / "cert.conf").write_text(cert_conf)
    # this one names an address orch cannot reach (as a node's 127.0.0.1 or an internal
    # VIP would): the publishing step points it at the URL orch reaches (api_server)
    token_conf = kube_server.kubeconfig(token=kube_server.admin_token)
    assert kube_server.url in token_conf
    (node / "token.conf").write_text(token_conf.replace(kube_server.url, "https://192.0.2.1:6443"))
    work = tmp_path / "deploy"
    (work / "profiles").mkdir(parents=True)
    (work / "playbooks").symlink_to(ROOT / "playbooks")
    profile = work / "profiles" / "handoff.yaml"
    profile.write_text(PROFILE.replace("NODE", str(node)).replace("NS", ns)
                       .replace("URL", kube_server.url))
    (work / "inventory.yaml").write_text(textwrap.dedent(f"""\
        apiVersion: orch/v1
        kind: Inventory
        metadata: {{name: loopback}}
        drivers:
          # the "node" is this machine, whose root PATH may lead to a pyenv shim
          ansible: {{known_hosts: {tmp_path}/known_hosts, python_interpreter: /usr/bin/python3}}
          ssh: {{known_hosts: {tmp_path}/known_hosts}}
        hosts:
          - name: node-1
            address: {sshd.address}
            ssh: {{user: root, port: {sshd.port}, private_key: "file:{sshd.client_key}"}}
        """))
    log = tmp_path / "orch-output.log"
    common = ["-i", "inventory.yaml", "--state", "state.orch.db"]

    planned = _orch("plan", "profiles/handoff.yaml", *common, "--out", "plan.json",
                    cwd=work, log=log)
    assert planned.returncode in (0, 2), planned.stderr
    applied = _orch("apply", "plan.json", "--auto-approve", cwd=work, log=log)
    assert applied.returncode == 0, applied.stderr[-3000:]

    core = client.CoreV1Api(api)
    for name in ("by-cert", "by-token"):
        cm = core.read_namespaced_config_map(name, ns)
        assert cm.data == {"layer": "apps"}
        managers = {m.manager for m in cm.metadata.managed_fields or ()}
        assert "orch" in managers, managers

    # the published files: private, beside the state, named by the plan only
    pub = work / "state.orch.db.published" / "handoff" / "kubeconfig"
    assert stat.S_IMODE(pub.stat().st_mode) == 0o700
    for name in ("cert", "token"):
        assert stat.S_IMODE((pub / name).stat().st_mode) == 0o600
    assert (pub / "cert").read_text() == cert_conf
    assert f"server: {kube_server.url}" in (pub / "token").read_text()

    # a second plan reads the objects back through the published kubeconfigs: no changes
    again = _orch("plan", "profiles/handoff.yaml", *common, "--detailed-exitcode",
                  cwd=work, log=log)
    assert again.returncode == 0, again.stdout + again.stderr

    # nothing orch wrote holds key material
    user = yaml.safe_load(cert_conf)["users"][0]["user"]
    key_b64 = user["client-key-data"]
    key_pem = base64.b64decode(key_b64).decode()
    key_lines = [line for line in key_pem.splitlines() if line and "-----" not in line]
    forbidden = {"BEGIN": "BEGIN", "client-key-data": key_b64,
                 "admin token": kube_server.admin_token}
    forbidden.update({f"key line {i}": line for i, line in enumerate(key_lines)})
    # the needles are real: the published files (and only they) hold them
    assert key_b64 in (pub / "cert").read_text()
    assert kube_server.admin_token in (pub / "token").read_text()
    written = [p for p in work.iterdir() if p.is_file() and p.name.startswith("state.orch.db")]
    written += [work / "plan.json", log]
    assert any(p.name == "state.orch.db" for p in written)
    for path in written:
        data = path.read_bytes().decode("latin-1")
        for what, value in forbidden.items():
            assert value not in data, f"{what} found in {path.name}"
    plan_text = (work / "plan.json").read_text()
    assert "published:kubeconfig/cert" in plan_text and "$publish" in plan_text

    # destroy goes through the same hand-off; the driver deletes in the foreground, which
    # only kube-controller-manager's garbage collector completes
    if not kube_server.controllers:
        api.close()
        pytest.skip("destroy needs kube-controller-manager (foreground deletion); "
                    "everything before it passed")
    gone = _orch("destroy", "profiles/handoff.yaml", *common, "--auto-approve", cwd=work,
                 log=log)
    assert gone.returncode == 0, gone.stderr[-3000:]
    names = {c.metadata.name for c in core.list_namespaced_config_map(ns).items}
    assert not {"by-cert", "by-token"} & names
    data = log.read_bytes().decode("latin-1")
    assert kube_server.admin_token not in data and "BEGIN" not in data
    api.close()
