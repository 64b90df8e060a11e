"""Where geonox keeps things between runs.

Layout below the cache root (``GEONOX_CACHE_DIR`` or the platformdirs user cache):

- ``sources/<sha256>/<upstream file name>``: verified downloads, keyed by content.
- ``prefixes/<build key>/``: installed static dependency prefixes.
- ``logs/``: build logs of dependency builds.
- ``tmp/``: scratch space on the same filesystem, for atomic renames.
"""
from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

import platformdirs


def cache_root() -> Path:
    env = os.environ.get("GEONOX_CACHE_DIR")
    root = Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("geonox"))
    return root.resolve()


def sources_dir() -> Path:
    return cache_root() / "sources"


def prefixes_dir() -> Path:
    return cache_root() / "prefixes"


def tmp_dir() -> Path:
    d = cache_root() / "tmp"
    d.mkdir(parents=True, exist_ok=True)
    return d


# ------------------------------------------------------------ listing and pruning
#
# ``python -m geonox cache list|prune|clear`` is built on these.  What the current
# configuration still references is the caller's business: it passes those paths to
# :func:`prune` as ``keep``.

_SHA256_HEX = frozenset("0123456789abcdef")
# Top-level directories whose children are listed one entry each, and what they hold.
_OTHER_DIRS = {
    "logs": "dependency build logs",
    "tmp": "scratch",
    "work": "a project's unrepaired wheels, stamps, reports and test venvs",
    "tools": "build-frontend venv",
}


@dataclass(frozen=True)
class CacheEntry:
    """One removable thing in the cache."""

    kind: str  # "source" | "prefix" | "other"
    path: Path  # source: the file (what sources.fetch returns); prefix: its directory
    size: int  # bytes on disk (apparent size, symlinks not followed)
    description: str


def _is_sha256(name: str) -> bool:
    return len(name) == 64 and set(name) <= _SHA256_HEX


def _is_lock(path: Path) -> bool:
    return path.name.endswith(".lock") or path.name == ".locks"


def _size(path: Path) -> int:
    """Bytes below ``path`` (files counted once per inode, links not followed)."""
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
            if (s.st_dev, s.st_ino) not in seen:
                seen.add((s.st_dev, s.st_ino))
                total += s.st_size
    return total


def _children(path: Path) -> list[Path]:
    try:
        return sorted(path.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def entries() -> list[CacheEntry]:
    """Everything in the cache, one entry per removable unit.

    - ``source``: each verified download ``sources/<sha256>/<file>``;
    - ``prefix``: each directory ``prefixes/<build key>/``;
    - ``other``: interrupted downloads (``.part`` files), build logs, scratch space and
      anything geonox does not recognise.

    Lock files are never listed (removing a held lock would break the locking).
    """
    root = cache_root()
    out: list[CacheEntry] = []
    src_root, pre_root = sources_dir(), prefixes_dir()
    for top in _children(root):
        if _is_lock(top):
            continue
        if top == src_root and top.is_dir():
            for d in _children(top):
                if _is_lock(d):
                    continue
                if not (_is_sha256(d.name) and d.is_dir() and not d.is_symlink()):
                    out.append(CacheEntry("other", d, _size(d), "unrecognised file in sources/"))
                    continue
                for f in _children(d):
                    if _is_lock(f):
                        continue
                    if f.name.endswith(".part"):
                        out.append(CacheEntry("other", f, _size(f),
                                              f"interrupted download of {d.name[:12]}…"))
                    elif f.is_file() and not f.is_symlink() and not f.name.startswith("."):
                        out.append(CacheEntry("source", f, _size(f),
                                              f"{f.name} (sha256 {d.name[:12]}…)"))
                    else:
                        out.append(CacheEntry("other", f, _size(f),
                                              "unrecognised file in sources/"))
        elif top == pre_root and top.is_dir():
            for p in _children(top):
                if _is_lock(p):
                    continue
                if p.is_dir() and not p.is_symlink() and not p.name.startswith("."):
                    out.append(CacheEntry("prefix", p, _size(p),
                                          f"dependency prefix {p.name}"))
                else:
                    out.append(CacheEntry("other", p, _size(p),
                                          "unfinished or unrecognised prefix"))
        elif top.name in _OTHER_DIRS and top.is_dir() and not top.is_symlink():
            what = _OTHER_DIRS[top.name]
            out.extend(CacheEntry("other", p, _size(p), what)
                       for p in _children(top) if not _is_lock(p))
        else:
            out.append(CacheEntry("other", top, _size(top), "unrecognised"))
    return out


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def _related(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def prune(keep: set[Path]) -> list[Path]:
    """Remove every entry of :func:`entries` not related to a path in ``keep``.

    An entry is kept when its path equals a kept path or one contains the other (so
    keeping ``sources/<sha256>/`` or the file inside it both keep that download).
    Returns the removed paths.  Note that ``tmp/`` scratch of a build running right now
    is an entry too: do not prune while another geonox process is building.
    """
    kept = {Path(k).resolve() for k in keep}
    removed: list[Path] = []
    for entry in entries():
        path = entry.path.resolve() if not entry.path.is_symlink() else entry.path
        if any(_related(path, k) for k in kept):
            continue
        _remove(entry.path)
        removed.append(entry.path)
        if entry.kind == "source" or entry.path.name.endswith(".part"):
            try:  # drop the now-empty sources/<sha256>/ directory
                entry.path.parent.rmdir()
            except OSError:
                pass
    return removed


def clear() -> int:
    """Remove the whole cache (lock files aside); returns the bytes freed."""
    freed = 0
    for entry in entries():
        freed += entry.size
        _remove(entry.path)
    for d in (sources_dir(), prefixes_dir()):
        for sub in _children(d):
            if sub.is_dir() and not sub.is_symlink() and not _is_lock(sub):
                shutil.rmtree(sub, ignore_errors=True)
    return freed
