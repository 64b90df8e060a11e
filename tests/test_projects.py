"""A project not written for geonox, built the way real geospatial projects are released:
from its sdist, with setuptools through pypa/build, finding its library through
pkg-config, with two extension modules that must share one copy of the library, and its
own test suite run from outside the source tree with its test requirements installed.

tests/data/twomod is that project (SQLite, the quick recipe, stands in for GEOS/PROJ):
its test suite sets state in SQLite through one module and reads it through the other,
which only works when both use one copy of the library.  With ``link = "shared"`` the
library is grafted once; with ``link = "static"`` each module carries its own copy, and
the ldd session must say so."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import (
    REPO,
    keyword_noxfile,
    nox,
    run,
    skip_or_fail,
    verify_errors,
)
from conftest import (
    twomod_noxfile as noxfile,
)

from geonox.elf import read_elf
from geonox.targets import host_arch


@pytest.fixture(scope="module")
def sdist(twomod_sdist) -> Path:
    if host_arch() != "x86_64":
        skip_or_fail("twomod's own tests expect an x86_64 host build")
    return twomod_sdist


def test_shared_library_grafted_once_from_the_sdist(sdist, geonox_env, tmp_path):
    where = noxfile(tmp_path / "release", sdist, "shared", ["3.11", "3.12"], "wheelhouse-shared")
    result = nox("-s", "wheels-x86_64", cwd=where, env=geonox_env)
    out = result.stdout
    assert result.returncode == 0, out[-6000:]
    assert "sqlite 3.52.0 (shared)" in out
    # twomod's own suite passed on each Python, from a copy of its tests outside the tree
    assert out.count("5 passed") == 2, out[-4000:]
    assert re.search(
        r"test-x86_64-3\.12: \S+ -m pytest -q -p no:cacheprovider tests "
        r"\(in \S+/test-dirs/x86_64-cp312\)",
        out,
    ), out[-4000:]
    assert "before-build: printf" in out
    # on the host, test venvs are made and filled by uv
    assert re.search(
        r"test-x86_64-3\.12: installing twomod-\S+ into a clean CPython 3\.12 venv \(uv\)", out
    )
    assert "bundled libraries: twomod.libs/libsqlite3-" in out
    # _c links nothing from the prefix, so auditwheel left its RUNPATH into the prefix;
    # repair removes it
    assert re.search(
        r"repair-x86_64-3\.12: removed build-machine RPATH/RUNPATH entries .*"
        r"twomod/_c\.cpython-312-x86_64-linux-gnu\.so: [^;]*/prefixes/x86_64-[0-9a-f]{16}/lib",
        out,
    ), out[-3000:]
    # the host's tag is decided by the grafted library too, and the repair line says so
    tag = re.search(
        r"repair-x86_64-3\.12: tagged manylinux_2_(\d+)_x86_64: .*?highest versions "
        r"needed: GLIBC_2\.(\d+)",
        out,
    )
    assert tag and tag.group(1) == tag.group(2), out[-3000:]

    wheels = sorted((sdist.parent / "wheelhouse-shared").glob("*.whl"))
    assert [w.name.split("-")[2] for w in wheels] == ["cp311", "cp312"]
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            names = zf.namelist()
            libs = [n for n in names if n.startswith("twomod.libs/") and not n.endswith("/")]
            assert len(libs) == 1 and re.fullmatch(
                r"twomod\.libs/libsqlite3-[0-9a-f]{8}\.so\.3\.52\.0", libs[0]
            ), names
            modules = sorted(n for n in names if n.endswith(".so"))
            assert len(modules) == 3
            for module in modules:
                path = tmp_path / Path(module).name
                path.write_bytes(zf.read(module))
                info = read_elf(path)
                grafted = [n for n in info.needed if n.startswith("libsqlite3")]
                if "/_c." not in module:
                    assert grafted == [Path(libs[0]).name], info.needed  # one copy, both modules
                assert not any(s.name.startswith("sqlite3_") for s in info.exported)
                # no search path into the build machine: $ORIGIN-relative entries only
                assert all(p.startswith("$ORIGIN") for p in info.rpath + info.runpath), (
                    module,
                    info.rpath,
                    info.runpath,
                )
        report = json.loads(
            run(
                [sys.executable, "-m", "geonox", "verify", "--json", wheel],
                cwd=tmp_path,
                env=geonox_env,
            ).stdout
        )[0]
        assert report["ok"], report
        holders = {f["path"]: f["libraries"] for f in report["files"] if f["libraries"]}
        assert holders == {libs[0]: ["sqlite3"]}, holders

    # the shared prefix: a versioned library with a SONAME, keyed apart from the static one
    key = re.search(r"deps-x86_64: prefix \(key ([0-9a-f]{16})\) assembled", out) or re.search(
        r"deps-x86_64: cached \(key ([0-9a-f]{16})\)", out
    )
    assert key, out[-3000:]
    lib = Path(geonox_env["GEONOX_CACHE_DIR"]) / "prefixes" / f"x86_64-{key.group(1)}" / "lib"
    assert read_elf(lib / "libsqlite3.so.3.52.0").soname == "libsqlite3.so.0"
    assert (lib / "libsqlite3.so").resolve() == (lib / "libsqlite3.so.3.52.0").resolve()
    assert not (lib / "libsqlite3.a").exists()
    # the build ran in a fresh copy: the unpacked sdist is untouched by before-build
    unpacked = list(
        (Path(geonox_env["GEONOX_CACHE_DIR"]) / "sdists").glob("twomod-1.0-*/src/twomod-1.0")
    )
    assert unpacked and not (unpacked[0] / "src" / "twomod" / "_built.py").exists()


def test_static_copies_in_two_modules_fail_the_ldd_session(sdist, geonox_env, tmp_path):
    where = noxfile(tmp_path / "static", sdist, "static", ["3.12"], "wheelhouse-static")
    result = nox("-s", "ldd-x86_64-3.12", cwd=where, env=geonox_env)
    out = " ".join(result.stdout.split())
    assert result.returncode != 0, out[-3000:]
    assert "sqlite 3.52.0 (static)" in out or "deps-x86_64: cached" in out
    assert "duplicate-library" in out and "sqlite3 is in 2 files of the wheel" in out
    assert re.search(r"twomod/_a\.cpython-312-x86_64-linux-gnu\.so exports sqlite3_", out)
    assert re.search(r"twomod/_b\.cpython-312-x86_64-linux-gnu\.so exports sqlite3_", out)
    assert "Traceback" not in out
    shutil.rmtree(sdist.parent / "wheelhouse-static", ignore_errors=True)


def test_build_constraints_pin_what_build_isolation_installs(sdist, geonox_env, tmp_path):
    """build-constraints reach pip inside pypa/build's isolated environment: the wheel says
    which setuptools made it (WHEEL's Generator line), and it is the pinned one, not the
    newest that twomod's requires = ["setuptools>=61"] would get."""
    where = noxfile(
        tmp_path / "pinned",
        sdist,
        "shared",
        ["3.12"],
        "wheelhouse-pinned",
        build_constraints=["setuptools==70.3.0"],
    )
    result = nox("-s", "build-x86_64-3.12", cwd=where, env=geonox_env)
    assert result.returncode == 0, result.stdout[-4000:]
    built = re.search(r"build-x86_64-3\.12: built (\S+\.whl)", result.stdout)
    assert built, result.stdout[-3000:]
    (raw,) = Path(geonox_env["GEONOX_CACHE_DIR"]).glob(
        f"work/twomod-*/dist/x86_64/cp312/{built.group(1)}"
    )
    with zipfile.ZipFile(raw) as zf:
        wheel_meta = zf.read("twomod-1.0.dist-info/WHEEL").decode()
    assert "Generator: setuptools (70.3.0)" in wheel_meta, wheel_meta


def test_meson_python_project_finds_sqlite_through_pkg_config(geonox_env, tmp_path):
    """Another PEP 517 backend, unchanged: tests/data/mesonext is meson-python, and its
    meson.build asks ``dependency('sqlite3')``, which meson answers through pkg-config from
    the PKG_CONFIG_PATH geonox sets (the .pc file geonox writes for SQLite).

    Run as from a nox session in a uv venv (a maintainer's noxfile, or this suite under
    `nox -s tests`): nox's UV_PYTHON and VIRTUAL_ENV name that venv, and the build's
    isolated environment must still get meson-python, not the outer venv."""
    outer = tmp_path / "outer-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", outer], check=True)
    geonox_env = dict(
        geonox_env, VIRTUAL_ENV=str(outer), UV_PYTHON=str(outer), UV_PROJECT_ENVIRONMENT=str(outer)
    )
    project = tmp_path / "mesonext"
    shutil.copytree(REPO / "tests" / "data" / "mesonext", project)
    shutil.copy(
        REPO / "tests" / "data" / "sqlext" / "src" / "sqlext" / "_sqlext.c",
        project / "src" / "mesonext",
    )
    where = keyword_noxfile(
        tmp_path / "release",
        project=str(project),
        deps=["sqlite"],
        versions={"sqlite": "3.52.0"},
        backend="host",
        python=["3.12"],
        test_command="python -c 'import mesonext; mesonext.selftest()'",
    )
    result = nox(
        "-s",
        "wheels-x86_64" if host_arch() == "x86_64" else f"wheels-{host_arch()}",
        cwd=where,
        env=geonox_env,
    )
    out = result.stdout
    assert result.returncode == 0, out[-6000:]
    assert re.search(r"mesonext OK: SQLite 3\.52\.0 on ", out), out[-3000:]
    (wheel,) = (project / "wheelhouse").glob("mesonext-0.1.0-cp312-cp312-manylinux_*.whl")
    with zipfile.ZipFile(wheel) as zf:
        (module,) = [n for n in zf.namelist() if n.endswith(".so")]
        (tmp_path / "m.so").write_bytes(zf.read(module))
    info = read_elf(tmp_path / "m.so")
    assert [s.name for s in info.exported] == ["PyInit__sqlext"], info.exported
    assert not any(n.startswith("libsqlite3") for n in info.needed), info.needed  # static
    assert verify_errors(wheel, geonox_env, tmp_path) == []
    assert not list(outer.glob("lib/python*/site-packages/mesonpy"))  # nothing landed outside
