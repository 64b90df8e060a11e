"""Source tarballs: download, verify, cache by sha256, extract safely.

A :class:`Source` is one upstream release file pinned by its sha256.  :func:`fetch`
puts it at ``<sources dir>/<sha256>/<file name>`` and returns that path; the file only
ever appears there after its bytes hashed to the pin, so anything found at that path
is verified (and is re-hashed on every cache hit anyway).

Downloads go to a ``.part`` file beside the final path (same directory, so the final
``os.replace`` is atomic), hashed while streaming, fsynced, and renamed only when the
hash matches.  One :class:`filelock.FileLock` per sha256 (``<sources dir>/.locks/``)
makes concurrent fetchers of the same file, on one machine or several sharing the cache,
download it once; whoever holds the lock also removes ``.part`` files a killed run left.

Candidates are tried in order: each mirror base (``http(s)://``, ``file://`` or a plain
directory) joined with the file name, then the upstream URL.  Per candidate, connection
errors, resets, timeouts, short bodies, 429 and 5xx are retried with exponential
backoff; other 4xx and a sha256 mismatch move on to the next candidate at once.

Settings for tests and impatient users: ``GEONOX_TIMEOUT`` (read timeout in seconds),
the module constants below, or the keywords of :func:`fetch`.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import re
import secrets
import shutil
import socket
import stat
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable, Iterator, Sequence
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import filelock
import requests
import urllib3

from geonox import cache
from geonox.errors import ChecksumError, SourceError

__all__ = [
    "CachedSource",
    "Source",
    "cached_sources",
    "extract",
    "fetch",
    "mirror_urls",
    "mirrors_from_env",
    "offline_from_env",
]

CONNECT_TIMEOUT = 10.0  # seconds to establish a connection
READ_TIMEOUT = 60.0  # seconds without a byte from the server
ATTEMPTS = 4  # tries per candidate URL for transient failures
BACKOFF_BASE = 0.5  # first retry delay in seconds; doubles each retry
RETRY_AFTER_CAP = 30.0  # longest Retry-After (429/503) we honour, seconds
CHUNK = 256 * 1024

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_TRUE = {"1", "true", "yes", "on"}
_USER_AGENT = "geonox (+https://github.com/geonox)"
# tarfile's "data" filter (3.12+, backported to 3.8.17/3.9.17/3.10.12/3.11.4). Tests
# switch this off to prove that our own member check is enough on its own.
_USE_DATA_FILTER = hasattr(tarfile, "data_filter")


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Source:
    """One upstream release file, pinned by sha256."""

    name: str  # "proj"
    version: str  # "9.1.1"
    url: str  # upstream URL
    sha256: str  # lowercase hex

    def __post_init__(self) -> None:
        digest = self.sha256.strip().lower() if isinstance(self.sha256, str) else ""
        if not _SHA256_RE.match(digest):
            shown = self.sha256 if self.sha256 else "(empty)"
            raise SourceError(
                f"source {self.name} {self.version} ({self.url}) has no valid sha256: got "
                f"{shown!r}, expected 64 hex digits. Set sha256 in "
                f"[tool.geonox.sources.{self.name}] to the checksum upstream publishes."
            )
        object.__setattr__(self, "sha256", digest)
        name = self.filename
        if not name or name in (".", "..") or "\\" in name or "\x00" in name:
            raise SourceError(
                f"source {self.name} {self.version}: cannot take a file name from URL "
                f"{self.url!r}; the URL must end in the archive's file name "
                f"(e.g. .../proj-9.1.1.tar.gz)."
            )

    @property
    def filename(self) -> str:
        """The basename of the URL path (percent-decoded)."""
        path = urlsplit(self.url).path if "://" in self.url else self.url
        return unquote(path.rstrip("/").rsplit("/", 1)[-1]) if path.strip("/") else ""

    def __str__(self) -> str:
        return f"{self.name} {self.version} ({self.filename})"


@dataclass(frozen=True)
class CachedSource:
    """A verified file in the sources cache (as listed, not re-hashed)."""

    sha256: str
    filename: str
    size: int
    path: Path


# --------------------------------------------------------------------- environment


def mirror_urls(source: Source, mirrors: Sequence[str]) -> list[str]:
    """Candidate locations, in order: each mirror base + "/" + file name, then upstream.

    A base is ``http(s)://…``, ``file://…`` or a plain directory (absolute or relative,
    resolved against the current directory when fetching).  Duplicates are dropped.
    """
    out: list[str] = []
    for base in mirrors:
        base = base.strip()
        if not base:
            continue
        out.append(base.rstrip("/") + "/" + source.filename)
    out.append(source.url)
    seen: set[str] = set()
    return [u for u in out if not (u in seen or seen.add(u))]


def mirrors_from_env() -> list[str]:
    """Mirror bases from ``GEONOX_MIRROR`` (whitespace separated)."""
    return os.environ.get("GEONOX_MIRROR", "").split()


def offline_from_env() -> bool:
    """``GEONOX_OFFLINE`` set to 1/true/yes/on."""
    return os.environ.get("GEONOX_OFFLINE", "").strip().lower() in _TRUE


def _timeouts(timeout: float | tuple[float, float] | None) -> tuple[float, float]:
    if timeout is None:
        env = os.environ.get("GEONOX_TIMEOUT", "").strip()
        if env:
            try:
                timeout = float(env)
            except ValueError:
                timeout = -1.0
            if not timeout > 0:
                raise SourceError(
                    f"GEONOX_TIMEOUT={env!r} is not a number of seconds; set it to e.g. 60 "
                    f"or unset it (default: connect {CONNECT_TIMEOUT:g} s, read "
                    f"{READ_TIMEOUT:g} s)."
                )
    if timeout is None:
        return CONNECT_TIMEOUT, READ_TIMEOUT
    if isinstance(timeout, tuple):
        return float(timeout[0]), float(timeout[1])
    return min(CONNECT_TIMEOUT, float(timeout)), float(timeout)


def _backoff_delay(attempt: int, base: float) -> float:
    """Delay before try ``attempt + 1`` (attempt counts from 1): base, 2·base, 4·base…"""
    return base * (2 ** (attempt - 1))


# ------------------------------------------------------------------------ progress


def _human(n: float) -> str:
    if n >= 1e9:
        return f"{n / 1e9:.1f} GB"
    if n >= 1e6:
        return f"{n / 1e6:.1f} MB"
    if n >= 1e3:
        return f"{n / 1e3:.0f} kB"
    return f"{int(n)} B"


class _Progress:
    """A single in-place line on a terminal, one summary line otherwise, or nothing."""

    def __init__(self, enabled: bool, filename: str) -> None:
        self.stream: IO[str] = sys.stderr
        self.enabled = enabled
        isatty = getattr(self.stream, "isatty", None)
        self.tty = enabled and bool(isatty and isatty())
        self.filename = filename
        self.drawn = False

    def note(self, text: str) -> None:
        if self.enabled:
            self._clear()
            print(text, file=self.stream, flush=True)

    def start(self, total: int | None) -> None:
        self.total = total
        self.t0 = time.monotonic()
        self.last = 0.0

    def update(self, done: int) -> None:
        if not self.tty:
            return
        now = time.monotonic()
        if now - self.last < 0.1 and (self.total is None or done < self.total):
            return
        self.last = now
        rate = done / max(now - self.t0, 1e-6)
        if self.total:
            frac = min(done / self.total, 1.0)
            bar = "#" * int(frac * 24)
            line = (f"{self.filename} [{bar:<24}] {_human(done)} / {_human(self.total)}"
                    f"  {_human(rate)}/s")
        else:
            line = f"{self.filename} {_human(done)}  {_human(rate)}/s"
        self.stream.write("\r" + line + "\x1b[K")
        self.stream.flush()
        self.drawn = True

    def _clear(self) -> None:
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.drawn = False

    def fail(self) -> None:
        if self.tty:
            self._clear()

    def done(self, size: int, where: str, seconds: float) -> None:
        self.note(f"fetched {self.filename} ({_human(size)}) from {where} in "
                  f"{seconds:.1f} s, sha256 ok")


# ------------------------------------------------------------------------ fetching


class _Failure(Exception):
    """One try at one candidate failed; ``retry`` says whether trying again may help."""

    def __init__(self, what: str, *, retry: bool, kind: str, delay: float = 0.0) -> None:
        super().__init__(what)
        self.what = what
        self.retry = retry
        self.kind = kind  # "status", "network", "missing", "mismatch", "other"
        self.delay = delay  # server-requested minimum delay (Retry-After)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _local_path(candidate: str) -> Path | None:
    """The file a local candidate names, or None for a network URL."""
    if candidate.lower().startswith("file:"):
        parts = urlsplit(candidate)
        if parts.netloc not in ("", "localhost"):
            raise _Failure(f"file URL with a remote host {parts.netloc!r} is not supported",
                           retry=False, kind="other")
        return Path(url2pathname(unquote(parts.path)))
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", candidate):
        return None
    return Path(candidate).expanduser()


def _is_local(candidate: str) -> bool:
    try:
        return _local_path(candidate) is not None
    except _Failure:
        return True


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

    def has(*types: type) -> bool:
        return any(isinstance(e, types) for e in chain)

    text = " ".join(str(e) for e in chain).lower()
    # Before the timeout checks: urllib3's NameResolutionError is a NewConnectionError,
    # which subclasses its ConnectTimeoutError and TimeoutError.
    if has(socket.gaierror) or "name resolution" in text or "name or service" in text:
        return _Failure("host not found (DNS)", retry=True, kind="network")
    if has(ConnectionRefusedError) or "connection refused" in text:
        return _Failure("connection refused", retry=True, kind="network")
    if has(ConnectionResetError) or "connection reset" in text:
        return _Failure("connection reset", retry=True, kind="network")
    # urllib3's NewConnectionError subclasses ConnectTimeoutError: not a timeout.
    if has(requests.exceptions.ConnectTimeout) or any(
            isinstance(e, urllib3.exceptions.ConnectTimeoutError)
            and not isinstance(e, urllib3.exceptions.NewConnectionError) for e in chain):
        return _Failure(f"connect timed out after {connect_s:g} s", retry=True, kind="network")
    connect_failed = has(urllib3.exceptions.NewConnectionError)
    if not connect_failed and (has(requests.exceptions.Timeout, urllib3.exceptions.TimeoutError,
                                   socket.timeout, TimeoutError) or "timed out" in text):
        return _Failure(f"timed out after {read_s:g} s without data", retry=True,
                        kind="network")
    for e in chain:
        if isinstance(e, (http.client.IncompleteRead, urllib3.exceptions.IncompleteRead)):
            got, more = getattr(e, "partial", None), getattr(e, "expected", None)
            detail = (f" ({got} of {got + more} bytes)"
                      if isinstance(got, int) and isinstance(more, int) else "")
            return _Failure(f"connection closed before the end of the body{detail}",
                            retry=True, kind="network")
    if has(requests.exceptions.SSLError, urllib3.exceptions.SSLError):
        return _Failure(f"TLS error ({_short(exc)})", retry=False, kind="other")
    if has(requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
           requests.exceptions.InvalidSchema):
        return _Failure(f"invalid URL ({_short(exc)})", retry=False, kind="other")
    if has(requests.exceptions.ConnectionError, urllib3.exceptions.ProtocolError,
           urllib3.exceptions.HTTPError, ConnectionError, OSError):
        return _Failure(f"connection failed ({_short(exc)})", retry=True, kind="network")
    return _Failure(f"{type(exc).__name__}: {_short(exc)}", retry=False, kind="other")


def _short(exc: BaseException, limit: int = 120) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _new_temp(entry_dir: Path, filename: str) -> Path:
    """A fresh empty ``.part`` file beside the final path (umask-respecting mode)."""
    path = entry_dir / f".{filename}.{os.getpid()}.{secrets.token_hex(4)}.part"
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    return path


def _write_chunks(chunks: Iterable[bytes], tmp: Path, prog: _Progress) -> tuple[str, int]:
    """Write ``chunks`` to ``tmp`` while hashing; flushed and fsynced on return."""
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


def _try_local(path: Path, tmp: Path, prog: _Progress) -> tuple[str, int]:
    try:
        f = open(path, "rb")
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
            raise _Failure(f"read error ({e.strerror or e})", retry=False,
                           kind="other") from None


def _retry_after(resp: requests.Response) -> float:
    value = resp.headers.get("Retry-After", "").strip()
    try:
        return min(max(float(value), 0.0), RETRY_AFTER_CAP)
    except ValueError:
        return 0.0


def _try_http(session: requests.Session, url: str, tmp: Path, prog: _Progress,
              timeouts: tuple[float, float]) -> tuple[str, int]:
    connect_s, read_s = timeouts
    try:
        resp = session.get(url, stream=True, timeout=timeouts, allow_redirects=True,
                           headers={"Accept-Encoding": "identity"})
    except requests.exceptions.RequestException as e:
        raise _describe(e, connect_s, read_s) from None
    with resp:
        if resp.status_code != 200:
            code = resp.status_code
            what = f"HTTP {code} {resp.reason or ''}".rstrip()
            if code == 429 or 500 <= code <= 599:
                raise _Failure(what, retry=True, kind="status", delay=_retry_after(resp))
            raise _Failure(what, retry=False, kind="status")
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
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError,
                http.client.HTTPException, OSError) as e:
            raise _describe(e, connect_s, read_s) from None
        if total is not None and not encoded and size != total:
            raise _Failure(f"connection closed before the end of the body ({size} of "
                           f"{total} bytes)", retry=True, kind="network")
        return digest, size


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_stale(entry_dir: Path) -> None:
    """Drop ``.part`` files of killed runs; call only while holding the entry's lock."""
    try:
        leftovers = [p for p in entry_dir.iterdir() if p.name.endswith(".part")]
    except FileNotFoundError:
        return
    for p in leftovers:
        _unlink(p)


def _rmdir_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


class _Attempts:
    """What happened at one candidate, for the error message."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.outcomes: list[str] = []
        self.kinds: set[str] = set()

    def add(self, failure: _Failure) -> None:
        self.outcomes.append(failure.what)
        self.kinds.add(failure.kind)

    def line(self) -> str:
        groups: list[list] = []
        for o in self.outcomes:
            if groups and groups[-1][0] == o:
                groups[-1][1] += 1
            else:
                groups.append([o, 1])
        text = ", then ".join(o if k == 1 or len(groups) == 1 else f"{o} x{k}"
                              for o, k in groups)
        n = len(self.outcomes)
        return f"  {self.where}: {text} ({n} {'try' if n == 1 else 'tries'})"


def _failure_message(source: Source, tried: list[_Attempts], entry_dir: Path) -> str:
    kinds = set().union(*(t.kinds for t in tried)) if tried else set()
    head = (f"could not fetch {source.filename} ({source.name} {source.version}, "
            f"sha256 {source.sha256[:12]}…):" if "mismatch" not in kinds else
            f"sha256 mismatch for {source.filename} ({source.name} {source.version}); "
            f"nothing was cached:")
    hints = []
    if "mismatch" in kinds:
        hints.append(f"if the pin is wrong, fix sha256 in [tool.geonox.sources."
                     f"{source.name}]; if not, the server sent other bytes: check the mirror")
    if "status" in kinds or "missing" in kinds or "other" in kinds:
        hints.append(f"check the mirror (GEONOX_MIRROR) and the URL/version in "
                     f"[tool.geonox.sources.{source.name}]")
    if "network" in kinds:
        hints.append("check your network or proxy and retry, or go online")
    hints.append(f"or copy the verified file into {entry_dir}/")
    fix = "; ".join(hints)
    return "\n".join([head, *(t.line() for t in tried), fix[0].upper() + fix[1:] + "."])


def _offline_message(source: Source, tried: list[_Attempts], entry_dir: Path) -> str:
    lines = [f"{source.filename} ({source.name} {source.version}, sha256 {source.sha256}) "
             f"is not in the cache and geonox is offline (GEONOX_OFFLINE).",
             *(t.line() for t in tried),
             f"Run `python -m geonox fetch` while online, or copy the file into "
             f"{entry_dir}/, or point GEONOX_MIRROR at a directory holding it."]
    return "\n".join(lines)


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

    ``timeout`` is the read timeout in seconds (or ``(connect, read)``; default
    ``GEONOX_TIMEOUT`` or 10/60 s), ``attempts`` the tries per candidate for transient
    failures (default 4), ``backoff`` the first retry delay (default 0.5 s, doubling).
    ``progress``: None or True shows progress on stderr, False is silent.
    Raises :class:`ChecksumError` if every candidate failed and one served wrong bytes,
    :class:`SourceError` for any other failure.
    """
    if not isinstance(source, Source):
        raise TypeError(f"fetch() needs a Source, got {type(source).__name__}")
    root = Path(cache_dir) if cache_dir is not None else cache.sources_dir()
    entry_dir = root / source.sha256
    final = entry_dir / source.filename
    if _cached_ok(final, source.sha256):
        return final

    timeouts = _timeouts(timeout)
    tries = ATTEMPTS if attempts is None else max(1, int(attempts))
    base = BACKOFF_BASE if backoff is None else max(0.0, float(backoff))
    candidates = mirror_urls(source, mirrors)
    if offline:
        candidates = [c for c in candidates if _is_local(c)]
    prog = _Progress(progress is not False, source.filename)

    root.mkdir(parents=True, exist_ok=True)
    lock_dir = root / ".locks"
    lock_dir.mkdir(exist_ok=True)
    lock = filelock.FileLock(str(lock_dir / f"{source.sha256}.lock"))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        prog.note(f"waiting for another geonox process fetching {source.filename} "
                  f"(lock {lock.lock_file})")
        lock.acquire()
    try:
        # Someone else may have finished while we waited.
        if _cached_ok(final, source.sha256):
            return final
        if final.exists():
            _unlink(final)  # corrupt: a verified file never changes, so someone broke it
        entry_dir.mkdir(exist_ok=True)
        _remove_stale(entry_dir)
        tried: list[_Attempts] = []
        with requests.Session() as session:
            session.headers["User-Agent"] = _USER_AGENT
            for candidate in candidates:
                result = _fetch_candidate(candidate, source, entry_dir, final, session,
                                          prog, timeouts, tries, base)
                if isinstance(result, Path):
                    return result
                tried.append(result)
        _rmdir_if_empty(entry_dir)
        if any("mismatch" in t.kinds for t in tried):
            raise ChecksumError(_failure_message(source, tried, entry_dir))
        if offline:
            raise SourceError(_offline_message(source, tried, entry_dir))
        raise SourceError(_failure_message(source, tried, entry_dir))
    finally:
        lock.release()


def _cached_ok(final: Path, sha256: str) -> bool:
    try:
        return final.is_file() and _sha256_file(final) == sha256
    except OSError:
        return False


def _fetch_candidate(candidate: str, source: Source, entry_dir: Path, final: Path,
                     session: requests.Session, prog: _Progress,
                     timeouts: tuple[float, float], tries: int,
                     base: float) -> Path | _Attempts:
    record = _Attempts(candidate)
    for attempt in range(1, tries + 1):
        tmp = _new_temp(entry_dir, source.filename)
        t0 = time.monotonic()
        try:
            local = _local_path(candidate)
            if local is not None:
                digest, size = _try_local(local, tmp, prog)
            else:
                scheme = urlsplit(candidate).scheme.lower()
                if scheme not in ("http", "https"):
                    raise _Failure(f"unsupported URL scheme {scheme!r}", retry=False,
                                   kind="other")
                digest, size = _try_http(session, candidate, tmp, prog, timeouts)
            if digest != source.sha256:
                raise _Failure(f"sha256 mismatch: expected {source.sha256}, got {digest}",
                               retry=False, kind="mismatch")
            os.replace(tmp, final)
            _fsync_dir(entry_dir)
            prog.done(size, candidate, time.monotonic() - t0)
            return final
        except _Failure as failure:
            prog.fail()
            record.add(failure)
            if not failure.retry or attempt == tries:
                return record
            time.sleep(max(_backoff_delay(attempt, base), failure.delay))
        finally:
            _unlink(tmp)
    return record


# ----------------------------------------------------------------------- listing


def cached_sources(cache_dir: Path | None = None) -> list[CachedSource]:
    """Files in the sources cache (``<sha256>/<name>``), sorted by file name.

    Lock files, ``.part`` files of interrupted downloads and anything not laid out as
    ``<sha256>/<name>`` are not listed.  Files are not re-hashed here.
    """
    root = Path(cache_dir) if cache_dir is not None else cache.sources_dir()
    out: list[CachedSource] = []
    try:
        dirs = [d for d in root.iterdir() if _SHA256_RE.match(d.name) and d.is_dir()]
    except FileNotFoundError:
        return out
    for d in dirs:
        for f in d.iterdir():
            if f.name.startswith(".") or f.name.endswith((".part", ".lock")):
                continue
            try:
                st = f.lstat()
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode):
                out.append(CachedSource(d.name, f.name, st.st_size, f))
    return sorted(out, key=lambda c: (c.filename, c.sha256))


# --------------------------------------------------------------------- extraction

_TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz", ".tar")


def extract(archive: Path, dest: Path) -> Path:
    """Extract ``archive`` (.tar.gz/.tgz/.tar.bz2/.tar.xz/.zip) into ``dest`` atomically.

    ``dest`` must not exist.  Members with absolute paths or ``..`` components, links
    that point outside the tree, and device/fifo files are refused (SourceError naming
    the member) and nothing is left behind.  Returns the single top-level directory if
    the archive has exactly one, else ``dest``.
    """
    archive, dest = Path(archive), Path(dest)
    if dest.exists() or dest.is_symlink():
        raise SourceError(f"cannot extract {archive.name} into {dest}: it already exists; "
                          f"remove it first.")
    if not archive.is_file():
        raise SourceError(f"cannot extract {archive}: no such file.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".extracting",
                                dir=dest.parent))
    try:
        name = archive.name.lower()
        if name.endswith(".zip"):
            _extract_zip(archive, tmp)
        elif name.endswith(_TAR_SUFFIXES) or tarfile.is_tarfile(archive):
            _extract_tar(archive, tmp)
        elif zipfile.is_zipfile(archive):
            _extract_zip(archive, tmp)
        else:
            raise SourceError(f"cannot extract {archive.name}: not a tar or zip archive "
                              f"(supported: .tar.gz .tgz .tar.bz2 .tar.xz .zip).")
        os.chmod(tmp, 0o777 & ~_umask())
        try:
            os.rename(tmp, dest)
        except OSError as e:
            raise SourceError(f"cannot move the extracted {archive.name} to {dest}: "
                              f"{e.strerror or e}.") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    top = [p for p in dest.iterdir()]
    if len(top) == 1 and top[0].is_dir() and not top[0].is_symlink():
        return top[0]
    return dest


def _umask() -> int:
    try:  # Linux >= 4.7: read it without changing it (os.umask is process-wide)
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _refuse(archive: Path, member: str, why: str) -> SourceError:
    return SourceError(f"refusing to extract {archive.name}: member {member!r} {why}; "
                       f"nothing was extracted. The archive is malformed or malicious: "
                       f"check where it came from.")


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _check_name(archive: Path, name: str) -> None:
    if not name or "\x00" in name:
        raise _refuse(archive, name, "has an empty or invalid name")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise _refuse(archive, name, "has an absolute path")
    if ".." in re.split(r"[/\\]", name):
        raise _refuse(archive, name, "has a '..' path component")


def _check_tar_member(archive: Path, m: tarfile.TarInfo, root: str) -> None:
    """Our own check, on every Python: the data filter may be missing (3.9-3.11)."""
    _check_name(archive, m.name)
    parent = os.path.realpath(os.path.join(root, os.path.dirname(m.name)))
    if not _within(parent, root):
        raise _refuse(archive, m.name, "would be written through a link outside the tree")
    if m.isreg() or m.isdir():
        return
    if m.issym() or m.islnk():
        kind = "symlink" if m.issym() else "hardlink"
        link = m.linkname
        if not link:
            raise _refuse(archive, m.name, f"is a {kind} with an empty target")
        if link.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", link):
            raise _refuse(archive, m.name, f"is a {kind} to an absolute path ({link})")
        base = os.path.dirname(m.name) if m.issym() else ""
        target = os.path.realpath(os.path.join(root, base, link))
        if not _within(target, root):
            raise _refuse(archive, m.name, f"is a {kind} pointing outside the tree ({link})")
        return
    kinds = {tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device",
             tarfile.FIFOTYPE: "fifo"}
    raise _refuse(archive, m.name, f"is a {kinds.get(m.type, 'special file')}")


def _extract_tar(archive: Path, tmp: Path) -> None:
    root = os.path.realpath(tmp)
    uid, gid = os.getuid(), os.getgid()
    try:
        tar = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise SourceError(f"cannot read {archive.name}: {_short(e)}. The file is damaged; "
                          f"delete it from the cache and fetch again.") from None
    with tar:
        tar.errorlevel = 1

        def checked() -> Iterator[tarfile.TarInfo]:
            # Lazily, so each check sees the links extracted before it (realpath).
            for m in tar:
                _check_tar_member(archive, m, root)
                if not _USE_DATA_FILTER:
                    # What the data filter would do: no owners, no special mode bits.
                    m.uid, m.gid, m.uname, m.gname = uid, gid, "", ""
                    if m.isreg():
                        m.mode = (m.mode & 0o755) | 0o600
                    elif m.isdir():
                        m.mode = (m.mode & 0o755) | 0o700
                yield m

        try:
            if _USE_DATA_FILTER:
                tar.extractall(tmp, members=checked(), filter="data")
            else:
                tar.extractall(tmp, members=checked())
        except SourceError:
            raise
        except Exception as e:  # tarfile.FilterError and friends, damaged archives
            member = getattr(e, "tarinfo", None)
            if member is not None:
                raise _refuse(archive, member.name, f"was refused ({_short(e)})") from None
            raise SourceError(f"cannot extract {archive.name}: {_short(e)}. The file may be "
                              f"damaged; delete it from the cache and fetch again.") from None


def _extract_zip(archive: Path, tmp: Path) -> None:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as e:
        raise SourceError(f"cannot read {archive.name}: {_short(e)}. The file is damaged; "
                          f"delete it from the cache and fetch again.") from None
    with zf:
        infos = zf.infolist()
        for info in infos:  # all checks first: zip has a central directory
            _check_name(archive, info.filename)
            mode = info.external_attr >> 16
            if stat.S_IFMT(mode) in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK):
                raise _refuse(archive, info.filename, "is a device, fifo or socket")
        root = os.path.realpath(tmp)
        for info in infos:
            out = zf.extract(info, tmp)
            if not _within(os.path.realpath(out), root):  # belt and braces
                raise _refuse(archive, info.filename, "escapes the tree")
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                os.chmod(out, (mode & 0o755) | 0o600)
