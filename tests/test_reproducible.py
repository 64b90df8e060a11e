"""Reproducible wheels: the same project built twice in caches at different paths, on the
same backend, gives byte-identical repaired wheels -- with the host's compilers and with
zig (the container backend: test_containers.py).  Each build is real: the SQLite tarball
fetched from the mirror and compiled (the second in a clean cache with ccache off, so no
object is carried over from the first), the extension, auditwheel's repair and geonox's
SBOM.  ``python -m geonox diff`` says so, the dependency artifacts are the same bytes too,
and it names what differs when the time stamped in (SOURCE_DATE_EPOCH) is changed."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import sys
import zipfile
from pathlib import Path

from conftest import (
    REPO,
    keyword_noxfile,
    make_project,
    nox,
    rewrite_members,
    run,
    skip_or_fail,
)

from geonox.cache import DEP_MARKER, text_bytes
from geonox.targets import host_arch

SQLEXT = REPO / "tests" / "data" / "sqlext"


def project_at(path: Path, backend: str, extra: str = "") -> Path:
    """sqlext at ``path`` for CPython 3.12 on ``backend`` (``extra``: more [tool.geonox] lines)."""
    return make_project(
        path.parent,
        SQLEXT,
        f"""\
        [tool.geonox]
        backend = "{backend}"
        {extra}
        deps = ["sqlite"]
        python = ["3.12"]
        test-command = "python -c 'import sqlext; sqlext.selftest()'"
        [tool.geonox.versions]
        sqlite = "3.52.0"
        """,
        name=path.name,
    )


def clean_env(cache: Path, mirror: Path, **extra: str) -> dict:
    """A fresh cache at ``cache``, ccache off (every object compiled in this build)."""
    env = dict(
        os.environ,
        GEONOX_CACHE_DIR=str(cache),
        GEONOX_MIRROR=str(mirror),
        GEONOX_CCACHE="0",
        **extra,
    )
    for var in ("GEONOX_OFFLINE", "CCACHE_DIR", "SOURCE_DATE_EPOCH"):
        if var not in extra:
            env.pop(var, None)
    return env


def build(project: Path, env: dict, *, compiled: bool = True) -> Path:
    done = nox("-s", f"geo-wheels-{host_arch()}", cwd=project, env=env, timeout=2400)
    assert done.returncode == 0, done.stdout[-4000:]
    assert "sqlext OK" in done.stdout
    if compiled:
        assert "sqlite 3.52.0 (static) built in" in done.stdout  # compiled here, not reused
    (wheel,) = sorted((project / "wheelhouse").glob("*.whl"))
    return wheel


def same_wheel(first: Path, second: Path, tmp_path: Path, *paths: Path) -> None:
    """``geonox diff`` finds them identical, their sha256 agree, and no member holds any of
    ``paths`` (the caches and projects that differ between the builds)."""
    assert first.name == second.name
    code, report = diff(first, second, tmp_path)
    assert code == 0 and report["identical"], report
    assert (
        hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
    )
    with zipfile.ZipFile(first) as zf:
        for name in zf.namelist():
            data = zf.read(name)
            for path in paths:
                assert str(path).encode() not in data, (name, path)


def same_artifacts(fresh: Path, session: Path, name: str) -> list[str]:
    """Every ``name`` artifact the clean cache ``fresh`` built has the same key in the
    ``session`` cache, and the same files, byte for byte once each cache's root is
    relocated in a text file (a .pc or CMake file naming its cache, as a pull relocates
    it); a binary (an archive, a shared library, proj.db) as it is, naming neither root,
    so a compiler that wrote a path in would fail it even when the object came from a
    ccache shared by both builds.  Returns the files compared."""
    compared = []
    built = sorted(fresh.glob(f"deps/{name}-[0-9]*"))
    built = [p for p in built if p.is_dir()]
    assert built, f"no {name} artifact in {fresh}"

    def files(artifact: Path) -> list[str]:
        return sorted(
            p.relative_to(artifact).as_posix()
            for p in artifact.rglob("*")
            if (p.is_file() or p.is_symlink()) and p.name != DEP_MARKER
        )

    for ours in built:
        theirs = session / "deps" / ours.name
        assert theirs.is_dir(), f"{ours.name}: not the same key in the session cache"
        assert files(ours) == files(theirs), ours.name
        for rel in files(ours):
            a, b = ours / rel, theirs / rel
            if a.is_symlink() or b.is_symlink():
                assert os.readlink(a) == os.readlink(b), rel
                continue
            one, two = text_bytes(a), text_bytes(b)
            if one is not None and two is not None:  # what a pull relocates
                one = one.replace(str(fresh).encode(), b"@ROOT@")
                two = two.replace(str(session).encode(), b"@ROOT@")
            else:  # a binary: as it is, and naming neither root
                one, two = a.read_bytes(), b.read_bytes()
                names_no_root(one, f"{ours.name}/{rel}", fresh)
                names_no_root(two, f"{ours.name}/{rel}", session)
            assert one == two, f"{ours.name}/{rel} differs between the caches"
            compared.append(f"{ours.name}/{rel}")
    return compared


def names_no_root(data: bytes, what: object, root: Path) -> None:
    """A binary (what a pull does not relocate) must not name a cache root: a compiler that
    wrote its path into an object would make the artifact depend on where it was built,
    and ccache would carry that object to another cache unchanged."""
    assert str(root).encode() not in data, f"{what} names {root}"


def deps_built_twice(
    where: Path, keywords: dict, first: dict, second: dict, names: tuple[str, ...]
) -> tuple[str, list[str]]:
    """The deps step of a noxfile registering ``keywords`` run with ``first`` (the
    session's cache) and then ``second`` (a fresh cache at ``second``'s
    GEONOX_CACHE_DIR), each from its own directory under ``where``; every ``names``
    artifact of the second the same as the first's (``same_artifacts``).  Returns the
    second run's output and the files compared, relative to their artifacts."""
    for sub, env in (("one", first), ("elsewhere/two", second)):
        done = nox(
            "-s", f"deps-{host_arch()}", cwd=keyword_noxfile(where / sub, **keywords), env=env
        )
        assert done.returncode == 0, done.stdout[-4000:]
    fresh, session = Path(second["GEONOX_CACHE_DIR"]), Path(first["GEONOX_CACHE_DIR"])
    files = [f.split("/", 1)[1] for name in names for f in same_artifacts(fresh, session, name)]
    return done.stdout, files


def has_all(files: list[str], *patterns: str) -> None:
    """Each pattern matches one of ``files`` whole."""
    for wanted in patterns:
        assert any(re.fullmatch(wanted, f) for f in files), (wanted, files)


def diff(a: Path, b: Path, cwd: Path) -> tuple[int, dict]:
    out = run(
        [sys.executable, "-m", "geonox", "diff", "--json", a, b], cwd=cwd, env=dict(os.environ)
    )
    assert out.returncode in (0, 1), out.stdout
    return out.returncode, json.loads(out.stdout)


def test_two_host_builds_at_two_paths_give_the_same_wheel(mirror, geonox_env, tmp_path):
    """The first build in the test session's cache (SQLite built there once, shared with
    other tests), the second in a clean cache at another path with ccache off.  (zig:
    test_zig.py, after its sqlext build; docker: test_containers.py.)"""
    if not shutil.which("python3.12"):
        skip_or_fail("needs python3.12 on PATH")
    backend = "host"
    first = build(project_at(tmp_path / "one" / "sqlext", backend), geonox_env, compiled=False)
    fresh = tmp_path / "another-cache"
    second = build(
        project_at(tmp_path / "elsewhere" / "deeper" / "sqlext", backend), clean_env(fresh, mirror)
    )
    same_wheel(first, second, tmp_path, fresh, Path(geonox_env["GEONOX_CACHE_DIR"]), tmp_path)
    # and so is what it was built from: SQLite's artifact, compiled again without ccache
    compared = same_artifacts(fresh, Path(geonox_env["GEONOX_CACHE_DIR"]), "sqlite")
    assert any(f.endswith("lib/libsqlite3.a") for f in compared), compared
    with zipfile.ZipFile(first) as zf:
        sbom = json.loads(
            zf.read(next(n for n in zf.namelist() if n.endswith("sboms/geonox.cdx.json")))
        )
        stamps = {i.date_time for i in zf.infolist()}
    # with no git history and no sdist, the time stamped in is 1980-01-01 (never the clock)
    assert stamps == {(1980, 1, 1, 0, 0, 0)}, stamps
    assert sbom["metadata"]["timestamp"] == "1980-01-01T00:00:00Z"
    tools = {t["name"]: t["version"] for t in sbom["metadata"]["tools"]["components"]}
    assert tools["cmake"] == "4.4.5" and tools["auditwheel"] == "6.8.2", tools

    # The same project again with SOURCE_DATE_EPOCH set: the wheels differ only in their
    # zip time stamps and the SBOM's, and geonox diff says which.
    stamped = build(
        project_at(tmp_path / "b" / "sqlext", "host"),
        dict(geonox_env, SOURCE_DATE_EPOCH="1700000000"),
        compiled=False,
    )
    with zipfile.ZipFile(stamped) as zf:
        assert {i.date_time for i in zf.infolist()} == {(2023, 11, 14, 22, 13, 20)}
    code, report = diff(first, stamped, tmp_path)
    assert code == 1 and not report["identical"]
    kinds = {m["member"]: m["what"] for m in report["members"]}
    sbom = next(n for n in kinds if n.endswith("sboms/geonox.cdx.json"))
    assert kinds.pop(sbom) == "bytes"  # its timestamp
    assert kinds.pop(sbom.replace("sboms/geonox.cdx.json", "RECORD")) == "bytes"  # the SBOM's hash
    assert set(kinds.values()) == {"zip metadata"}, report
    text = run(
        [sys.executable, "-m", "geonox", "diff", first, stamped], cwd=tmp_path, env=dict(os.environ)
    )
    assert text.returncode == 1 and "first difference: " in text.stdout

    # an extension module changed in one section: diff names the member and that section
    from elftools.elf.elffile import ELFFile

    changed = tmp_path / "changed" / first.name

    def flip_comment(name: str, data: bytes) -> bytes:
        if not name.endswith(".so"):
            return data
        at = ELFFile(io.BytesIO(data)).get_section_by_name(".comment")["sh_offset"]
        return data[:at] + bytes([data[at] ^ 0x20]) + data[at + 1 :]

    rewrite_members(first, changed, flip_comment)
    (module,) = [n for n in zipfile.ZipFile(first).namelist() if n.endswith(".so")]
    code, report = diff(first, changed, tmp_path)
    assert code == 1
    (member,) = report["members"]
    assert (
        member["member"] == module
        and member["what"] == "bytes"
        and member["sections"] == [".comment"]
    )
