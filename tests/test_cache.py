"""The cache: one layout, one artifact helper, prune by last use (never what is in use).

The first tests use the helper directly; the last runs two real projects (the SQLite test
extension, host backend) on one cache and prunes it while one of them is compiling."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import filelock
import pytest
from conftest import REPO, nox, run, skip_or_fail
from conftest_http import wait_for

import geonox.cache
from geonox.cache import CacheLayout
from geonox.errors import Interrupted
from geonox.targets import host_arch

DAY = 86400.0


def age(path: Path, days: float) -> None:
    then = time.time() - days * DAY
    os.utime(path, (then, then))


def test_artifact_builds_once_in_a_temp_place_and_commits_atomically(tmp_path):
    layout = CacheLayout(tmp_path / "c")
    art = layout.toolchain("demo")
    seen: list[Path] = []

    def build(place: Path) -> dict:
        seen.append(place)
        assert not art.path.exists()  # nothing at the final path while building
        place.mkdir()
        (place / "tool").write_text("x")
        return {"made": True}

    assert art.ensure(build) is True
    assert seen[0].parent == art.path.parent and seen[0].name.endswith(".part")
    assert art.complete() and art.read_marker() == {"made": True}
    assert art.ensure(build) is False and len(seen) == 1  # cached
    assert [p.name for p in art.path.parent.iterdir() if p.name.endswith(".part")] == []


def test_interrupted_build_leaves_nothing_and_is_rebuilt(tmp_path):
    layout = CacheLayout(tmp_path / "c")
    art = layout.prefix("x86_64-0123456789abcdef")

    def interrupted(place: Path) -> None:
        (place / "lib").mkdir(parents=True)
        (place / "lib" / "half.a").write_text("half")
        raise Interrupted(15)

    with pytest.raises(Interrupted):
        art.ensure(interrupted, in_place=True)
    assert not art.path.exists() and not art.complete()

    def good(place: Path) -> dict:
        (place / "lib").mkdir(parents=True)
        (place / "lib" / "full.a").write_text("full")
        return {"deps": []}

    assert art.ensure(good, in_place=True) is True
    assert (art.path / "lib" / "full.a").is_file() and not (art.path / "lib" / "half.a").exists()


def _fill(place: Path) -> dict:
    (place / "lib").mkdir(parents=True)
    (place / "lib" / "libdemo.a").write_bytes(b"!<arch>\n" + bytes(range(256)) * 40)
    (place / "include").mkdir()
    (place / "include" / "demo.h").write_text("int demo(void);\n")
    (place / "lib" / "libdemo.so").symlink_to("libdemo.so.1")
    (place / "lib" / "libdemo.so.1").write_bytes(b"\x7fELF" + b"\0" * 100)
    return {"made": "here"}


def test_a_dependency_artifact_records_its_files_and_is_not_used_once_one_changed(tmp_path):
    """Bit rot, a hand edit, a half-restored CI cache: a complete artifact whose files are
    not what it recorded when it was made is not complete (never used), ``cache verify``
    names each file, and the next ``ensure`` makes it again.  The edit keeps the file's
    size and mtime, so only the recorded sha256 can tell."""
    layout = CacheLayout(tmp_path / "c")
    name = "demo-1.0-x86_64-0123456789abcdef"
    art = layout.dep(name)
    assert art.ensure(_fill, in_place=True)
    marker = art.read_marker()
    assert marker["made"] == "here"
    assert set(marker["contents"]) == {
        "lib/libdemo.a",
        "include/demo.h",
        "lib/libdemo.so",
        "lib/libdemo.so.1",
    }
    assert marker["contents"]["lib/libdemo.so"] == "-> libdemo.so.1"
    assert not layout.dep(name).changes() and layout.dep(name).complete()

    def cli() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "geonox", "cache", "verify"],
            env=dict(os.environ, GEONOX_CACHE_DIR=str(layout.root), PYTHONPATH=str(REPO)),
            capture_output=True,
            text=True,
            timeout=60,
        )

    clean = cli()
    assert clean.returncode == 0 and "none changed" in clean.stdout, clean.stdout + clean.stderr

    header = art.path / "include" / "demo.h"
    st = header.stat()
    header.write_text("int demx(void);\n")  # one byte, same size
    os.utime(header, ns=(st.st_atime_ns, st.st_mtime_ns))
    with open(art.path / "lib" / "libdemo.a", "r+b") as fh:  # truncated
        fh.truncate(100)
    (art.path / "lib" / "libdemo.so.1").unlink()  # deleted
    (art.path / "lib" / "libdemo.so").unlink()
    (art.path / "lib" / "libdemo.so").symlink_to("/usr/lib/libevil.so")  # retargeted
    (art.path / "lib" / "libextra.so").write_bytes(b"slipped in")  # added

    geonox.cache._verified.clear()  # as in the next process: its files not hashed yet
    fresh = layout.dep(name)
    assert fresh.changes() == [
        "include/demo.h changed",
        "lib/libdemo.a changed",
        "lib/libdemo.so changed",
        "lib/libdemo.so.1 missing",
        "lib/libextra.so added",
    ]
    assert not fresh.complete()
    found = cli()
    assert found.returncode == 1, found.stdout + found.stderr
    for line in ("include/demo.h changed", "lib/libdemo.a changed", "lib/libdemo.so.1 missing"):
        assert f"  {line}\n" in found.stdout, found.stdout
    assert f"artifact {art.path}:" in found.stdout and "1 changed" in found.stdout

    # the next build replaces it
    assert fresh.ensure(_fill, in_place=True)
    assert not (art.path / "lib" / "libextra.so").exists()
    assert header.read_text() == "int demo(void);\n"
    assert cli().returncode == 0


def test_an_artifact_made_before_files_were_recorded_is_used_and_counted(tmp_path):
    layout = CacheLayout(tmp_path / "c")
    art = layout.dep("old-1.0-x86_64-0123456789abcdef")
    art.ensure(_fill, in_place=True)
    marker = art.read_marker()
    del marker["contents"]
    art.marker_path.write_text(json.dumps(marker))
    (art.path / "include" / "demo.h").write_text("changed, unknowable\n")
    assert layout.dep(art.path.name).complete()
    (found,) = layout.verify()
    assert found.recorded is False and found.changes == []


def test_entries_prune_by_age_and_size_never_what_is_locked(tmp_path):
    layout = CacheLayout(tmp_path / "c")
    entries = {}
    for name, days, size in (
        ("old", 40, 100),
        ("fresh", 1, 300),
        ("locked", 40, 50),
        ("big-old", 10, 1000),
    ):
        art = layout.prefix(f"x86_64-{name}")
        art.ensure(
            lambda place, size=size: (
                (place / "lib").mkdir(parents=True),
                (place / "lib" / "l.a").write_bytes(b"z" * size),
                {"deps": [{"name": "sqlite", "version": "3.52.0"}]},
            )[2],
            in_place=True,
        )
        age(art.marker_path, days)
        entries[name] = art
    listed = {e.path: e for e in layout.entries()}
    assert {listed[a.path].kind for a in entries.values()} == {"prefix"}
    assert "(sqlite 3.52.0 static)" in listed[entries["old"].path].description
    holder = filelock.FileLock(str(entries["locked"].lock_path))
    with holder:
        assert layout.in_use(listed[entries["locked"].path])
        result = layout.prune(older_than=30 * DAY)
    assert {e.path for e in result.removed} == {entries["old"].path}
    assert {e.path for e in result.in_use} == {entries["locked"].path}
    assert entries["locked"].complete() and not entries["old"].path.exists()
    # by size: least recently used first until the rest fits
    result = layout.prune(max_size=500)  # fresh (300 B and its marker) fits
    assert {e.path for e in result.removed} == {entries["locked"].path, entries["big-old"].path}
    assert entries["fresh"].complete()
    assert layout.clear().freed > 300 and layout.entries() == []


def test_prune_keeps_an_artifact_while_a_kept_prefix_uses_it(tmp_path):
    layout = CacheLayout(tmp_path / "c")

    def artifact(name: str, days: float):
        art = layout.dep(name)
        art.ensure(
            lambda place: (
                (place / "lib").mkdir(parents=True),
                (place / "lib" / "l.a").write_bytes(b"a" * 100),
                {"name": name, "version": "1", "link": "static", "seconds": 1},
            )[2],
            in_place=True,
        )
        age(art.marker_path, days)
        return art

    def prefix(name: str, days: float, uses):
        art = layout.prefix(name)
        art.ensure(
            lambda place: (
                place.mkdir(),
                {
                    "deps": [
                        {"name": u.path.name, "version": "1", "artifact": u.path.name} for u in uses
                    ]
                },
            )[1]
        )
        age(art.marker_path, days)
        return art

    shared, alone, only_old = (
        artifact("geos-a", 50),
        artifact("sqlite-b", 50),
        artifact("proj-c", 50),
    )
    fresh = prefix("x86_64-fresh", 1, [shared])
    old = prefix("x86_64-old", 40, [shared, only_old])
    listed = {e.path: e.kind for e in layout.entries()}
    assert listed[shared.path] == "artifact" and listed[fresh.path] == "prefix"
    removed = {e.path for e in layout.prune(older_than=30 * DAY).removed}
    # the old prefix and what only it used go; the fresh prefix keeps its (old) artifact
    assert removed == {old.path, alone.path, only_old.path}
    assert shared.complete() and fresh.complete()
    # by size too: the artifact of a kept prefix is never taken before that prefix
    removed = [e.path for e in layout.prune(max_size=0).removed]
    assert removed == [fresh.path, shared.path]


def test_a_prefix_counts_only_its_own_bytes_so_prune_by_size_takes_no_more_than_needed(tmp_path):
    """An assembled prefix is hard links into its artifacts plus a few files of its own:
    its size is what removing it frees, so the cache's total is its real use and a size
    limit does not take a prefix that is nearly free to keep."""
    import os

    layout = CacheLayout(tmp_path / "c")
    used = layout.dep("geos-a")
    used.ensure(
        lambda place: (
            (place / "lib").mkdir(parents=True),
            (place / "lib" / "libgeos.a").write_bytes(b"g" * 1000),
            {"name": "geos", "version": "1", "link": "static", "seconds": 1},
        )[2],
        in_place=True,
    )
    spare = layout.dep("sqlite-b")
    spare.ensure(
        lambda place: (
            (place / "lib").mkdir(parents=True),
            (place / "lib" / "libsqlite3.a").write_bytes(b"s" * 500),
            {"name": "sqlite", "version": "1", "link": "static", "seconds": 1},
        )[2],
        in_place=True,
    )
    age(spare.marker_path, 9)
    prefix = layout.prefix("x86_64-p")
    prefix.ensure(
        lambda place: (
            (place / "lib").mkdir(parents=True),
            os.link(used.path / "lib" / "libgeos.a", place / "lib" / "libgeos.a"),
            (place / "lib" / "own.txt").write_bytes(b"o" * 10),
            {"deps": [{"name": "geos", "version": "1", "artifact": used.path.name}]},
        )[3]
    )
    age(prefix.marker_path, 5)
    sizes = {e.path: e.size for e in layout.entries()}
    marker = (prefix.path / "geonox-prefix.json").stat().st_size
    assert sizes[prefix.path] == 10 + marker  # not the 1000 bytes its artifact holds
    assert sizes[used.path] > 1000
    # 1500-odd bytes in use; a limit just under that takes the unused artifact only
    limit = sum(sizes.values()) - 400
    removed = [e.path for e in layout.prune(max_size=limit).removed]
    assert removed == [spare.path]
    assert prefix.complete() and used.complete()


def test_cache_entries_prune_clear(tmp_path, monkeypatch):
    """Sources, partial downloads, prefixes, logs and the rest, listed one entry each."""
    monkeypatch.setenv("GEONOX_CACHE_DIR", str(tmp_path / "cache"))
    layout = CacheLayout.from_env()
    sha = "ab" * 32
    src = layout.sources / sha / "old-1.0.tar.gz"
    src.parent.mkdir(parents=True)
    src.write_bytes(b"x" * 10)
    part = layout.sources / sha / ".old-1.0.tar.gz.1.abcd.part"
    part.write_bytes(b"y" * 5)
    keep = layout.prefix("x86_64-keep")
    keep.ensure(lambda place: (place.mkdir(), {})[1], in_place=True)
    (layout.logs / "x86_64-keep").mkdir(parents=True)
    (layout.logs / "x86_64-keep" / "sqlite-compile.log").write_text("log")
    unfinished = layout.prefixes / "x86_64-dead"
    (unfinished / "lib").mkdir(parents=True)
    for p in (src, part, unfinished):
        age(p, 40)
    by_path = {e.path: e for e in layout.entries()}
    assert by_path[src].kind == "source" and by_path[src].size == 10
    assert by_path[part].kind == "partial" and by_path[unfinished].kind == "partial"
    assert (
        by_path[keep.path].kind == "prefix" and by_path[layout.logs / "x86_64-keep"].kind == "logs"
    )
    assert not any(p.name.endswith(".lock") or p.name == ".locks" for p in by_path)
    removed = layout.prune(older_than=30 * DAY).removed
    assert {e.path for e in removed} == {src, part, unfinished}
    assert not (layout.sources / sha).exists()  # the emptied sources/<sha256>/ goes too
    assert {e.path for e in layout.entries()} == {keep.path, layout.logs / "x86_64-keep"}
    assert layout.clear().freed == sum(
        e.size for e in by_path.values() if e.path in (keep.path, layout.logs / "x86_64-keep")
    )
    assert layout.entries() == []


# ------------------------------------------------------------------ two real projects

SQLEXT = REPO / "tests" / "data" / "sqlext"


def sqlext_project(root: Path, name: str, policy: str, link: str = "static") -> Path:
    import shutil

    project = root / name
    shutil.copytree(SQLEXT, project, ignore=shutil.ignore_patterns("build", "wheelhouse"))
    text = (project / "pyproject.toml").read_text()
    (project / "pyproject.toml").write_text(
        text[: text.index("[tool.geonox]")]
        + textwrap.dedent(f"""\
        [tool.geonox]
        backend = "host"
        deps = ["sqlite"]
        python = ["3.12"]
        policy = "{policy}"
        link = "{link}"
        test-command = "python -c 'import sqlext; sqlext.selftest()'"
        [tool.geonox.versions]
        sqlite = "3.52.0"
        """)
    )
    (project / "noxfile.py").write_text("import geonox\ngeonox.register()\n")
    return project


def test_two_projects_prune_keeps_what_a_running_build_holds(tmp_path, mirror):
    if host_arch() != "x86_64" or not __import__("shutil").which("python3.12"):
        skip_or_fail("needs an x86_64 host with python3.12 on PATH")
    cache = tmp_path / "cache"
    # ccache off: the second build must still be compiling while the cache is pruned
    env = dict(
        os.environ, GEONOX_CACHE_DIR=str(cache), GEONOX_MIRROR=str(mirror), GEONOX_CCACHE="0"
    )
    env.pop("GEONOX_OFFLINE", None)
    first = sqlext_project(tmp_path, "first", "manylinux_2_28")
    # another SQLite artifact: shared (the policy alone would not change a host build)
    second = sqlext_project(tmp_path, "second", "manylinux2014", link="shared")
    arch = host_arch()

    done = nox("-s", f"wheels-{arch}", cwd=first, env=env)
    assert done.returncode == 0, done.stdout[-4000:]
    assert "sqlext OK" in done.stdout
    # a zig toolchain too, so every directory geonox makes is in the cache
    made = run(
        [
            sys.executable,
            "-c",
            "from geonox.executors import HostExecutor; "
            "from geonox.zig import ZigToolchain; "
            "print(ZigToolchain('aarch64', 'manylinux_2_17', HostExecutor('aarch64', cross=True)).bin_dir)",
        ],
        cwd=tmp_path,
        env=env,
    )
    assert made.returncode == 0, made.stdout

    layout = CacheLayout(cache)
    before = {e.path: e for e in layout.entries()}
    kinds = {e.kind for e in before.values()}
    assert {"source", "artifact", "prefix", "logs", "tool", "toolchain", "work"} <= kinds, kinds
    assert {p.name for p in cache.iterdir()} <= {
        "sources",
        "deps",
        "prefixes",
        "logs",
        "tools",
        "ccache",
        "toolchains",
        "work",
        "tmp",
    }
    listing = run([sys.executable, "-m", "geonox", "cache", "list"], cwd=tmp_path, env=env)
    assert listing.returncode == 0 and "unrecognised" not in listing.stdout, listing.stdout
    first_prefix = next(p for p, e in before.items() if e.kind == "prefix")
    first_sqlite = next(p for p, e in before.items() if e.kind == "artifact")
    assert (
        "artifact " + first_sqlite.name in listing.stdout
        and "(sqlite 3.52.0, static" in listing.stdout
    )

    # the second project's dependency build runs while the cache is pruned
    building = subprocess.Popen(
        [sys.executable, "-m", "nox", "-s", f"deps-{arch}"],
        cwd=second,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:

        def compiling() -> bool:  # the artifact dir exists, unfinished (its marker comes last)
            return any(
                p.is_dir() and not (p / "geonox-dep.json").exists() for p in layout.deps.iterdir()
            )

        assert wait_for(compiling, 120), "the second build never started"
        during = {e.path: e for e in layout.entries()}
        partial = [
            e for e in during.values() if e.kind == "partial" and e.path.parent == layout.deps
        ]
        assert len(partial) == 1 and layout.in_use(partial[0])
        listing = run([sys.executable, "-m", "geonox", "cache", "list"], cwd=tmp_path, env=env)
        assert "unrecognised" not in listing.stdout and "in use" in listing.stdout, listing.stdout
        pruned = run(
            [sys.executable, "-m", "geonox", "cache", "prune", "--older-than", "0"],
            cwd=tmp_path,
            env=env,
        )
        assert pruned.returncode == 0, pruned.stdout
        assert f"removed prefix {first_prefix}" in pruned.stdout, pruned.stdout
        # its artifact went with it: no kept prefix uses it any more
        assert f"removed artifact {first_sqlite}" in pruned.stdout, pruned.stdout
        assert f"kept partial {partial[0].path}: in use" in pruned.stdout, pruned.stdout
        assert "freed" in pruned.stdout
    finally:
        out, _ = building.communicate(timeout=600)
    assert building.returncode == 0, out[-4000:]
    assert not first_prefix.exists()
    remaining = {e.path: e for e in layout.entries()}
    artifacts = [e for e in remaining.values() if e.kind == "artifact"]
    assert [e.path for e in artifacts] == [partial[0].path]  # the held one, now complete
    prefixes = [e for e in remaining.values() if e.kind == "prefix"]
    assert len(prefixes) == 1 and prefixes[0].path != first_prefix
    assert not any(e.kind in ("tool", "toolchain", "source") for e in remaining.values())
    assert (
        json.loads((prefixes[0].path / "geonox-prefix.json").read_text())["policy"]
        == "manylinux_2_17"
    )
    assert json.loads((partial[0].path / "geonox-dep.json").read_text())["link"] == "shared"


def _marked_sqlite(mirror: Path, dest: Path, marker: str) -> tuple[Path, str]:
    """The mirror's SQLite with one exported string added to sqlite3.c: another library
    from the same header, so a module built against either is the same bytes."""
    import hashlib
    import io
    import tarfile

    dest.mkdir(parents=True)
    archive = dest / "sqlite-autoconf-3520000.tar.gz"
    with (
        tarfile.open(mirror / "sqlite-autoconf-3520000.tar.gz") as src,
        tarfile.open(archive, "w:gz") as out,
    ):
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None
            if member.name.endswith("/sqlite3.c"):
                data += f'\nconst char geonox_test_marker[] = "{marker}";\n'.encode()
                member.size = len(data)
            out.addfile(member, io.BytesIO(data) if data is not None else None)
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest()


def test_a_rebuilt_shared_dependency_is_grafted_again_though_the_module_is_the_same(
    tmp_path, mirror
):
    """A shared dependency rebuilt from other sources (another GDAL driver set, a patched
    SQLite) leaves a module built against the same headers byte for byte the same; repair
    must still graft the new library, not keep the wheel it repaired from the old one."""
    if host_arch() != "x86_64" or not __import__("shutil").which("python3.12"):
        skip_or_fail("needs an x86_64 host with python3.12 on PATH")
    import zipfile

    cache = tmp_path / "cache"
    env = dict(os.environ, GEONOX_CACHE_DIR=str(cache), GEONOX_MIRROR=str(mirror))
    env.pop("GEONOX_OFFLINE", None)
    project = sqlext_project(tmp_path, "ext", "manylinux_2_28", link="shared")
    # no build ID: ld hashes the unstripped module, whose symbol table names the prefix
    # path of the library (its key); stripped, the module is the same bytes as pyogrio's is
    with (project / "CMakeLists.txt").open("a") as f:
        f.write('target_link_options(_sqlext PRIVATE "LINKER:--build-id=none")\n')
    pyproject = project / "pyproject.toml"
    plain = pyproject.read_text()
    raws, grafted = [], []
    for marker in ("geonox-marker-one", "geonox-marker-two"):
        archive, sha = _marked_sqlite(mirror, tmp_path / marker, marker)
        pyproject.write_text(
            plain
            + '[tool.geonox.sources.sqlite]\nversion = "3.52.0"\n'
            + f'url = "{archive.as_uri()}"\nsha256 = "{sha}"\n'
        )
        done = nox("-s", f"repair-{host_arch()}-3.12", cwd=project, env=env)
        assert done.returncode == 0, done.stdout[-4000:]
        assert "repaired from this build already" not in done.stdout, done.stdout[-3000:]
        (raw,) = cache.glob("work/sqlext-*/dist/*/cp312/*.whl")
        raws.append(raw.read_bytes())
        (wheel,) = (project / "wheelhouse").glob("*.whl")
        with zipfile.ZipFile(wheel) as zf:
            (lib,) = [n for n in zf.namelist() if "/libsqlite3" in n]
            grafted.append(zf.read(lib))
    assert raws[0] == raws[1]  # the module did not change: only the library did
    assert b"geonox-marker-one" in grafted[0] and b"geonox-marker-two" in grafted[1]


def test_six_deps_runs_on_one_cache_compile_once_with_prune_beside(tmp_path, mirror):
    """Six ``deps`` runs of one project started together on a fresh cache (ccache off, so
    the compile is real) while ``cache prune`` runs over and over beside
    them: SQLite is compiled once, the other five wait for it and reuse it, every run
    ends with the prefix, and prune (its default: what was not used for 30 days, here an
    aged source) never takes a scratch directory, a partial artifact or a lock a run
    holds."""
    from conftest import sqlite_project

    cache = tmp_path / "cache"
    env = dict(
        os.environ, GEONOX_CACHE_DIR=str(cache), GEONOX_MIRROR=str(mirror), GEONOX_CCACHE="0"
    )
    env.pop("GEONOX_OFFLINE", None)
    env.pop("GEONOX_CACHE_REMOTE", None)
    project = sqlite_project(tmp_path / "p")
    stale = CacheLayout(cache).sources / ("cd" * 32) / "old-1.0.tar.gz"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    age(stale, 40)
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "nox", "-s", f"deps-{host_arch()}"],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(6)
    ]
    pruned = 0
    while any(r.poll() is None for r in runs):
        done = subprocess.run(
            [sys.executable, "-m", "geonox", "cache", "prune"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        pruned += 1
    outs = [r.communicate()[0] for r in runs]
    assert [r.returncode for r in runs] == [0] * 6, [o[-2000:] for o in outs]
    built = [o for o in outs if "building sqlite 3.52.0 (static)" in o]
    assert len(built) == 1, [o[-1500:] for o in outs]
    assert pruned >= 2 and not stale.exists()
    for out in outs:
        if out is not built[0]:
            assert re.search(r"reused sqlite 3\.52\.0|cached \(key", out), out[-2000:]
    verified = subprocess.run(
        [sys.executable, "-m", "geonox", "cache", "verify"], env=env, capture_output=True, text=True
    )
    assert verified.returncode == 0, verified.stdout
