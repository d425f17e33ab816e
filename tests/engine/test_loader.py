"""Every validation error names file:line:column, what was expected and what was found."""

import re

import pytest

from orchestrator.errors import SourceError, SourceErrors
from orchestrator.loader import load
from tests.engine.helpers import write

PROFILE = """
apiVersion: orch/v1
kind: Profile
metadata:
  name: demo
parameters:
  nodes: {type: int, default: 3}
  mode: {type: str, default: standard, choices: [aio-sx, standard]}
roles:
  pve:
    count: {param: nodes}
    min: 1
layers:
  - name: base
    components:
      - name: power
        type: fake.step
        on: pve
"""


def errors_of(exc):
    return exc.errors if isinstance(exc, SourceErrors) else [exc]


def load_error(tmp_path, text, inventory=None, overrides=None):
    p = write(tmp_path / "p.yaml", text)
    inv = write(tmp_path / "i.yaml", inventory) if inventory else None
    with pytest.raises((SourceError, SourceErrors)) as err:
        load(p, inv, overrides or {})
    errs = errors_of(err.value)
    for e in errs:
        assert re.match(r".+\.yaml:\d+:\d+", str(e.location)), e.render()
    return errs


def test_a_valid_profile_binds_nodes(tmp_path):
    loaded = load(write(tmp_path / "p.yaml", PROFILE))
    assert [n.name for n in loaded.nodes["pve"]] == ["pve-1", "pve-2", "pve-3"]


def test_wrong_type_names_line_expected_and_found(tmp_path):
    [e] = load_error(tmp_path, PROFILE.replace("min: 1", "min: lots"))
    assert (e.location.line, e.location.column) == (11, 10)
    assert e.expected == "int" and "lots" in e.found


def test_unknown_field_points_at_the_field(tmp_path):
    [e] = load_error(tmp_path, PROFILE.replace("    min: 1", "    min: 1\n    cuont: 2"))
    assert e.location.line == 12 and "cuont" in e.found


def test_missing_required_field(tmp_path):
    [e] = load_error(tmp_path, PROFILE.replace("        type: fake.step\n", ""))
    assert "missing required field" in str(e) and "type" in e.expected


def test_bad_yaml_syntax_is_located(tmp_path):
    [e] = load_error(tmp_path, PROFILE.replace("  name: demo", "  name: [demo"))
    assert "invalid YAML" in str(e) and e.location.line >= 5


def test_wrong_api_version(tmp_path):
    [e] = load_error(tmp_path, PROFILE.replace("orch/v1", "orch/v9"))
    assert e.location.line == 1 and "orch/v1" in e.expected


def test_duplicate_keys_are_refused(tmp_path):
    [e] = load_error(tmp_path, PROFILE.replace("kind: Profile", "kind: Profile\nkind: Profile"))
    assert "duplicate key" in str(e) and e.location.line == 3


def test_parameter_override_type_and_choice_errors_are_reported_together(tmp_path):
    errs = load_error(tmp_path, PROFILE, overrides={"nodes": "three", "mode": "huge"})
    texts = " ".join(str(e) for e in errs)
    assert "'nodes'" in texts and "'mode'" in texts and len(errs) == 2
    assert {e.location.line for e in errs} == {6, 7}


def test_unknown_override_is_an_error(tmp_path):
    [e] = load_error(tmp_path, PROFILE, overrides={"nodez": "1"})
    assert "nodez" in str(e) and "nodes" in e.expected


def test_count_below_role_minimum(tmp_path):
    [e] = load_error(tmp_path, PROFILE.replace("min: 1", "min: 3"), overrides={"nodes": "2"})
    assert e.location.line == 10 and "needs at least 3 nodes, got 2 (parameter nodes)" in str(e)


INVENTORY = """
apiVersion: orch/v1
kind: Inventory
metadata: {name: inv}
hosts:
  - name: a
    address: 192.0.2.1
    bmc: {endpoint: "https://198.51.100.1", password: hunter2}
"""


def test_secrets_written_as_values_are_refused_and_not_echoed(tmp_path):
    [e] = load_error(tmp_path, PROFILE, inventory=INVENTORY)
    assert "secrets must be references" in str(e) and e.location.line == 7
    assert "hunter2" not in e.render()


def test_not_enough_hosts_names_the_inventory(tmp_path):
    inv = INVENTORY.replace("password: hunter2", "password: env:BMC_PW")
    [e] = load_error(tmp_path, PROFILE, inventory=inv)
    assert e.location.file.endswith("i.yaml") and "needs 3" in str(e)


def test_inventory_binding_explicit_then_pool(tmp_path):
    inv = write(tmp_path / "i.yaml", """
        apiVersion: orch/v1
        kind: Inventory
        metadata: {name: inv}
        roles: {pve: [c]}
        hosts:
          - {name: a, address: 192.0.2.1}
          - {name: b, address: 192.0.2.2}
          - {name: c, address: 192.0.2.3}
        """)
    loaded = load(write(tmp_path / "p.yaml", PROFILE), inv)
    assert [n.host.name for n in loaded.nodes["pve"]] == ["c", "a", "b"]


def test_component_errors_are_located_at_the_component(tmp_path):
    from orchestrator.components import builtin_registry
    from orchestrator.expand import expand
    text = PROFILE + "        after: [nothing]\n      - name: x\n        type: no.such\n"
    loaded = load(write(tmp_path / "p.yaml", text))
    with pytest.raises(SourceErrors) as err:
        expand(loaded, builtin_registry())
    by_line = {e.location.line: e for e in err.value.errors}
    assert "unknown component 'nothing'" in by_line[18].render()
    assert "unknown component type 'no.such'" in by_line[20].render()


def test_component_parameter_errors_name_the_with_key(tmp_path):
    from orchestrator.components import builtin_registry
    from orchestrator.expand import expand
    text = PROFILE + "        with: {duration: soon}\n"
    loaded = load(write(tmp_path / "p.yaml", text))
    with pytest.raises(SourceErrors) as err:
        expand(loaded, builtin_registry())
    [e] = err.value.errors
    assert e.location.line == 18 and "duration" in e.expected


def test_cli_prints_located_errors_without_traceback(tmp_path):
    from tests.engine.helpers import run_orch
    p = write(tmp_path / "p.yaml", PROFILE.replace("min: 1", "min: lots"))
    res = run_orch("validate", str(p))
    assert res.returncode == 1
    assert f"{p}:11:10" in res.stderr and "Traceback" not in res.stderr


def test_driver_settings_are_validated_before_planning_and_located(tmp_path):
    from orchestrator.planner import make_plan
    from orchestrator.state import open_store
    text = PROFILE + "drivers:\n  fake:\n    endpoint_limit: many\n"
    loaded = load(write(tmp_path / "p.yaml", text))
    with pytest.raises(SourceError) as err:
        make_plan(loaded, open_store(str(tmp_path / "s.db")))
    e = err.value
    assert e.location.line == 20 and "endpoint_limit" in e.expected
    text = PROFILE + "drivers:\n  fake:\n    storre: x\n"
    with pytest.raises(SourceError) as err:
        make_plan(load(write(tmp_path / "p.yaml", text)), open_store(str(tmp_path / "s.db")))
    assert err.value.location.line == 20 and "storre" in str(err.value)


# -- secrets written anywhere else ----------------------------------------------------
def _plan_error(tmp_path, profile_text, inventory_text=None):
    from orchestrator.planner import make_plan
    from orchestrator.state import open_store
    p = write(tmp_path / "p.yaml", profile_text)
    inv = write(tmp_path / "i.yaml", inventory_text) if inventory_text else None
    with pytest.raises((SourceError, SourceErrors)) as err:
        make_plan(load(p, inv), open_store(str(tmp_path / "s.db"), create=False))
    return errors_of(err.value)


def test_a_literal_password_in_driver_settings_is_refused_where_it_was_written(tmp_path):
    # the check runs before the driver's own settings are validated, at any depth
    text = PROFILE.replace("type: fake.step", "type: fake.step\n        with: {value: 1}") + (
        "drivers:\n  fake:\n    store: x\n    auth: {username: admin, password: hunter2}\n")
    errs = _plan_error(tmp_path, text)
    assert [(e.location.line, e.location.column) for e in errs] == [(22, 39)]
    assert "secrets must be references" in str(errs[0]) and "hunter2" not in errs[0].render()
    inventory = """
apiVersion: orch/v1
kind: Inventory
metadata: {name: lab}
drivers:
  fake: {api_token: "s3cr3t-token"}
hosts:
  - {name: a, address: 192.0.2.1}
  - {name: b, address: 192.0.2.2}
  - {name: c, address: 192.0.2.3}
"""
    errs = _plan_error(tmp_path, PROFILE, inventory)
    assert str(errs[0].location) == f"{tmp_path / 'i.yaml'}:5:21"


def test_literal_secrets_in_with_are_refused_and_references_kept(tmp_path):
    from orchestrator.components import builtin_registry
    from orchestrator.expand import expand
    text = PROFILE.replace("        on: pve\n", """        on: pve
      - name: secret-object
        type: kubernetes.manifest
        with:
          manifest:
            apiVersion: v1
            kind: Secret
            metadata: {name: creds}
            stringData: {user: admin, key: not-a-reference}
      - name: playbook
        type: fake.step
        on: pve
        with:
          value: {admin_password: hunter2, join_token: "env:JOIN_TOKEN", secret: {name: ok}}
""")
    errs = _plan_error(tmp_path, text)
    assert sorted(e.location.line for e in errs) == [25, 25, 30]
    assert not any("hunter2" in e.render() or "not-a-reference" in e.render() for e in errs)
    fixed = text.replace("user: admin, key: not-a-reference", "key: file:/etc/creds") \
                .replace("admin_password: hunter2, ", "")
    desired = expand(load(write(tmp_path / "p.yaml", fixed)), builtin_registry())
    pb = desired.steps["pve-1/playbook"].inputs["value"]
    assert pb["join_token"] == {"$secret": "env:JOIN_TOKEN"} and pb["secret"] == {"name": "ok"}
    manifest = desired.steps["secret-object"].inputs["manifest"]
    assert manifest["stringData"] == {"key": {"$secret": "file:/etc/creds"}}


def test_secret_parameters_hold_references_whole_values_only(tmp_path):
    from orchestrator.components import builtin_registry
    from orchestrator.expand import expand
    base = PROFILE.replace("parameters:\n", "parameters:\n  token: {type: secret, default: "
                                            "\"env:JOIN_TOKEN\"}\n")
    whole = base.replace("        on: pve\n", "        on: pve\n        with: {secret: "
                                                "\"${params.token}\"}\n")
    desired = expand(load(write(tmp_path / "p.yaml", whole)), builtin_registry())
    assert desired.steps["pve-1/power"].inputs["secret"] == {"$secret": "env:JOIN_TOKEN"}
    [e] = load_error(tmp_path, base, overrides={"token": "plain-value-7"})
    assert "must be a reference" in str(e) and "plain-value-7" not in e.render()
    inside = base.replace("        on: pve\n", "        on: pve\n        with: {value: "
                                                "\"--token ${params.token}\"}\n")
    with pytest.raises(SourceErrors) as err:
        expand(load(write(tmp_path / "p.yaml", inside)), builtin_registry())
    [e] = err.value.errors
    assert "is a secret: it can only be a whole value" in str(e)
    assert (e.location.line, e.location.column) == (19, 23)
