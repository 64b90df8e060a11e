"""Where geonox keeps things between runs, and the one way anything gets in there.

:class:`CacheLayout` names every directory below the cache root (``GEONOX_CACHE_DIR`` or
the platformdirs user cache):

==============================  ===========================================================
``sources/<sha256>/<file>``     verified downloads, keyed by content
``deps/<name>-<ver>-<arch>-<key>/``  one dependency (or build tool) built into a prefix of its
                                own, keyed by what it was built from and against
``prefixes/<target>-<key>/``    a target's prefix (x86_64, x86_64-musl), from its artifacts
                                (hard links), keyed by their keys
``logs/<artifact>/``            the build logs of that artifact
``tools/<id>/``                 tool venvs (pypa/build, auditwheel) per interpreter/image
``toolchains/<id>/``            zig wrapper executables and CMake toolchain files
``ccache/``                     ccache's directory (one entry; ``ccache -M`` bounds it)
``work/<project>-<digest>/``    one project's unrepaired wheels, stamps, reports, test venvs
``tmp/<name>/``                 scratch of a running build
==============================  ===========================================================

:class:`Artifact` is every cached thing: key -> lock -> build into a temporary place ->
atomic completion.  A directory artifact is complete when its marker file exists (written
last, or inside the temporary directory before it is renamed into place); a file
artifact when the file exists at its final path (it only ever gets there by an atomic
rename) and, optionally, passes a check.  Using an artifact records its last use (the
marker's mtime), which is what ``cache prune`` goes by.  A build holds the artifact's lock
exclusively; readers (a wheel build using a prefix) hold it shared; ``prune`` removes
only what it can lock, so never an entry in use.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import filelock

from geonox import environment

CHUNK = 1 << 20
SHA256_HEX = frozenset("0123456789abcdef")


# ------------------------------------------------------------------ small file helpers


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


#: the marker field of an artifact that records its files (``rel path -> sha256``, a
#: symlink as ``-> target``) when it was built or pulled
FILES = "contents"


def tree_digests(root: Path, skip: frozenset[str] = frozenset()) -> dict[str, str]:
    """Every file below ``root`` (``skip``: names at its top) as ``{relative path: sha256}``;
    a symlink as ``-> <target>`` (not followed); directories are not recorded."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        top = dirpath == str(root)
        rel = Path(dirpath).relative_to(root)
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            if top and name in skip:
                continue
            if path.is_symlink():
                out[(rel / name).as_posix()] = "-> " + os.readlink(path)
            elif name in filenames:
                out[(rel / name).as_posix()] = file_sha256(path)
    return dict(sorted(out.items()))


def tree_changes(
    root: Path, recorded: dict[str, str], skip: frozenset[str] = frozenset()
) -> list[str]:
    """What differs below ``root`` from ``recorded`` (:func:`tree_digests`), one phrase per
    file: ``lib/libgeos.a changed``, ``… missing``, ``… added``; empty when nothing does."""
    try:
        now = tree_digests(root, skip)
    except OSError as exc:  # unreadable: as good as changed
        return [f"{exc.filename or root} unreadable ({exc.strerror})"]
    out = [f"{f} missing" for f in recorded if f not in now]
    out += [f"{f} changed" for f, digest in now.items() if f in recorded and recorded[f] != digest]
    out += [f"{f} added" for f in now if f not in recorded]
    return sorted(out)


_verified: set[Path] = set()  # artifacts whose files matched their record in this process
_verified_lock = threading.Lock()


def fsync_dir(path: Path) -> None:
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


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old content or all of the new (the
    one way geonox writes a file others may be reading)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(temp_name(path.name))
    try:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def text_bytes(path: Path) -> bytes | None:
    """The bytes of ``path`` when it is a text file that may name a path to rewrite (a
    ``.pc`` or CMake file, a script): a regular file of at most 4 MiB that is not ELF nor
    an ``ar`` archive and has no NUL in its first 8 KiB.  None for anything else."""
    if path.is_symlink() or not path.is_file() or path.stat().st_size > 4 << 20:
        return None
    data = path.read_bytes()
    if data[:4] == b"\x7fELF" or data[:8] == b"!<arch>\n" or b"\0" in data[:8192]:
        return None
    return data


def rewrite_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` over ``path``, keeping its mode."""
    mode = path.stat().st_mode
    path.write_bytes(data)
    os.chmod(path, mode)


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def human_size(n: float) -> str:
    """``3258980`` -> ``"3.3 MB"`` (SI units, as download rates are given)."""
    if n >= 1e9:
        return f"{n / 1e9:.1f} GB"
    if n >= 1e6:
        return f"{n / 1e6:.1f} MB"
    if n >= 1e3:
        return f"{n / 1e3:.0f} kB"
    return f"{int(n)} B"


def tree_size(path: Path, *, own_only: bool = False) -> int:
    """Bytes below ``path`` (files counted once per inode, links not followed); with
    ``own_only``, only files no other directory links to (what removing ``path`` frees: an
    assembled prefix's hard links into its artifacts are the artifacts' bytes)."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return 0
    if not stat.S_ISDIR(st.st_mode):
        return st.st_size
    total, seen = 0, set()
    for dirpath, dirnames, filenames in os.walk(path):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            try:
                s = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            if own_only and s.st_nlink > 1 and not stat.S_ISLNK(s.st_mode):
                continue
            if (s.st_dev, s.st_ino) not in seen:
                seen.add((s.st_dev, s.st_ino))
                total += s.st_size
    return total


def temp_name(name: str) -> str:
    """The name of an in-progress ``name`` beside it: ``.name.<pid>.<random>.part``."""
    return f".{name}.{os.getpid()}.{secrets.token_hex(4)}.part"


def part_owner(name: str) -> str | None:
    """The artifact name an in-progress ``.name.<pid>.<random>.part`` belongs to."""
    if not (name.startswith(".") and name.endswith(".part")):
        return None
    parts = name[1 : -len(".part")].rsplit(".", 2)
    return parts[0] if len(parts) == 3 and parts[1].isdigit() else None


# ------------------------------------------------------------------ locks


@contextlib.contextmanager
def shared_lock(lock_path: Path) -> Iterator[None]:
    """A shared flock on ``lock_path``: many readers at once, never beside the exclusive
    :class:`filelock.FileLock` a build or ``prune`` takes on the same file.  (filelock
    offers exclusive flocks only; its ReadWriteLock is an SQLite database, not a flock.)"""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing drops the lock


def try_exclusive(lock_path: Path) -> filelock.FileLock | None:
    """The exclusive lock if nobody holds the file (shared or exclusive), else None."""
    lock = filelock.FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        return None
    return lock


# ------------------------------------------------------------------ the artifact helper


@dataclass(frozen=True)
class Artifact:
    """One cached unit at ``path``, locked by ``lock_path``.

    ``marker`` names the completion file of a directory artifact; ``None`` makes it a file
    artifact.  ``check`` is an extra test of a complete artifact's content (sources re-hash
    themselves; stamps compare the input they record).  ``integrity``: the marker records
    the sha256 of every file when the artifact is completed (:data:`FILES`), and an artifact
    whose files no longer match (bit rot, a hand edit, a half-restored CI cache) is not
    complete: it is never used, it is made again.  Its files are hashed once per process."""

    path: Path
    lock_path: Path
    marker: str | None = None
    check: Callable[[Path], bool] | None = None
    integrity: bool = False

    @property
    def marker_path(self) -> Path:
        return self.path / self.marker if self.marker else self.path

    def complete(self) -> bool:
        try:
            if not self.marker_path.is_file():
                return False
            if self.check and not self.check(self.path):
                return False
        except OSError:
            return False
        return not self.changes()

    def changes(self) -> list[str]:
        """How a complete artifact's files differ from what its marker recorded (empty: they
        do not, or it records none: made before artifacts recorded their files)."""
        if not self.integrity or self.path in _verified:
            return []
        try:
            recorded = self.read_marker().get(FILES)
        except (OSError, ValueError):
            return [f"{self.marker} unreadable"]
        if not isinstance(recorded, dict):
            return []
        assert self.marker
        changed = tree_changes(self.path, recorded, frozenset({self.marker}))
        if not changed:
            with _verified_lock:
                _verified.add(self.path)
        return changed

    def touch(self) -> None:
        """Record a use now (``cache prune`` removes what was not used for a while)."""
        with contextlib.suppress(OSError):
            os.utime(self.marker_path)

    def read_marker(self) -> Any:
        return json.loads(self.marker_path.read_text())

    @contextlib.contextmanager
    def reading(self) -> Iterator[Path]:
        """Use the artifact: a shared lock for as long as the ``with`` lasts."""
        with shared_lock(self.lock_path):
            self.touch()
            yield self.path

    def exclusive(self, on_wait: Callable[[str], None] | None = None) -> filelock.FileLock:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(self.lock_path))
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            if on_wait:
                on_wait(str(self.lock_path))
            lock.acquire()
        return lock

    def ensure(
        self,
        build: Callable[[Path], Any],
        *,
        in_place: bool = False,
        on_wait: Callable[[str], None] | None = None,
    ) -> bool:
        """Make the artifact complete; True if it was built now, False if it already was.

        ``build(place)`` fills ``place``: for a directory artifact a directory (it may
        create it), for a file artifact a file.  Its return value, when not None, is written
        as the marker's JSON.  ``in_place`` builds at the final path (for trees that record
        their own absolute paths: CMake prefixes, venvs); the marker is then written last.
        Otherwise ``place`` is a temporary sibling renamed into place when complete.  If
        ``build`` raises (an Interrupted included) nothing is left behind.
        """
        if self.complete():
            self.touch()
            return False
        lock = self.exclusive(on_wait)
        try:
            if self.complete():  # somebody built it while we waited
                self.touch()
                return False
            self._remove_stale()
            place = self.path if in_place else self.path.with_name(temp_name(self.path.name))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with _verified_lock:
                _verified.discard(self.path)
            try:
                meta = build(place)
                if self.marker:
                    place.mkdir(parents=True, exist_ok=True)
                    if self.integrity:
                        files = tree_digests(place, frozenset({self.marker}))
                        meta = dict(meta or {}, **{FILES: files})
                    write_atomic(
                        place / self.marker,
                        json.dumps(meta if meta is not None else {}, indent=2) + "\n",
                    )
                if not in_place:
                    os.replace(place, self.path)
                    fsync_dir(self.path.parent)
            except BaseException:
                remove(place)
                with contextlib.suppress(OSError):
                    self.path.parent.rmdir()  # an entry directory of its own, now empty
                raise
            return True
        finally:
            lock.release()

    def _remove_stale(self) -> None:
        """Under the lock: an incomplete artifact and temporaries of killed builds."""
        if self.path.exists() or self.path.is_symlink():
            remove(self.path)
        try:
            siblings = list(self.path.parent.iterdir())
        except FileNotFoundError:
            return
        for p in siblings:
            if part_owner(p.name) == self.path.name:
                remove(p)


def source_artifact(
    sources_dir: Path, sha256: str, filename: str, check: Callable[[Path], bool] | None = None
) -> Artifact:
    """``<sources_dir>/<sha256>/<filename>``, locked by ``<sources_dir>/.locks/<sha256>.lock``."""
    return Artifact(
        sources_dir / sha256 / filename, sources_dir / ".locks" / f"{sha256}.lock", check=check
    )


# ------------------------------------------------------------------ the layout


@dataclass(frozen=True)
class CacheEntry:
    """One removable thing in the cache."""

    kind: (
        str  # source, artifact, prefix, logs, tool, toolchain, sdist, work, scratch, partial, other
    )
    path: Path
    size: int  # bytes on disk it alone holds (apparent size, symlinks not followed)
    description: str
    last_used: float  # epoch seconds
    lock_path: Path | None  # held while the entry is in use


@dataclass(frozen=True)
class Verified:
    """One entry as ``cache verify`` found it: what changed (empty: nothing), and whether
    it recorded its files at all (artifacts made before they did cannot be checked)."""

    entry: CacheEntry
    changes: list[str]
    recorded: bool


@dataclass(frozen=True)
class _Kind:
    dirname: str
    kind: str
    what: str
    marker: str | None


PREFIX_MARKER = "geonox-prefix.json"
DEP_MARKER = "geonox-dep.json"
TOOL_MARKER = ".complete"
TOOLCHAIN_MARKER = "geonox-toolchain.json"
WORK_MARKER = "geonox-work.json"
SDIST_MARKER = "geonox-sdist.json"

_KINDS = (
    _Kind("sources", "source", "verified download", None),
    _Kind("deps", "artifact", "dependency artifact", DEP_MARKER),
    _Kind("prefixes", "prefix", "assembled prefix", PREFIX_MARKER),
    _Kind("logs", "logs", "dependency build logs", None),
    _Kind("tools", "tool", "tool venv", TOOL_MARKER),
    _Kind("toolchains", "toolchain", "zig toolchain wrappers", TOOLCHAIN_MARKER),
    _Kind("ccache", "ccache", "compiler cache (ccache)", None),
    _Kind("sdists", "sdist", "unpacked project sdist", SDIST_MARKER),
    _Kind("work", "work", "project work dir (wheels, stamps, reports, test venvs)", WORK_MARKER),
    _Kind("tmp", "scratch", "scratch of a build", None),
)


class CacheLayout:
    """Every directory geonox creates below ``root``, and the artifacts in them."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def from_env(cls) -> CacheLayout:
        return cls(environment.read().cache_dir)

    def _dir(self, kind: str) -> Path:
        return self.root / next(k.dirname for k in _KINDS if k.kind == kind)

    @property
    def sources(self) -> Path:
        return self._dir("source")

    @property
    def prefixes(self) -> Path:
        return self._dir("prefix")

    @property
    def deps(self) -> Path:
        return self._dir("artifact")

    @property
    def logs(self) -> Path:
        return self._dir("logs")

    @property
    def tools(self) -> Path:
        return self._dir("tool")

    @property
    def toolchains(self) -> Path:
        return self._dir("toolchain")

    @property
    def ccache(self) -> Path:
        return self._dir("ccache")

    @property
    def work(self) -> Path:
        return self._dir("work")

    @property
    def tmp(self) -> Path:
        return self._dir("scratch")

    @property
    def sdists(self) -> Path:
        return self._dir("sdist")

    # -- artifacts

    def source(
        self, sha256: str, filename: str, check: Callable[[Path], bool] | None = None
    ) -> Artifact:
        return source_artifact(self.sources, sha256, filename, check)

    def prefix(self, name: str) -> Artifact:
        return Artifact(
            self.prefixes / name, self.prefixes / f"{name}.lock", PREFIX_MARKER, integrity=True
        )

    def dep(self, name: str) -> Artifact:
        return Artifact(self.deps / name, self.deps / f"{name}.lock", DEP_MARKER, integrity=True)

    def dep_logs(self, name: str) -> Path:
        return self.logs / name

    def tool(self, name: str) -> Artifact:
        return Artifact(self.tools / name, self.tools / f"{name}.lock", TOOL_MARKER)

    def toolchain(self, name: str) -> Artifact:
        return Artifact(self.toolchains / name, self.toolchains / f"{name}.lock", TOOLCHAIN_MARKER)

    def sdist(self, name: str) -> Artifact:
        return Artifact(self.sdists / name, self.sdists / f"{name}.lock", SDIST_MARKER)

    def work_dir(self, name: str) -> Artifact:
        return Artifact(self.work / name, self.work / f"{name}.lock", WORK_MARKER)

    @contextlib.contextmanager
    def scratch(self, name: str) -> Iterator[Path]:
        """A scratch directory ``tmp/<name>`` of our own for the ``with``, removed after."""
        path = self.tmp / name
        self.tmp.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(path) + ".lock")
        with lock:
            remove(path)
            path.mkdir()
            try:
                yield path
            finally:
                remove(path)

    # -- listing

    def _lock_of(self, kind: str, path: Path) -> Path:
        if kind == "source":
            return self.sources / ".locks" / f"{path.parent.name}.lock"
        if kind == "logs":
            return self.deps / f"{path.name}.lock"
        return path.with_name(path.name + ".lock")

    def entries(self) -> list[CacheEntry]:
        """Everything in the cache, one entry per removable unit; lock files never."""
        out: list[CacheEntry] = []
        known = {k.dirname: k for k in _KINDS}
        for top in _children(self.root):
            if _is_lock(top):
                continue
            kind = known.get(top.name)
            if kind is None or not top.is_dir() or top.is_symlink():
                out.append(_entry("other", top, "unrecognised", None))
            elif kind.kind == "source":
                out.extend(self._source_entries(top))
            elif kind.kind == "ccache":  # one unit: ccache manages what is inside
                out.append(_entry("ccache", top, kind.what, top.with_name(top.name + ".lock")))
            else:
                for p in _children(top):
                    if not _is_lock(p):
                        out.append(self._entry_in(kind, p))
        return out

    def verify(self) -> list[Verified]:
        """Every source, dependency artifact and prefix re-hashed against what it recorded
        (a source: the sha256 it is filed under), as ``cache verify`` prints it.  Each is
        read under its shared lock, so never while it is being built."""
        out = []
        for e in self.entries():
            if e.kind == "source":
                check: Artifact | None = None
            elif e.kind == "artifact":
                check = self.dep(e.path.name)
            elif e.kind == "prefix":
                check = self.prefix(e.path.name)
            else:
                continue
            assert e.lock_path is not None
            with shared_lock(e.lock_path):
                if check is None:
                    sha = e.path.parent.name
                    ok = file_sha256(e.path) == sha if e.path.is_file() else False
                    out.append(Verified(e, [] if ok else [f"{e.path.name} changed"], True))
                    continue
                recorded = FILES in check.read_marker()
                out.append(Verified(e, check.changes() if recorded else [], recorded))
        return out

    def _entry_in(self, kind: _Kind, p: Path) -> CacheEntry:
        owner = part_owner(p.name)
        if owner is not None:
            return _entry(
                "partial", p, f"interrupted {kind.what} {owner}", p.with_name(owner + ".lock")
            )
        lock = self._lock_of(kind.kind, p)
        if not p.is_dir() or p.is_symlink():
            return _entry("other", p, f"unrecognised file in {kind.dirname}/", lock)
        if kind.marker and not (p / kind.marker).is_file():
            return _entry("partial", p, f"unfinished {kind.what} {p.name}", lock)
        used = p / kind.marker if kind.marker else p
        if kind.kind == "logs" and (self.deps / p.name / DEP_MARKER).is_file():
            used = self.deps / p.name / DEP_MARKER  # logs live as long as their artifact
        return _entry(kind.kind, p, f"{kind.what} {_describe(kind, p)}", lock, used)

    def _source_entries(self, top: Path) -> list[CacheEntry]:
        out = []
        for d in _children(top):
            if _is_lock(d):
                continue
            if not (
                len(d.name) == 64
                and set(d.name) <= SHA256_HEX
                and d.is_dir()
                and not d.is_symlink()
            ):
                out.append(_entry("other", d, "unrecognised file in sources/", None))
                continue
            lock = self.sources / ".locks" / f"{d.name}.lock"
            for f in _children(d):
                if f.name.endswith(".part"):
                    out.append(
                        _entry("partial", f, f"interrupted download of {d.name[:12]}…", lock)
                    )
                elif f.is_file() and not f.is_symlink() and not f.name.startswith("."):
                    out.append(_entry("source", f, f"{f.name} (sha256 {d.name[:12]}…)", lock))
                else:
                    out.append(_entry("other", f, "unrecognised file in sources/", lock))
        return out

    def in_use(self, entry: CacheEntry) -> bool:
        if entry.lock_path is None:
            return False
        lock = try_exclusive(entry.lock_path)
        if lock is None:
            return True
        lock.release()
        return False

    def prune(
        self,
        *,
        older_than: float | None = None,
        max_size: int | None = None,
        now: float | None = None,
    ) -> PruneResult:
        """Remove entries last used more than ``older_than`` seconds ago, then the least
        recently used ones until the cache holds at most ``max_size`` bytes.  An entry whose
        lock is held (a build, a reader) is never removed."""
        now = time.time() if now is None else now
        result = PruneResult()
        entries = self.entries()
        # an artifact stays while a prefix assembled from it does (prefixes go first)
        users: dict[str, list[Path]] = {}
        for e in entries:
            if e.kind == "prefix":
                with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                    for d in json.loads((e.path / PREFIX_MARKER).read_text())["deps"]:
                        users.setdefault(d["artifact"], []).append(e.path)
        remaining = sorted(entries, key=lambda e: (e.last_used, e.kind == "artifact"))
        total = sum(e.size for e in remaining)

        def take(entry: CacheEntry) -> bool:
            if entry.kind == "artifact" and any(p.exists() for p in users.get(entry.path.name, ())):
                return False
            lock = try_exclusive(entry.lock_path) if entry.lock_path else None
            if entry.lock_path and lock is None:
                result.in_use.append(entry)
                return False
            try:
                remove(entry.path)
                if (
                    entry.kind in ("source", "partial", "other")
                    and entry.path.parent.parent == self.sources
                ):
                    with contextlib.suppress(OSError):
                        entry.path.parent.rmdir()  # the now-empty sources/<sha256>/
            finally:
                if lock is not None:
                    lock.release()
            result.removed.append(entry)
            return True

        kept = []
        for entry in remaining:
            if older_than is not None and now - entry.last_used >= older_than and take(entry):
                total -= entry.size
            else:
                kept.append(entry)
        if older_than is not None:  # artifacts whose last prefix just went
            for entry in [e for e in kept if e.kind == "artifact"]:
                if now - entry.last_used >= older_than and take(entry):
                    total -= entry.size
                    kept.remove(entry)
        while max_size is not None and total > max_size:
            progress = False
            for entry in list(kept):
                if total <= max_size:
                    break
                if entry not in result.in_use and take(entry):
                    total -= entry.size
                    kept.remove(entry)
                    progress = True
            if not progress:
                break
        return result

    def clear(self) -> PruneResult:
        """Remove every entry not in use."""
        return self.prune(older_than=0.0)


class WorkDir:
    """One project's work dir, ``work/<name>-<digest>/``: every place a step writes below it,
    named once.  ``build`` is a wheel build's id (``abi3`` once per arch, else ``cp312``).

    ==================================  =====================================================
    ``src/<arch>-<build>/``             the fresh copy of the project a build starts from
    ``dist/<arch>/<build>/``            the unrepaired wheel
    ``constraints/<arch>-<build>.txt``  ``build-constraints`` for build isolation
    ``repair-out/<arch>/<build>/``      auditwheel's output, before it moves to the wheelhouse
    ``repaired/<arch>/<build>.json``    which unrepaired wheel the wheelhouse wheel came from
    ``reports/<wheel>.verify.json``     verify's report on a repaired wheel
    ``venvs/test-<arch>-<cpXY>/``       the clean venv a test installs the wheel into
    ``test-dirs/<arch>-<cpXY>/``        where the test command runs, with the test-sources
    ``logs/<arch>/``                    the steps' logs
    ==================================  =====================================================
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def tree(self, arch: str, build: str) -> Path:
        return self.root / "src" / f"{arch}-{build}"

    def dist(self, arch: str, build: str) -> Path:
        return self.root / "dist" / arch / build

    def constraints(self, arch: str, build: str) -> Path:
        return self.root / "constraints" / f"{arch}-{build}.txt"

    def repair_out(self, arch: str, build: str) -> Path:
        return self.root / "repair-out" / arch / build

    def repaired_stamp(self, arch: str, build: str) -> Path:
        return self.root / "repaired" / arch / f"{build}.json"

    def report(self, wheel_name: str) -> Path:
        return self.root / "reports" / f"{wheel_name}.verify.json"

    def test_venv(self, arch: str, py_tag: str) -> Path:
        return self.root / "venvs" / f"test-{arch}-{py_tag}"

    def test_dir(self, arch: str, py_tag: str) -> Path:
        return self.root / "test-dirs" / f"{arch}-{py_tag}"

    def logs(self, arch: str) -> Path:
        return self.root / "logs" / arch

    def log(self, arch: str, name: str) -> Path:
        """``logs/<arch>/<name>.log``, emptied: each run of a step writes its log anew."""
        path = self.logs(arch) / f"{name}.log"
        path.unlink(missing_ok=True)
        return path


@dataclass
class PruneResult:
    removed: list[CacheEntry] = field(default_factory=list)
    in_use: list[CacheEntry] = field(default_factory=list)

    @property
    def freed(self) -> int:
        return sum(e.size for e in self.removed)


def _describe(kind: _Kind, p: Path) -> str:
    """What a complete entry is, from its marker where that says more than its name."""
    if kind.kind == "prefix":
        try:
            meta = json.loads((p / PREFIX_MARKER).read_text())
            deps = ", ".join(
                f"{d['name']} {d['version']} {d.get('link', 'static')}"
                for d in meta.get("deps", [])
            )
            return f"{p.name} ({deps})"
        except (OSError, ValueError, KeyError, TypeError):
            return p.name
    if kind.kind == "artifact":
        try:
            meta = json.loads((p / DEP_MARKER).read_text())
            used_by = "build tool" if "machine" in meta else meta["link"]
            built = f"built in {meta['seconds']} s"
            return f"{p.name} ({meta['name']} {meta['version']}, {used_by}, {built})"
        except (OSError, ValueError, KeyError, TypeError):
            return p.name
    if kind.kind == "work":
        try:
            return f"{p.name} ({json.loads((p / WORK_MARKER).read_text())['project']})"
        except (OSError, ValueError, KeyError, TypeError):
            return p.name
    return p.name


def _entry(
    kind: str, path: Path, description: str, lock: Path | None, used: Path | None = None
) -> CacheEntry:
    try:
        last = (used or path).lstat().st_mtime
    except OSError:
        last = 0.0
    return CacheEntry(
        kind, path, tree_size(path, own_only=kind == "prefix"), description, last, lock
    )


def _is_lock(path: Path) -> bool:
    return path.name.endswith(".lock") or path.name == ".locks"


def _children(path: Path) -> list[Path]:
    try:
        return sorted(path.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
