"""Showing an apply as it runs: a live table on a terminal (rich), plain lines otherwise."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

from orchestrator.secrets import redact


class PlainProgress:
    """One line per event: for CI logs and pipes."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.done = 0
        self._lock = threading.Lock()

    def __call__(self, event: str, step_id: str, detail: str) -> None:
        with self._lock:
            if event in ("succeeded", "failed", "skipped", "stopped", "interrupted"):
                self.done += 1
            if event == "progress":
                return
            if event == "notice":
                self.stream.write(f"{redact(detail)}\n")
                self.stream.flush()
                return
            tail = f": {redact(detail)}" if detail and event != "started" else ""
            self.stream.write(f"[{self.done:>{len(str(self.total))}}/{self.total}] "
                              f"{event:<9} {step_id}{tail}\n")
            self.stream.flush()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


class LiveProgress:
    """A rich live display: counts of running, done, failed and skipped, and what runs now."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        from rich.console import Console
        from rich.live import Live
        self.total = total
        self.state: dict[str, str] = {}
        self.notes: dict[str, str] = {}
        self.failures: list[str] = []
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self.console = Console(file=stream or sys.stderr)
        self.live = Live(self._render(), console=self.console, refresh_per_second=4,
                         transient=False)

    def __call__(self, event: str, step_id: str, detail: str) -> None:
        with self._lock:
            if event == "notice":
                self.console.print(redact(detail))
            elif event == "progress":
                self.notes[step_id] = redact(detail)
            elif event == "retry":
                self.notes[step_id] = "retrying: " + redact(detail)[:80]
            else:
                self.state[step_id] = event
                if event in ("failed", "interrupted"):
                    self.failures.append(f"{step_id}: {redact(detail)[:160]}")
            self.live.update(self._render())

    def _render(self) -> Any:
        from rich.table import Table
        counts = {k: 0 for k in ("started", "succeeded", "failed", "skipped", "stopped",
                                 "interrupted")}
        for s in self.state.values():
            counts[s] = counts.get(s, 0) + 1
        table = Table.grid(padding=(0, 2))
        elapsed = time.monotonic() - self.started
        table.add_row(f"[bold]{sum(counts[k] for k in counts if k != 'started')}"
                      f"/{self.total}[/] steps", f"running {counts['started']}",
                      f"[green]done {counts['succeeded']}", f"[red]failed {counts['failed']}",
                      f"[yellow]skipped {counts['skipped']}",
                      f"[magenta]by hand {counts['stopped']}", f"{elapsed:.0f} s")
        for sid, s in list(self.state.items())[-200:]:
            if s == "started":
                table.add_row(f"  ⏵ {sid}", self.notes.get(sid, ""))
        for line in self.failures[-5:]:
            table.add_row(f"  [red]✗ {line}")
        return table

    def __enter__(self) -> LiveProgress:
        self.live.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.update(self._render())
        self.live.stop()


def progress_for(total: int, stream: TextIO | None = None) -> PlainProgress | LiveProgress:
    s = stream or sys.stderr
    if s.isatty():
        return LiveProgress(total, s)
    return PlainProgress(total, s)
