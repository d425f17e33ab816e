"""Ansible runner events turned into progress lines, log records and a failure list."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.secrets import redact

#: Ansible's messages for failures no retry will fix, though reported as "unreachable".
PERMANENT_UNREACHABLE = ("Permission denied", "REMOTE HOST IDENTIFICATION HAS CHANGED",
                         "Host key verification failed", "Authentication failed")


@dataclass(frozen=True)
class HostFailure:
    host: str
    task: str
    message: str
    unreachable: bool = False

    @property
    def permanent(self) -> bool:
        return not self.unreachable or any(p in self.message for p in PERMANENT_UNREACHABLE)

    def __str__(self) -> str:
        what = "unreachable" if self.unreachable else "failed"
        return f"{self.host}: TASK [{self.task}] {what}: {self.message}"


def failure_message(result: Mapping[str, Any], limit: int = 600) -> str:
    """The useful part of a failed task's result: msg, then the tail of stderr or stdout."""
    parts = [str(result.get("msg") or "").strip()]
    for module, sub in (result.get("failed_modules") or {}).items():
        if isinstance(sub, Mapping):
            parts.append(f"{module}: {failure_message(sub, limit)}")
    for key in ("stderr", "stdout", "module_stderr"):
        text = str(result.get(key) or "").strip()
        if text:
            parts.append(text if len(text) <= limit else "..." + text[-limit:])
            break
    return redact(": ".join(p for p in parts if p) or "no message")


@dataclass
class TaskTally:
    name: str
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def summary(self) -> str:
        shown = [f"ok={self.counts.get('ok', 0)}"] + [
            f"{k}={self.counts[k]}" for k in ("changed", "failed", "skipped", "unreachable",
                                              "ignored") if self.counts.get(k)]
        return f"TASK [{self.name}] {' '.join(shown)}"


class EventCollector:
    """``event_handler`` for ansible_runner: streams progress, keeps failures and stats."""

    def __init__(self, log: Any, report: Callable[[str], None]) -> None:
        self.log = log
        self.report = report
        self.failures: list[HostFailure] = []
        self.stats: dict[str, dict[str, int]] = {}
        self._task: TaskTally | None = None

    def __call__(self, event: Mapping[str, Any]) -> bool:
        kind = str(event.get("event", ""))
        data = event.get("event_data") or {}
        if kind == "playbook_on_play_start":
            self.log.info("ansible play", play=data.get("play", ""))
        elif kind == "playbook_on_task_start":
            self._flush()
            self._task = TaskTally(str(data.get("task") or data.get("name") or "?"))
        elif kind.startswith("runner_on_") and kind != "runner_on_start":
            self._host_result(kind, data)
        elif kind == "playbook_on_stats":
            self._flush()
            self._stats(data)
        return True

    def _host_result(self, kind: str, data: Mapping[str, Any]) -> None:
        host, task = str(data.get("host", "?")), str(data.get("task", "?"))
        result = data.get("res") or {}
        tally = self._task if self._task is not None else TaskTally(task)
        self._task = tally
        if kind == "runner_on_ok":
            tally.add("ok")
            if result.get("changed"):
                tally.add("changed")
        elif kind == "runner_on_skipped":
            tally.add("skipped")
        elif kind == "runner_on_failed" and data.get("ignore_errors"):
            tally.add("ignored")
        elif kind in ("runner_on_failed", "runner_on_unreachable"):
            unreachable = kind == "runner_on_unreachable"
            tally.add("unreachable" if unreachable else "failed")
            failure = HostFailure(host, task, failure_message(result), unreachable)
            self.failures.append(failure)
            self.log.error("ansible task failed", host=host, task=task,
                           message=failure.message, unreachable=unreachable)

    def _flush(self) -> None:
        if self._task is not None and self._task.counts:
            line = self._task.summary()
            self.log.info("ansible task", task=self._task.name, **self._task.counts)
            self.report(line)
        self._task = None

    def _stats(self, data: Mapping[str, Any]) -> None:
        for what in ("ok", "changed", "failures", "skipped", "dark", "ignored"):
            for host, count in (data.get(what) or {}).items():
                self.stats.setdefault(str(host), {})[what] = int(count)
