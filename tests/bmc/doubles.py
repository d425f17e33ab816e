"""Test doubles for BMC failure modes, all on 127.0.0.1.

* :class:`SilentServer` accepts TCP connections and never answers (a hung BMC).
* :class:`FaultProxy` forwards HTTP to the real emulator, counts requests by method and
  path, and can inject status codes, rewrite JSON bodies, or stop listening (a BMC that
  goes away mid-operation).
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class SilentServer:
    """Accepts connections and reads requests, but never sends a byte back."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for conn in self.held:
            conn.close()
        self.sock.close()


Rule = Callable[[str, str], int | None]  # (method, path) -> status to inject, or None
DROP = -1  # a rule returning this closes the connection without a reply


class FaultProxy:
    """An HTTP proxy in front of ``upstream`` (host, port) with injectable faults."""

    def __init__(self, upstream_url: str) -> None:
        host, port = upstream_url.split("://", 1)[1].split(":")
        self.upstream = (host, int(port))
        self.counts: Counter[tuple[str, str]] = Counter()
        self.rules: list[Rule] = []
        self.rewrite: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                with proxy.lock:
                    proxy.counts[(self.command, self.path)] += 1
                    status = next((s for r in proxy.rules if (s := r(self.command,
                                                                      self.path))), None)
                if status == DROP:
                    self.close_connection = True  # no answer at all: the BMC went away
                    return
                if status:
                    payload = json.dumps({"error": {"code": "Base.1.0.GeneralError",
                                                    "message": f"injected {status}"}}).encode()
                    self._reply(status, payload, {"Content-Type": "application/json"})
                    return
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                out_headers = {k: v for k, v in resp.getheaders()
                               if k.lower() in ("content-type", "location", "etag",
                                                "www-authenticate")}
                if proxy.rewrite and resp.status == 200 and data.startswith(b"{"):
                    data = json.dumps(proxy.rewrite(self.path, json.loads(data))).encode()
                conn.close()
                self._reply(resp.status, data, out_headers)

            def _reply(self, status: int, data: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def count(self, method: str) -> int:
        with self.lock:
            return sum(n for (m, _p), n in self.counts.items() if m == method)

    def stop_listening(self) -> None:
        """The BMC goes away: later connections are refused."""
        if self._thread.is_alive():
            self.server.shutdown()
            self.server.server_close()

    def close(self) -> None:
        self.stop_listening()
