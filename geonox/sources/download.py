"""Fetch a :class:`~geonox.sources.model.Source` into the cache, verified.

:func:`fetch` puts it at ``sources/<sha256>/<file name>`` through the cache's
:class:`~geonox.cache.Artifact` helper (its lock is ``sources/.locks/<sha256>.lock``): the
bytes go to a ``.part`` file beside the final path, hashed while streaming, fsynced, and
are renamed into place only when the hash matches, so anything found at a final path is
verified (and is re-hashed on every cache hit anyway).  Concurrent fetchers of one file,
on one machine or several sharing the cache, download it once.

Candidates are tried in order: each mirror base (``http(s)://``, ``file://`` or a plain
directory) joined with the file name, then the upstream URL.  Per candidate:

- 429 and 5xx responses are retried by urllib3 (``HTTPAdapter(max_retries=Retry(...))``,
  honouring ``Retry-After`` up to :data:`RETRY_AFTER_CAP`);
- connection errors, resets, timeouts and bodies cut short are retried by our own short
  loop (urllib3 cannot retry a body it already handed over), sharing one budget of
  :data:`ATTEMPTS` tries with the status retries;
- other 4xx and a sha256 mismatch move on to the next candidate at once.
"""

from __future__ import annotations

import hashlib
import http
import http.client
import os
import re
import socket
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from geonox import environment
from geonox.cache import CacheLayout, file_sha256, fsync_dir, source_artifact
from geonox.errors import ChecksumError, SourceError
from geonox.sources.archives import short_error
from geonox.sources.model import Source, mirror_urls
from geonox.sources.progress import Progress

CONNECT_TIMEOUT = 10.0  # seconds to establish a connection
READ_TIMEOUT = 60.0  # seconds without a byte from the server
ATTEMPTS = 4  # tries per candidate URL for transient failures
BACKOFF_BASE = 0.5  # first retry delay in seconds; doubles each retry
RETRY_AFTER_CAP = 30.0  # longest Retry-After (429/503) we honour, seconds
CHUNK = 256 * 1024
_RETRY_STATUS = frozenset([429, *range(500, 600)])
_USER_AGENT = "geonox (+https://github.com/geonox)"


def backoff_delay(attempt: int, base: float) -> float:
    """Delay before try ``attempt + 1`` (attempt counts from 1): base, 2·base, 4·base…"""
    return base * float(2 ** (attempt - 1))


class StatusRetry(Retry):
    """urllib3's status retry with geonox's schedule: ``base, 2·base, …`` from the first
    retry (urllib3 waits nothing before its first), ``Retry-After`` capped at
    :data:`RETRY_AFTER_CAP`; a MaxRetryError carries the statuses seen before it so the
    error message can name every try."""

    def get_backoff_time(self) -> float:
        return backoff_delay(len(self.history), self.backoff_factor) if self.history else 0.0

    def parse_retry_after(self, retry_after: str) -> float:
        try:  # seconds, fractions too; else urllib3's HTTP-date parsing
            seconds = float(retry_after)
        except ValueError:
            seconds = float(super().parse_retry_after(retry_after))
        return min(max(seconds, 0.0), RETRY_AFTER_CAP)

    def increment(self, *args: Any, **kwargs: Any) -> Retry:  # type: ignore[override]
        # (urllib3's own arguments, passed through)
        try:
            return super().increment(*args, **kwargs)
        except urllib3.exceptions.MaxRetryError as exc:
            exc.geonox_history = tuple(h.status for h in self.history if h.status)  # type: ignore[attr-defined]
            raise


def _adapter(retries: int, base: float) -> HTTPAdapter:
    return HTTPAdapter(
        max_retries=StatusRetry(
            total=retries,
            connect=0,
            read=False,
            other=0,
            status=retries,
            redirect=None,
            status_forcelist=_RETRY_STATUS,
            backoff_factor=base,
            raise_on_status=False,
            respect_retry_after_header=True,
        )
    )


# ------------------------------------------------------------------ failures


class _Failure(Exception):
    """One try at one candidate failed; ``retry`` says whether trying again may help."""

    def __init__(
        self, what: str, *, retry: bool, kind: str, delay: float = 0.0, before: Sequence[int] = ()
    ) -> None:
        super().__init__(what)
        self.what = what
        self.retry = retry
        self.kind = kind  # "status", "network", "missing", "mismatch", "other"
        self.delay = delay
        self.before = tuple(before)  # statuses urllib3 retried before this failure


def _status_text(code: int, reason: str | None = None) -> str:
    if not reason:
        try:
            reason = http.HTTPStatus(code).phrase
        except ValueError:
            reason = ""
    return f"HTTP {code} {reason}".rstrip()


def _exceptions_in(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps (cause, context, args, urllib3 ``reason``)."""
    todo: list[BaseException] = [exc]
    seen: set[int] = set()
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        nested = [e.__cause__, e.__context__, getattr(e, "reason", None), *e.args]
        todo.extend(x for x in nested if isinstance(x, BaseException))


def _describe(exc: BaseException, connect_s: float, read_s: float) -> _Failure:
    chain = list(_exceptions_in(exc))
    before = next((e.geonox_history for e in chain if hasattr(e, "geonox_history")), ())

    def has(*types: type) -> bool:
        return any(isinstance(e, types) for e in chain)

    def fail(what: str, *, retry: bool, kind: str) -> _Failure:
        return _Failure(what, retry=retry, kind=kind, before=before)

    text = " ".join(str(e) for e in chain).lower()
    # Before the timeout checks: urllib3's NameResolutionError is a NewConnectionError,
    # which subclasses its ConnectTimeoutError and TimeoutError.
    if has(socket.gaierror) or "name resolution" in text or "name or service" in text:
        return fail("host not found (DNS)", retry=True, kind="network")
    if has(ConnectionRefusedError) or "connection refused" in text:
        return fail("connection refused", retry=True, kind="network")
    if has(ConnectionResetError) or "connection reset" in text:
        return fail("connection reset", retry=True, kind="network")
    if has(requests.exceptions.ConnectTimeout) or any(
        isinstance(e, urllib3.exceptions.ConnectTimeoutError)
        and not isinstance(e, urllib3.exceptions.NewConnectionError)
        for e in chain
    ):
        return fail(f"connect timed out after {connect_s:g} s", retry=True, kind="network")
    connect_failed = has(urllib3.exceptions.NewConnectionError)
    if not connect_failed and (
        has(
            requests.exceptions.Timeout,
            urllib3.exceptions.TimeoutError,
            socket.timeout,
            TimeoutError,
        )
        or "timed out" in text
    ):
        return fail(f"timed out after {read_s:g} s without data", retry=True, kind="network")
    for e in chain:
        if isinstance(e, (http.client.IncompleteRead, urllib3.exceptions.IncompleteRead)):
            got, more = getattr(e, "partial", None), getattr(e, "expected", None)
            detail = (
                f" ({got} of {got + more} bytes)"
                if isinstance(got, int) and isinstance(more, int)
                else ""
            )
            return fail(
                f"connection closed before the end of the body{detail}", retry=True, kind="network"
            )
    if has(requests.exceptions.SSLError, urllib3.exceptions.SSLError):
        return fail(f"TLS error ({short_error(exc)})", retry=False, kind="other")
    if has(
        requests.exceptions.InvalidURL,
        requests.exceptions.MissingSchema,
        requests.exceptions.InvalidSchema,
    ):
        return fail(f"invalid URL ({short_error(exc)})", retry=False, kind="other")
    if has(
        requests.exceptions.ConnectionError,
        urllib3.exceptions.ProtocolError,
        urllib3.exceptions.HTTPError,
        ConnectionError,
        OSError,
    ):
        return fail(f"connection failed ({short_error(exc)})", retry=True, kind="network")
    return fail(f"{type(exc).__name__}: {short_error(exc)}", retry=False, kind="other")


class _Attempts:
    """What happened at one candidate, for the error message."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.outcomes: list[str] = []
        self.kinds: set[str] = set()

    def add(self, what: str, kind: str) -> None:
        self.outcomes.append(what)
        self.kinds.add(kind)

    def line(self) -> str:
        groups: list[list[Any]] = []
        for o in self.outcomes:
            if groups and groups[-1][0] == o:
                groups[-1][1] += 1
            else:
                groups.append([o, 1])
        text = ", then ".join(o if k == 1 or len(groups) == 1 else f"{o} x{k}" for o, k in groups)
        n = len(self.outcomes)
        return f"  {self.where}: {text} ({n} {'try' if n == 1 else 'tries'})"


def _failure_message(source: Source, tried: list[_Attempts], entry_dir: Path) -> str:
    kinds = set().union(*(t.kinds for t in tried)) if tried else set()
    head = (
        f"could not fetch {source.filename} ({source.name} {source.version}, "
        f"sha256 {source.sha256[:12]}…):"
        if "mismatch" not in kinds
        else f"sha256 mismatch for {source.filename} ({source.name} {source.version}); "
        f"nothing was cached:"
    )
    hints = []
    if "mismatch" in kinds:
        hints.append(
            f"if the pin is wrong, fix sha256 in [tool.geonox.sources."
            f"{source.name}]; if not, the server sent other bytes: check the mirror"
        )
    if "status" in kinds or "missing" in kinds or "other" in kinds:
        hints.append(
            f"check the mirror (GEONOX_MIRROR) and the URL/version in "
            f"[tool.geonox.sources.{source.name}]"
        )
    if "network" in kinds:
        hints.append("check your network or proxy and retry, or go online")
    hints.append(f"or copy the verified file into {entry_dir}/")
    fix = "; ".join(hints)
    return "\n".join([head, *(t.line() for t in tried), fix[0].upper() + fix[1:] + "."])


def _offline_message(source: Source, tried: list[_Attempts], entry_dir: Path) -> str:
    return "\n".join(
        [
            f"{source.filename} ({source.name} {source.version}, sha256 {source.sha256}) "
            f"is not in the cache and geonox is offline (GEONOX_OFFLINE).",
            *(t.line() for t in tried),
            f"Run `python -m geonox fetch` while online, or copy the file into "
            f"{entry_dir}/, or point GEONOX_MIRROR at a directory holding it.",
        ]
    )


# ------------------------------------------------------------------ one try


def _local_path(candidate: str) -> Path | None:
    """The file a local candidate names, or None for a network URL."""
    if candidate.lower().startswith("file:"):
        parts = urlsplit(candidate)
        if parts.netloc not in ("", "localhost"):
            raise _Failure(
                f"file URL with a remote host {parts.netloc!r} is not supported",
                retry=False,
                kind="other",
            )
        return Path(url2pathname(unquote(parts.path)))
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", candidate):
        return None
    return Path(candidate).expanduser()


def _is_local(candidate: str) -> bool:
    try:
        return _local_path(candidate) is not None
    except _Failure:
        return True


def _write_chunks(chunks: Iterable[bytes], tmp: Path, prog: Progress) -> tuple[str, int]:
    """Write ``chunks`` to ``tmp`` (truncated first) while hashing; fsynced on return."""
    h = hashlib.sha256()
    size = 0
    with open(tmp, "wb") as out:
        for chunk in chunks:
            if not chunk:
                continue
            h.update(chunk)
            out.write(chunk)
            size += len(chunk)
            prog.update(size)
        out.flush()
        os.fsync(out.fileno())
    return h.hexdigest(), size


def _try_local(path: Path, tmp: Path, prog: Progress) -> tuple[str, int]:
    try:
        f = open(path, "rb")  # noqa: SIM115  (a `with` below; its errors are told apart)
    except FileNotFoundError:
        raise _Failure("not found", retry=False, kind="missing") from None
    except IsADirectoryError:
        raise _Failure("is a directory", retry=False, kind="other") from None
    except OSError as e:
        raise _Failure(f"cannot read ({e.strerror or e})", retry=False, kind="other") from None
    with f:
        try:
            total = os.fstat(f.fileno()).st_size
        except OSError:
            total = None
        prog.start(total)
        try:
            return _write_chunks(iter(lambda: f.read(CHUNK), b""), tmp, prog)
        except OSError as e:
            raise _Failure(f"read error ({e.strerror or e})", retry=False, kind="other") from None


def _try_http(
    session: requests.Session,
    url: str,
    tmp: Path,
    prog: Progress,
    timeouts: tuple[float, float],
    record: _Attempts,
) -> tuple[str, int]:
    """One request (urllib3 retries 429/5xx inside it); the statuses it retried are added
    to ``record`` before the outcome of the last response."""
    connect_s, read_s = timeouts
    try:
        resp = session.get(
            url,
            stream=True,
            timeout=timeouts,
            allow_redirects=True,
            headers={"Accept-Encoding": "identity"},
        )
    except requests.exceptions.RequestException as e:
        raise _describe(e, connect_s, read_s) from None
    with resp:
        retries = getattr(resp.raw, "retries", None)
        for h in retries.history if retries else ():
            if h.status:
                record.add(_status_text(h.status), "status")
        if resp.status_code != 200:
            code = resp.status_code
            raise _Failure(
                _status_text(code, resp.reason), retry=code in _RETRY_STATUS, kind="status"
            )
        length = resp.headers.get("Content-Length", "").strip()
        total = int(length) if length.isdigit() else None
        encoded = resp.headers.get("Content-Encoding", "identity").lower() != "identity"
        prog.start(None if encoded else total)
        # The raw bytes exactly as sent (no transparent gunzip of a .tar.gz served with
        # Content-Encoding: gzip).  urllib3 2 raises on a body shorter than
        # Content-Length (enforce_content_length); we check it ourselves for urllib3 1.
        chunks = resp.raw.stream(CHUNK, decode_content=False)
        try:
            digest, size = _write_chunks(chunks, tmp, prog)
        except (
            requests.exceptions.RequestException,
            urllib3.exceptions.HTTPError,
            http.client.HTTPException,
            OSError,
        ) as e:
            raise _describe(e, connect_s, read_s) from None
        if total is not None and not encoded and size != total:
            raise _Failure(
                f"connection closed before the end of the body ({size} of {total} bytes)",
                retry=True,
                kind="network",
            )
        return digest, size


def _fetch_candidate(
    candidate: str,
    source: Source,
    tmp: Path,
    session: requests.Session,
    prog: Progress,
    timeouts: tuple[float, float],
    tries: int,
    base: float,
) -> _Attempts | None:
    """Fill ``tmp`` from ``candidate`` with the right bytes (None), or say what failed."""
    record = _Attempts(candidate)
    while len(record.outcomes) < tries:
        t0 = time.monotonic()
        try:
            local = _local_path(candidate)
            if local is not None:
                digest, size = _try_local(local, tmp, prog)
            else:
                scheme = urlsplit(candidate).scheme.lower()
                if scheme not in ("http", "https"):
                    raise _Failure(f"unsupported URL scheme {scheme!r}", retry=False, kind="other")
                session.mount(f"{scheme}://", _adapter(tries - len(record.outcomes) - 1, base))
                digest, size = _try_http(session, candidate, tmp, prog, timeouts, record)
            if digest != source.sha256:
                raise _Failure(
                    f"sha256 mismatch: expected {source.sha256}, got {digest}",
                    retry=False,
                    kind="mismatch",
                )
            prog.done(size, candidate, time.monotonic() - t0)
            return None
        except _Failure as failure:
            prog.fail()
            for status in failure.before:
                record.add(_status_text(status), "status")
            record.add(failure.what, failure.kind)
            if not failure.retry or len(record.outcomes) >= tries:
                return record
            time.sleep(max(backoff_delay(len(record.outcomes), base), failure.delay))
    return record


def _timeouts(timeout: float | tuple[float, float] | None) -> tuple[float, float]:
    if timeout is None:
        timeout = environment.read().timeout
    if timeout is None:
        return CONNECT_TIMEOUT, READ_TIMEOUT
    if isinstance(timeout, tuple):
        return float(timeout[0]), float(timeout[1])
    return min(CONNECT_TIMEOUT, float(timeout)), float(timeout)


def fetch(
    source: Source,
    *,
    mirrors: Sequence[str] = (),
    offline: bool = False,
    cache_dir: Path | None = None,
    progress: bool | None = None,
    timeout: float | tuple[float, float] | None = None,
    attempts: int | None = None,
    backoff: float | None = None,
) -> Path:
    """The verified file ``<cache_dir>/<sha256>/<filename>``, downloading it if needed.

    ``cache_dir`` defaults to the cache's ``sources/``.  ``timeout`` is the read timeout in
    seconds (or ``(connect, read)``; default ``GEONOX_TIMEOUT`` or 10/60 s), ``attempts``
    the tries per candidate for transient failures (default 4), ``backoff`` the first
    retry delay (default 0.5 s, doubling).  ``progress``: None or True shows progress on
    stderr, False is silent.  Raises :class:`ChecksumError` if every candidate failed and
    one served wrong bytes, :class:`SourceError` for any other failure.
    """
    if not isinstance(source, Source):
        raise TypeError(f"fetch() needs a Source, got {type(source).__name__}")
    root = Path(cache_dir) if cache_dir is not None else CacheLayout.from_env().sources
    artifact = source_artifact(
        root, source.sha256, source.filename, check=lambda p: file_sha256(p) == source.sha256
    )
    if artifact.complete():
        artifact.touch()
        return artifact.path

    timeouts = _timeouts(timeout)
    tries = ATTEMPTS if attempts is None else max(1, int(attempts))
    base = BACKOFF_BASE if backoff is None else max(0.0, float(backoff))
    candidates = mirror_urls(source, mirrors)
    if offline:
        candidates = [c for c in candidates if _is_local(c)]
    prog = Progress(progress is not False, source.filename)
    entry_dir = artifact.path.parent

    def download(tmp: Path) -> None:
        tried: list[_Attempts] = []
        with requests.Session() as session:
            session.headers["User-Agent"] = _USER_AGENT
            for candidate in candidates:
                failed = _fetch_candidate(
                    candidate, source, tmp, session, prog, timeouts, tries, base
                )
                if failed is None:
                    return
                tried.append(failed)
        if any("mismatch" in t.kinds for t in tried):
            raise ChecksumError(_failure_message(source, tried, entry_dir))
        if offline:
            raise SourceError(_offline_message(source, tried, entry_dir))
        raise SourceError(_failure_message(source, tried, entry_dir))

    artifact.ensure(
        download,
        on_wait=lambda lock: prog.note(
            f"waiting for another geonox process fetching {source.filename} (lock {lock})"
        ),
    )
    fsync_dir(entry_dir)
    return artifact.path
