"""A fault-injecting HTTP proxy in front of the real kube-apiserver (as tests/bmc does for
the Redfish emulator): the driver talks plain HTTP with its bearer token to the proxy, which
forwards each request over verified TLS to the real server and relays the answer.

What the proxy adds is what a real server cannot be made to show on demand: an answer with a
given status code (a ``Status`` body like the server's, with Retry-After when asked), a
dropped connection without any answer (the network going away mid-operation), a delay
before forwarding (a slow server), a body rewritten by a callback (a proxy that echoes a
header). It logs each request it saw (method, path, query, content type; never headers).
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DROP = -1
REASONS = {409: "Conflict", 429: "TooManyRequests", 500: "InternalError",
           503: "ServiceUnavailable", 504: "Timeout"}


@dataclass
class Fault:
    code: int          # an HTTP status, or DROP (close the connection without an answer)
    method: str = ""
    path_contains: str = ""
    times: int = 1
    message: str = ""
    retry_after: int | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.times > 0 and (not self.method or self.method == method)
                and self.path_contains in path)


class FaultProxy:
    def __init__(self, upstream_url: str, ca_file: Path) -> None:
        parsed = urllib.parse.urlsplit(upstream_url)
        self.upstream = (parsed.hostname or "127.0.0.1", int(parsed.port or 443))
        self.context = ssl.create_default_context(cafile=str(ca_file))
        self.faults: list[Fault] = []
        self.slow = 0.0
        self.rewrite: Callable[[bytes], bytes] | None = None
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                split = urllib.parse.urlsplit(self.path)
                with proxy.lock:
                    proxy.requests.append({
                        "method": self.command, "path": split.path,
                        "query": dict(urllib.parse.parse_qsl(split.query)),
                        "content_type": self.headers.get("Content-Type", "")})
                    fault = next((f for f in proxy.faults
                                  if f.matches(self.command, split.path)), None)
                    if fault is not None:
                        fault.times -= 1
                if proxy.slow:
                    time.sleep(proxy.slow)
                if fault is not None and fault.code == DROP:
                    self.close_connection = True
                    return
                if fault is not None:
                    self._status(fault)
                    return
                self._forward(body)

            def _status(self, fault: Fault) -> None:
                reason = REASONS.get(fault.code, "BadRequest")
                payload = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                      "message": fault.message or f"injected {fault.code}",
                                      "reason": reason, "code": fault.code}).encode()
                headers = {"Content-Type": "application/json"}
                if fault.retry_after is not None:
                    headers["Retry-After"] = str(fault.retry_after)
                self._reply(fault.code, payload, headers)

            def _forward(self, body: bytes | None) -> None:
                conn = http.client.HTTPSConnection(*proxy.upstream, timeout=30,
                                                   context=proxy.context)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection")}
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                except OSError:
                    self.close_connection = True  # the real server went away: so do we
                    return
                finally:
                    conn.close()
                if proxy.rewrite is not None:
                    data = proxy.rewrite(data)
                out = {k: v for k, v in resp.getheaders()
                       if k.lower() in ("content-type", "retry-after", "www-authenticate")}
                self._reply(resp.status, data, out)

            def _reply(self, status: int, data: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def inject(self, code: int, *, method: str = "", path_contains: str = "", times: int = 1,
               message: str = "", retry_after: int | None = None) -> None:
        with self.lock:
            self.faults.append(Fault(code, method, path_contains, times, message, retry_after))

    def reset(self) -> None:
        with self.lock:
            self.faults.clear()
            self.requests.clear()
        self.slow = 0.0
        self.rewrite = None

    def kubeconfig(self, token: str) -> str:
        return json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "proxy",
            "clusters": [{"name": "proxy", "cluster": {"server": self.url}}],
            "users": [{"name": "proxy", "user": {"token": token}}],
            "contexts": [{"name": "proxy", "context": {"cluster": "proxy", "user": "proxy"}}]})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
