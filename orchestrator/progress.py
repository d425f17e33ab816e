"""Showing an apply as it runs: a live table on a terminal (rich), timestamped lines in a pipe,
JSON objects with ``--log-format json``.

All three take the executor's events ``(event, step id, detail)`` — ``started``, ``progress``,
``retry``, then one of ``succeeded``, ``failed``, ``skipped``, ``stopped`` — and measure each
step's duration from its ``started`` event.

The live table keeps its header columns at fixed widths, lists failures first (they are never
pushed below the fold), then the running steps in natural order (``node-2`` before
``node-10``) with their elapsed time (``creating… [12s elapsed]``, as Terraform's "Still
creating…"); three or more running steps of one component collapse into one row with a count.
Log events printed meanwhile go above the live region (rich redirects ``sys.stderr``, and
:mod:`orchestrator.log` writes to ``sys.stderr`` as it is at the time).
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections import Counter
from typing import Any, TextIO

from orchestrator.secrets import redact

FINAL = ("succeeded", "failed", "skipped", "stopped")
_ING = {"create": "creating", "update": "updating", "replace": "replacing",
        "delete": "destroying", "no-op": "checking"}


def natural_key(text: str) -> list[Any]:
    """``node-2`` sorts before ``node-10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def component_of(step_id: str) -> str:
    """``node-3/os.install/power-off`` → ``os.install``; ``cluster.cni`` → itself."""
    parts = step_id.split("/")
    return parts[1] if len(parts) > 1 else parts[0]


def seconds(s: float) -> str:
    return f"{s:.1f}s" if s < 60 else f"{int(s // 60)}m{int(s % 60):02d}s"


class Tracker:
    """What every display needs: each step's state, action, start and duration."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.state: dict[str, str] = {}
        self.action: dict[str, str] = {}
        self.started_at: dict[str, float] = {}
        self.duration: dict[str, float] = {}
        self.notes: dict[str, str] = {}
        self.errors: dict[str, str] = {}
        self.done = 0
        self.t0 = time.monotonic()
        self._lock = threading.Lock()

    def track(self, event: str, step_id: str, detail: str) -> float | None:
        """Record an event; for a final one, return the step's duration (0 if it never
        started, as a skipped step)."""
        now = time.monotonic()
        if event == "started":
            self.state[step_id] = "started"
            self.action[step_id] = detail
            self.started_at[step_id] = now
            return None
        if event == "progress":
            self.notes[step_id] = redact(detail)
            return None
        if event == "retry":
            self.notes[step_id] = "retrying: " + redact(detail)[:80]
            return None
        self.state[step_id] = event
        self.done += event in FINAL
        if event in ("failed", "stopped", "skipped"):
            self.errors[step_id] = redact(detail)
        d = now - self.started_at[step_id] if step_id in self.started_at else 0.0
        self.duration[step_id] = d
        return d


class PlainProgress(Tracker):
    """One line per event, with the time and, when a step ends, its duration: for CI logs
    and pipes. ``12:00:03 [ 2/80] succeeded  pve-1/os.base (1.2s)``."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        super().__init__(total)
        self.stream = stream

    def __call__(self, event: str, step_id: str, detail: str) -> None:
        with self._lock:
            took = self.track(event, step_id, detail)
            if event == "progress":
                return
            tail = f" ({seconds(took)})" if took else ""
            if detail and event not in ("started", "succeeded"):
                tail += f": {redact(detail)}"
            elif event == "started" and detail:
                tail = f" ({detail})"
            stamp = time.strftime("%H:%M:%S")
            self._write(f"{stamp} [{self.done:>{len(str(self.total))}}/{self.total}] "
                        f"{event:<9} {step_id}{tail}")

    def _write(self, text: str) -> None:
        if self.stream is not None:
            self.stream.write(text + "\n")
            self.stream.flush()
        else:
            from orchestrator import log
            log.line(text)

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


class JsonProgress(Tracker):
    """``--log-format json``: ``step.started``, ``step.progress``, ``step.retry`` and
    ``step.finished`` (with ``outcome``, ``action`` and ``duration_s``), one JSON object per
    line on the log stream, between the other log events."""

    def __call__(self, event: str, step_id: str, detail: str) -> None:
        from orchestrator import log
        with self._lock:
            took = self.track(event, step_id, detail)
            action = self.action.get(step_id, "")
            if event == "started":
                log.event("step.started", step=step_id, action=detail)
            elif event in ("progress", "retry"):
                log.event(f"step.{event}", step=step_id, detail=redact(detail))
            else:
                fields: dict[str, Any] = {"step": step_id, "outcome": event,
                                          "duration_s": round(took or 0.0, 3),
                                          "done": self.done, "total": self.total}
                if action:
                    fields["action"] = action
                if detail:
                    fields["detail"] = redact(detail)
                log.event("step.finished", "error" if event == "failed" else "info",
                          **fields)

    def __enter__(self) -> JsonProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


class LiveProgress(Tracker):
    """A rich live display: a fixed-width header of counts, failures, then what runs now."""

    #: a component with this many steps running at once gets one row
    GROUP_AT = 3

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        super().__init__(total)
        from rich.console import Console
        from rich.live import Live
        self.console = Console(file=stream or sys.stderr)
        self.live = Live(self._render(), console=self.console, refresh_per_second=4,
                         transient=False, get_renderable=self._render)

    def __call__(self, event: str, step_id: str, detail: str) -> None:
        with self._lock:
            self.track(event, step_id, detail)

    def header(self) -> str:
        c = Counter(self.state.values())
        w = len(str(self.total))
        return (f"{self.done:>{w}}/{self.total} steps │ running {c['started']:>{w}} │ "
                f"done {c['succeeded']:>{w}} │ failed {c['failed']:>{w}} │ "
                f"skipped {c['skipped']:>{w}} │ by hand {c['stopped']:>{w}} │ "
                f"{seconds(time.monotonic() - self.t0):>7}")

    def rows(self, height: int) -> list[tuple[str, str]]:
        """(style, text) rows under the header, at most ``height``: failures first."""
        now = time.monotonic()
        out: list[tuple[str, str]] = []
        failed = sorted((s for s, v in self.state.items() if v == "failed"), key=natural_key)
        for sid in failed[-max(height // 2, 3):]:
            out.append(("red", f"✗ {sid}: {self.errors.get(sid, '')[:160]}"))
        if len(failed) > max(height // 2, 3):
            out.insert(0, ("red", f"✗ … {len(failed) - max(height // 2, 3)} more failed "
                                  "(all listed after the run)"))
        running = sorted((s for s, v in self.state.items() if v == "started"), key=natural_key)
        groups: dict[str, list[str]] = {}
        for sid in running:
            groups.setdefault(component_of(sid), []).append(sid)
        lines: list[tuple[str, str]] = []
        for comp, sids in groups.items():
            if len(sids) >= self.GROUP_AT:
                oldest = max(now - self.started_at[s] for s in sids)
                verb = _ING.get(self.action.get(sids[0], ""), "running")
                lines.append(("", f"⏵ {comp} ×{len(sids)}  {verb}… [longest {oldest:.0f}s "
                                  f"elapsed]  {sids[0]} … {sids[-1]}"))
                continue
            for sid in sids:
                verb = _ING.get(self.action.get(sid, ""), "running")
                note = self.notes.get(sid, "")
                lines.append(("", f"⏵ {sid}  {verb}… [{now - self.started_at[sid]:.0f}s "
                                  f"elapsed]" + (f"  {note[:80]}" if note else "")))
        room = height - len(out)
        if len(lines) > room:
            lines = [*lines[:max(room - 1, 0)],
                     ("dim", f"… {len(lines) - max(room - 1, 0)} more running")]
        return out + lines

    def _render(self) -> Any:
        from rich.table import Table
        from rich.text import Text
        with self._lock:
            table = Table.grid()
            table.add_row(Text(self.header(), style="bold"))
            height = max(self.console.size.height - 4, 6)
            for style, text in self.rows(height):
                table.add_row(Text("  " + text, style=style, overflow="ellipsis",
                                   no_wrap=True))
            return table

    def __enter__(self) -> LiveProgress:
        self.live.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.update(self._render())
        self.live.stop()


def progress_for(total: int, stream: TextIO | None = None, *,
                 json: bool = False) -> PlainProgress | LiveProgress | JsonProgress:
    if json:
        return JsonProgress(total)
    s = stream or sys.stderr
    if s.isatty():
        return LiveProgress(total, s)
    return PlainProgress(total, stream)
