"""The driver conformance kit (orchestrator.testing) run on the fake driver, and shown able to
fail: a driver that leaks a secret, raises a vendor exception, drifts, or cannot delete what
is gone is caught."""

from __future__ import annotations

from typing import Any

import pytest

from drivers.fake import FakeDriver, FakeSettings
from orchestrator.driver import ApplyRequest, ApplyResult, Observed
from orchestrator.secrets import ref
from orchestrator.step import Step
from orchestrator.testing import CHECKS, Case, ConformanceError, run_all

SECRET = "s3cr3t-value-for-conformance"


def _case(monkeypatch, **inputs: Any) -> Case:
    monkeypatch.setenv("ORCH_CONFORMANCE_SECRET", SECRET)
    step = Step("node-1/thing", "fake.step", "fake", "thing", "l1",
                {"secret": ref("env:ORCH_CONFORMANCE_SECRET"), **inputs},
                endpoint="fake://endpoint-1")
    failing = Step("node-1/broken", "fake.step", "fake", "broken", "l1",
                   {"fail": "permanent", "secret": ref("env:ORCH_CONFORMANCE_SECRET"),
                    **inputs}, endpoint="fake://endpoint-1")
    return Case(step, failing)


@pytest.fixture
def fake(tmp_path) -> FakeDriver:
    return FakeDriver(FakeSettings(store=str(tmp_path / "fake.json")))


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_the_fake_driver_conforms(check, fake, monkeypatch):
    check(fake, _case(monkeypatch))


def test_without_a_store_the_fake_driver_still_conforms(monkeypatch):
    assert run_all(FakeDriver(), _case(monkeypatch)) == []


def test_a_driver_that_echoes_a_secret_in_an_error_is_caught(fake, monkeypatch):
    case = _case(monkeypatch, leak=True)
    with pytest.raises(ConformanceError) as err:
        CHECKS[-1](fake, case)
    assert "no secret value comes back" in str(err.value)
    assert SECRET not in str(err.value) and "<THE SECRET>" in str(err.value)


class _Vendor(FakeDriver):
    def apply(self, request: ApplyRequest) -> ApplyResult:
        if request.inputs.get("fail"):
            raise ConnectionResetError("peer reset")  # untranslated
        return super().apply(request)


class _Drifting(FakeDriver):
    def read(self, step: Step, outputs: Any) -> Observed:
        return Observed(True, {"size": "10 GiB recorded, 20 GiB found"}, outputs)


class _NoDeleteOfMissing(FakeDriver):
    gone: set[str]

    def apply(self, request: ApplyRequest) -> ApplyResult:
        from orchestrator.errors import PermanentError
        from orchestrator.plan import Action
        gone = self.__dict__.setdefault("gone", set())
        if request.action is Action.DELETE:
            if request.step.id in gone:
                raise PermanentError("no such object", endpoint="fake://e", operation="delete")
            gone.add(request.step.id)
        else:
            gone.discard(request.step.id)
        return super().apply(request)


class _Unlocated(FakeDriver):
    def apply(self, request: ApplyRequest) -> ApplyResult:
        from orchestrator.errors import PermanentError
        if request.inputs.get("fail"):
            raise PermanentError("it broke", endpoint="", operation="")
        return super().apply(request)


@pytest.mark.parametrize(("cls", "check", "says"), [
    (_Vendor, "check_errors_typed_and_located", "vendor exceptions are translated"),
    (_Drifting, "check_read_after_apply", "no drift"),
    (_Drifting, "check_idempotent_apply", "without drift"),
    (_NoDeleteOfMissing, "check_delete_missing", "no such object"),
    (_Unlocated, "check_errors_typed_and_located", "names its endpoint and operation"),
])
def test_a_driver_breaking_the_contract_is_caught(tmp_path, monkeypatch, cls, check, says):
    driver = cls(FakeSettings(store=str(tmp_path / "f.json")))
    failures = run_all(driver, _case(monkeypatch))
    mine = [f for f in failures if f.startswith(check)]
    assert mine and says in mine[0], failures
