"""A fault-injecting HTTP proxy for the tests, put in front of the real registry
(registry_server.Registry): every request goes on to the registry unless a rule, matched by
method and path, answers for it first.

Faults (``Rule.fault``): ``status`` answers with ``status`` and ``headers`` (a 503 with a
Retry-After, a 401, a 403, a 413); ``cut`` forwards the request and sends the first
``cut_after`` bytes of the registry's answer, then closes the connection (a connection cut
mid-blob); ``drop`` reads the request and closes the connection without an answer (a push
cut mid-upload); ``corrupt`` forwards it and flips one byte of the answer's body (a blob
whose bytes do not match its digest); ``silent`` accepts the request and never answers (a
registry that hangs).  ``/token`` answers a token request (the token flow a 401 with a
Bearer challenge starts, as a registry's token service would).  A rule applies ``times`` times (None: always), then lets requests
through.  ``requests`` records every request seen, for the tests to count."""

from __future__ import annotations

import http.server
import re
import socketserver
import threading
import time
from dataclasses import dataclass, field

import requests

HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


@dataclass
class Rule:
    method: str  # "GET", "PUT", ... or "*"
    path: str  # a regular expression searched in the request path
    fault: str  # status | cut | drop | corrupt | silent
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    cut_after: int = 1024
    times: int | None = 1
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        return (self.method in ("*", method)) and re.search(self.path, path) is not None


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream  # host:port of the registry
        self.rules: list[Rule] = []
        self.requests: list[tuple[str, str, int]] = []  # method, path, status sent
        self.authorizations: list[str | None] = []  # the header of each forwarded request
        self._lock = threading.Lock()
        self._release = threading.Event()  # ends the silent answers at stop()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                proxy._handle(self)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _any

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, repository: str) -> str:
        return f"oci://{self.address}/{repository}"

    def add(self, *rules: Rule) -> None:
        with self._lock:
            self.rules.extend(rules)

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.requests.clear()

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p, _ in self.requests if m == method and re.search(path, p))

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    # ---------------------------------------------------------------- one request

    def _rule_for(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.hits += 1
                    return rule
        return None

    def _handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        method, path = h.command, h.path
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        if path.startswith("/token"):
            self._log(method, path, 200)
            token = b'{"token": "geonox-test-token"}'
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(token)))
            h.end_headers()
            h.wfile.write(token)
            return
        rule = self._rule_for(method, path)
        if rule and rule.fault == "drop":
            self._log(method, path, 0)
            h.close_connection = True
            h.connection.shutdown(2)
            return
        if rule and rule.fault == "silent":
            self._log(method, path, 0)
            self._release.wait(600)
            h.close_connection = True
            return
        if rule and rule.fault == "status":
            self._log(method, path, rule.status)
            h.send_response(rule.status)
            for k, v in rule.headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        self.authorizations.append(h.headers.get("Authorization"))
        headers = {
            k: v for k, v in h.headers.items() if k.lower() not in HOP | {"host", "authorization"}
        }
        upstream = requests.request(
            method,
            f"http://{self.upstream}{path}",
            headers=headers,
            data=body if length else None,
            allow_redirects=False,
            timeout=60,
        )
        data = upstream.content
        if rule and rule.fault == "corrupt" and data:
            at = len(data) // 2
            data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
        self._log(method, path, upstream.status_code)
        h.send_response(upstream.status_code)
        for k, v in upstream.headers.items():
            if k.lower() in HOP:
                continue
            if k.lower() == "location":  # uploads continue through the proxy
                v = v.replace(f"http://{self.upstream}", f"http://{self.address}")
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if method == "HEAD":
            return
        if rule and rule.fault == "cut":
            h.wfile.write(data[: rule.cut_after])
            h.wfile.flush()
            time.sleep(0.05)
            h.close_connection = True
            h.connection.shutdown(2)
            return
        h.wfile.write(data)

    def _log(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.requests.append((method, path, status))
