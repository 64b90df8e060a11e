"""A real, scriptable HTTP server on 127.0.0.1 for download tests (no mocks).

Usage from a test module::

    from conftest_http import FaultServer, fault_server, serve, status, reset  # noqa: F401

    def test_x(fault_server):
        fault_server.script("/sqlite-autoconf-3520000.tar.gz", status(500), status(500), serve())
        url = fault_server.url("/sqlite-autoconf-3520000.tar.gz")
        ...
        assert fault_server.count("/sqlite-autoconf-3520000.tar.gz") == 3

Each path has a script: a list of steps, one consumed per GET; the last step repeats
forever.  Unscripted paths serve the file of that name from ``root`` (default:
:data:`PAYLOADS`, the shared mirror of real tarballs), or 404.  Steps:

- ``serve(file=None, rate=None, delay=0)``: the real file, optionally slowed to ``rate``
  bytes/s (for overlap and kill tests) or after ``delay`` seconds.
- ``wrong_bytes()``: same length, other bytes, under the right name.
- ``truncate(fraction)``: full Content-Length, ``fraction`` of the body, then close.
- ``reset(fraction)``: part of the body, then a TCP RST (SO_LINGER 0 + close).
- ``status(code, retry_after=None)``: an empty response with that status.
- ``stall(seconds, fraction=0.0)``: send ``fraction`` of the body, then go silent for
  ``seconds`` (before the headers when fraction is 0), then close.

The server speaks HTTP/1.1 with keep-alive, like real servers, so clients reuse
connections across retries.
"""

from __future__ import annotations

import hashlib
import os
import random
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import pytest

# The shared mirror beside the repository (../shared/mirror), or GEONOX_TEST_MIRROR.
MIRROR = Path(
    os.environ.get("GEONOX_TEST_MIRROR")
    or Path(__file__).resolve().parents[2] / "shared" / "mirror"
)

# The real tarballs and their published checksums (mirror README / SHA256SUMS).
SQLITE = "sqlite-autoconf-3520000.tar.gz"
PUBLISHED_SQLITE_SHA256 = "f6b50b0c103392af32a8be15b2b9d25959de9a00a70c3979128aafeaa5338b3f"
PROJ = "proj-9.1.1.tar.gz"
PROJ_SHA256 = "003cd4010e52bb5eb8f7de1c143753aa830c8902b6ed01209f294846e40e6d39"
GEOS = "geos-3.13.1.tar.bz2"
GEOS_SHA256 = "df2c50503295f325e7c8d7b783aca8ba4773919cde984193850cf9e361dfd28c"


#: the real SQLite tarball's size: the download tests name byte counts ("1629490 of 3258980")
SQLITE_SIZE = 3258980


def _stand_in(dest: Path) -> None:
    """Bytes of the SQLite tarball's size from a seeded generator (the same on every
    machine), written atomically (two test workers may make them at once)."""
    data = random.Random(3520000).getrandbits(8 * SQLITE_SIZE).to_bytes(SQLITE_SIZE, "little")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(dest)


def _payloads() -> Path:
    """Where the download tests' files come from: the shared mirror, whose SQLite tarball
    is upstream's own bytes; on a machine without it (the fast lane anywhere), stand-in
    bytes of that name and size, made once in the temp directory.  Downloading, retrying
    and verifying do not look inside the bytes; the test that does (the real tarball
    extracts) asks for the mirror itself."""
    if (MIRROR / SQLITE).is_file():
        return MIRROR
    where = Path(tempfile.gettempdir()) / f"geonox-test-payloads-{os.getuid()}"
    if not (where / SQLITE).is_file() or (where / SQLITE).stat().st_size != SQLITE_SIZE:
        _stand_in(where / SQLITE)
    return where


PAYLOADS = _payloads()
#: the sha256 of the SQLite payload: upstream's published one when it is the real tarball
SQLITE_SHA256 = (
    PUBLISHED_SQLITE_SHA256
    if PAYLOADS == MIRROR
    else hashlib.sha256((PAYLOADS / SQLITE).read_bytes()).hexdigest()
)


@dataclass(frozen=True)
class Step:
    kind: str
    file: str | None = None
    rate: float | None = None
    delay: float = 0.0
    fraction: float = 0.5
    code: int = 200
    retry_after: float | None = None
    seconds: float = 0.0


def serve(file: str | None = None, rate: float | None = None, delay: float = 0.0) -> Step:
    return Step("serve", file=file, rate=rate, delay=delay)


def wrong_bytes(file: str | None = None) -> Step:
    return Step("wrong", file=file)


def truncate(fraction: float = 0.5, file: str | None = None) -> Step:
    return Step("truncate", file=file, fraction=fraction)


def reset(fraction: float = 0.3, file: str | None = None) -> Step:
    return Step("reset", file=file, fraction=fraction)


def status(code: int, retry_after: float | None = None) -> Step:
    return Step("status", code=code, retry_after=retry_after)


def stall(seconds: float, fraction: float = 0.0, file: str | None = None) -> Step:
    return Step("stall", file=file, seconds=seconds, fraction=fraction)


class FaultServer:
    """ThreadingHTTPServer on 127.0.0.1:<free port> in a background thread."""

    def __init__(self, root: Path = PAYLOADS) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        self._scripts: dict[str, list[Step]] = {}
        self._counts: dict[str, int] = {}
        self.log: list[tuple[str, str, str]] = []  # (method, path, step kind)
        self.stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # -- lifecycle
    def start(self) -> FaultServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting and inspection
    @property
    def base(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + (path if path.startswith("/") else "/" + path)

    def script(self, path: str, *steps: Step) -> None:
        if not path.startswith("/"):
            path = "/" + path
        with self._lock:
            self._scripts[path] = list(steps)

    def count(self, path: str) -> int:
        """GET requests received for ``path`` so far."""
        if not path.startswith("/"):
            path = "/" + path
        with self._lock:
            return self._counts.get(path, 0)

    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def _next_step(self, path: str) -> Step:
        with self._lock:
            self._counts[path] = self._counts.get(path, 0) + 1
            steps = self._scripts.get(path)
            if not steps:
                step = serve()
            elif len(steps) > 1:
                step = steps.pop(0)
            else:
                step = steps[0]
            self.log.append(("GET", path, step.kind))
            return step

    def _body(self, path: str, step: Step) -> bytes | None:
        name = step.file or path.rsplit("/", 1)[-1]
        f = self.root / name
        if not name or not f.is_file():
            return None
        return f.read_bytes()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # do not wait for stalled handlers on shutdown
    owner: FaultServer

    def handle_error(self, request, client_address) -> None:
        pass  # clients hanging up on purpose are the point of this server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        step = owner._next_step(path)
        if step.kind == "status":
            self.send_response(step.code)
            if step.retry_after is not None:
                self.send_header("Retry-After", f"{step.retry_after:g}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = owner._body(path, step)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if step.kind == "wrong":
            body = (hashlib.sha256(body[:64]).digest() * (len(body) // 32 + 1))[: len(body)]
        if step.kind == "stall" and step.fraction <= 0:
            self._sleep(step.seconds)
            self.close_connection = True
            return
        if step.delay:
            self._sleep(step.delay)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if step.kind in ("serve", "wrong"):
            self._send(body, step.rate)
        elif step.kind == "truncate":
            self._send(body[: int(len(body) * step.fraction)], None)
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_WR)  # FIN: clean close, body short
        elif step.kind == "reset":
            self._send(body[: int(len(body) * step.fraction)], None)
            time.sleep(0.05)  # let the client start reading
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()  # RST
        elif step.kind == "stall":
            self._send(body[: int(len(body) * step.fraction)], None)
            self._sleep(step.seconds)
            self.close_connection = True

    def _send(self, data: bytes, rate: float | None) -> None:
        chunk = 64 * 1024 if rate is None else max(1024, int(rate / 20))
        for i in range(0, len(data), chunk):
            if self.server.owner.stopping.is_set():
                raise ConnectionAbortedError("server stopping")
            self.wfile.write(data[i : i + chunk])
            if rate:
                time.sleep(chunk / rate)

    def _sleep(self, seconds: float) -> None:
        self.server.owner.stopping.wait(seconds)


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    """A fresh server per test (counts and scripts start empty)."""
    with FaultServer() as server:
        yield server


def sha256_of(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, every: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(every)
    return predicate()
