"""Secret values never appear in a plan, the state, logs or output: grep everything a run
wrote, including a failure whose error text echoes the secret."""

import pytest

from tests.engine.helpers import fake, run_orch, write, write_profile

SECRET = "Zq9-unique-s3cret-4711"


@pytest.mark.slow
def test_no_secret_value_in_anything_a_run_writes(tmp_path):
    key_file = tmp_path / "bmc-password"
    key_file.write_text(SECRET + "\n")
    profile = write_profile(tmp_path, [
        fake("uses-env", on="node", secret="env:ORCH_TEST_SECRET"),
        fake("uses-file", on="node", secret=f"file:{key_file}"),
        fake("uses-param", on="node", secret="${params.token}"),
        fake("leaks", secret="env:ORCH_TEST_SECRET", fail="permanent", leak=True)],
        parameters={"token": {"type": "secret", "default": "env:ORCH_TEST_SECRET"}},
        drivers={"fake": {"store": str(tmp_path / "fake.json")}})
    inventory = write(tmp_path / "inv.yaml", f"""
        apiVersion: orch/v1
        kind: Inventory
        metadata: {{name: inv}}
        defaults:
          bmc: {{kind: redfish, username: admin, password: "file:{key_file}"}}
          ssh: {{user: root, password: env:ORCH_TEST_SECRET}}
        hosts:
          - {{name: a, address: 192.0.2.1, bmc: {{endpoint: "https://198.51.100.1"}}}}
          - {{name: b, address: 192.0.2.2, bmc: {{endpoint: "https://198.51.100.2"}}}}
        """)
    env = {"ORCH_TEST_SECRET": SECRET}
    state = str(tmp_path / "state.db")
    outputs = []
    base = ["-i", str(inventory), "--state", state]
    outputs.append(run_orch("validate", str(profile), "-i", str(inventory), env=env))
    for fmt in ("text", "markdown", "json", "dot"):
        outputs.append(run_orch("plan", str(profile), *base, "--format", fmt, env=env))
    outputs.append(run_orch("plan", str(profile), *base, "--out", str(tmp_path / "plan.json"),
                            env=env))
    applied = run_orch("--log-format", "json", "--log-level", "debug", "apply",
                       str(tmp_path / "plan.json"), env=env)
    outputs.append(applied)
    assert applied.returncode == 3  # the leaking step failed, the rest succeeded
    assert "simulated permanent failure (password ********)" in applied.stderr
    outputs.append(run_orch("state", "show", str(profile), "leaks", "--state", state, env=env))
    outputs.append(run_orch("inventory", str(profile), "-i", str(inventory), env=env))
    for res in outputs:
        assert SECRET not in res.stdout and SECRET not in res.stderr, res.args
    for path in tmp_path.rglob("*"):
        if path.is_file() and path != key_file:
            assert SECRET.encode() not in path.read_bytes(), path
    assert "env:ORCH_TEST_SECRET" in (tmp_path / "plan.json").read_text()  # references only
