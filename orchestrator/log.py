"""Logging through structlog, configured once, imported only when something is logged.

``orch plan`` logs nothing at the default level, and importing structlog (which pulls in
rich for its console renderer) costs ~170 ms measured here, a third of the plan budget; so
loggers are proxies that check the level first and load structlog on the first event that
passes. Every event goes through a redaction processor that masks any secret value this
process has resolved.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO, cast

from orchestrator.secrets import redact

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
_config: dict[str, Any] = {"level": 20, "format": "console", "stream": None, "done": False}


_WRITE = threading.Lock()


class _Lines:
    """A file for log output that writes whole lines, one thread at a time, so that log
    events and progress lines never interleave mid-line (``print`` writes the text and the
    newline separately). With no stream given, it writes to ``sys.stderr`` as it is at the
    time of writing: under a live display (rich's ``Live``) that is the display's proxy,
    which prints above the live region."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._pending = threading.local()

    def target(self) -> TextIO:
        return self._stream or sys.stderr

    def write(self, text: str) -> int:
        pending = getattr(self._pending, "text", "") + text
        *lines, rest = pending.split("\n")
        self._pending.text = rest
        if lines:
            out = self.target()
            with _WRITE:
                out.write("\n".join(lines) + "\n")
                out.flush()
        return len(text)

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return bool(getattr(self.target(), "isatty", lambda: False)())


def configure(level: str = "info", fmt: str = "console", stream: TextIO | None = None) -> None:
    """Set the level and the renderer (``console`` for people, ``json`` for machines)."""
    _config.update(level=_LEVELS.get(level, 20), format=fmt, stream=stream, done=False,
                   lines=_Lines(stream))


def is_json() -> bool:
    return bool(_config["format"] == "json")


def line(text: str) -> None:
    """Write one line to the log stream (stderr), whole, between log events."""
    lines: _Lines = _config.get("lines") or _Lines(_config["stream"])
    lines.write(text.rstrip("\n") + "\n")


def event(name: str, level: str = "info", **fields: Any) -> None:
    """One JSON object on one line, whatever the level filter: the machine-readable event
    stream of ``--log-format json`` (``step.started``, ``step.finished``...)."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1e6) % 10**6:06d}Z"
    record = {"event": name, "level": level, "timestamp": stamp, **fields}
    line(redact(json.dumps(record, sort_keys=True, default=str)))


def _redact_event(_logger: Any, _name: str,
                  event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    return {k: redact(v) if isinstance(v, str) else v for k, v in event.items()}


def _structlog() -> Any:
    import structlog
    if not _config["done"]:
        stream = _config["stream"] or sys.stderr
        lines = _config.get("lines") or _Lines(_config["stream"])
        _config["lines"] = lines
        renderer: Any
        if _config["format"] == "json":
            renderer = structlog.processors.JSONRenderer(sort_keys=True)
        else:
            renderer = structlog.dev.ConsoleRenderer(
                colors=stream.isatty(), exception_formatter=structlog.dev.plain_traceback)
        structlog.configure(
            processors=[structlog.processors.add_log_level,
                        structlog.processors.TimeStamper(fmt="iso", utc=True),
                        _redact_event, renderer],
            wrapper_class=structlog.make_filtering_bound_logger(_config["level"]),
            logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, lines)),
            cache_logger_on_first_use=False,
        )
        _config["done"] = True
    return structlog


class Logger:
    """A bound logger that loads structlog lazily; same calls as structlog's."""

    __slots__ = ("_context", "_name")

    def __init__(self, name: str, context: dict[str, Any] | None = None) -> None:
        self._name = name
        self._context = context or {}

    def bind(self, **kw: Any) -> Logger:
        return Logger(self._name, {**self._context, **kw})

    def _emit(self, level: int, method: str, event: str, kw: dict[str, Any]) -> None:
        if level < _config["level"]:
            return
        logger = _structlog().get_logger(self._name).bind(**self._context)
        getattr(logger, method)(event, **kw)

    def debug(self, event: str, **kw: Any) -> None:
        self._emit(10, "debug", event, kw)

    def info(self, event: str, **kw: Any) -> None:
        self._emit(20, "info", event, kw)

    def warning(self, event: str, **kw: Any) -> None:
        self._emit(30, "warning", event, kw)

    def error(self, event: str, **kw: Any) -> None:
        self._emit(40, "error", event, kw)


def get_logger(name: str = "orch") -> Logger:
    return Logger(name)


def capture_stdlib(level: int = 30) -> None:
    """Route vendor libraries' stdlib logging (sushy, paramiko) through redaction."""
    import logging

    class _StdlibBridge(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            method = record.levelname.lower()
            get_logger(record.name)._emit(record.levelno,
                                          method if method in _LEVELS else "info",
                                          record.getMessage(), {})

    root = logging.getLogger()
    if not any(type(h).__name__ == "_StdlibBridge" for h in root.handlers):
        root.addHandler(_StdlibBridge())
    root.setLevel(level)
