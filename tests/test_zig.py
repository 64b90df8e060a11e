"""The zig cross backend: its traps with the real zig from the ziglang wheel, and the
example's wheels for aarch64 (tested under QEMU in the arm64 stand-in image) and x86_64
(imported on CPython 3.9-3.13 here)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from conftest import (
    REPO,
    grafted_once,
    make_project,
    nox,
    pypi_sdist,
    run,
    shapely_noxfile,
    skip_or_fail,
    standin_or_skip,
    suite_results,
    verify_errors,
)

from geonox.elf import read_elf
from geonox.policy import max_version
from geonox.zig import ZigToolchain, translate

pytestmark = pytest.mark.zig
EXAMPLE = REPO / "examples" / "geodemo"
SQLEXT = REPO / "tests" / "data" / "sqlext"


def test_translate_handles_the_known_traps():
    argv = translate(
        "cc",
        "aarch64-linux-gnu.2.17",
        [
            "-O2",
            "--target=x86_64-linux-gnu",
            "-target",
            "x86_64-linux-gnu",
            "-march=armv8-a",
            "-mtune=generic",
            "-Wp,-D_FORTIFY_SOURCE=2",
            "-Wl,--version-script=x.map,--exclude-libs,ALL",
            "-Xlinker",
            "--exclude-libs",
            "-Xlinker",
            "ALL",
            "-Wl,--exclude-libs=ALL",
            "a.c",
        ],
    )
    assert argv[-2:] == ["-target", "aarch64-linux-gnu.2.17"]  # ours, last
    assert "x86_64-linux-gnu" not in argv and "--target=x86_64-linux-gnu" not in argv
    assert "-mcpu=generic" in argv and not any(a.startswith(("-march", "-mtune")) for a in argv)
    assert "-D_FORTIFY_SOURCE=2" in argv and not any(a.startswith("-Wp,") for a in argv)
    assert "-Wl,--version-script=x.map" in argv
    assert not any("exclude-libs" in a for a in argv) and "ALL" not in argv
    assert "-fno-sanitize=all" in argv and argv[0] == "cc" and "a.c" in argv
    assert "-mcpu=x86_64_v2" in translate("c++", "x86_64-linux-gnu.2.17", ["-march=x86-64-v2"])


ARGV_CORPUS = [
    [
        "-O2",
        "--target=x86_64-linux-gnu",
        "-target",
        "x86_64-linux-gnu",
        "-march=armv8-a",
        "-mtune=generic",
        "-Wp,-D_FORTIFY_SOURCE=2",
        "-Wl,--version-script=x.map,--exclude-libs,ALL",
        "-Xlinker",
        "--exclude-libs",
        "-Xlinker",
        "ALL",
        "-Wl,--exclude-libs=ALL",
        "a.c",
    ],
    [
        "-march=x86-64-v2",
        "-march=x86-64",
        "-march=armv8.2-a",
        "-march=cortex-a72",
        "-march=znver-3",
    ],
    ['-DNAME="a b"', "it's", "a\\b", "$HOME", "`x`", "*", "", " ", "-o", "out dir/x.o"],
    ["-Wp,", "-Wp,,-DA,,-DB", "-Wl,", "-Wl,a,,b", "-Wl,--exclude-libs", "-Wl,-rpath,$ORIGIN"],
    ["-Xlinker", "--exclude-libs=ALL", "-c", "-Xlinker", "--exclude-libs", "x.c", "-Xlinker"],
    ["-Xlinker", "-z", "-Xlinker", "defs", "-target"],
    [],
]


@pytest.mark.parametrize("target", ["aarch64-linux-gnu.2.17", "x86_64-linux-gnu.2.28"])
@pytest.mark.parametrize("tool", ["cc", "c++", "ar"])
def test_sh_wrapper_passes_zig_what_translate_says(tmp_path, target, tool):
    """The generated POSIX sh wrapper (what runs on every compiler call) is held to
    translate(), argument list by argument list, quoting included: a fake zig prints its
    argv as JSON."""
    import json
    import subprocess

    from geonox.zigcc import sh_wrapper

    fake = tmp_path / "fake zig's"
    fake.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    fake.chmod(0o755)
    wrapper = tmp_path / tool
    wrapper.write_text(sh_wrapper(tool, target, str(fake)))
    wrapper.chmod(0o755)
    for argv in ARGV_CORPUS:
        got = json.loads(
            subprocess.run([str(wrapper), *argv], capture_output=True, text=True, check=True).stdout
        )
        want = translate(tool, target, argv) if tool != "ar" else [tool, *argv]
        assert got == want, argv


@pytest.fixture(scope="module")
def zig_aarch64(geonox_cache, monkeypatch_module):
    monkeypatch_module.setenv("GEONOX_CACHE_DIR", str(geonox_cache))
    from geonox.executors import HostExecutor

    return ZigToolchain("aarch64", "manylinux_2_17", HostExecutor("aarch64", cross=True))


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_zig_objects_carry_no_debug_info(tmp_path, zig_aarch64):
    """zig cc writes DWARF by default, gcc does not: the toolchain's flags say -g0, so a
    C++ object compiled with them has no .debug_* section (and one without them has)."""
    from elftools.elf.elffile import ELFFile

    src = tmp_path / "t.cc"
    src.write_text("#include <string>\nstd::string twice(const std::string& s) { return s + s; }\n")

    def debug_sections(flags) -> list[str]:
        obj = tmp_path / "t.o"
        done = subprocess.run(
            [*zig_aarch64.cxx, *flags, "-c", str(src), "-o", str(obj)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        with open(obj, "rb") as fh:
            return [
                sec.name for sec in ELFFile(fh).iter_sections() if sec.name.startswith(".debug")
            ]

    assert "-g0" in zig_aarch64.cxxflags
    assert debug_sections(zig_aarch64.cxxflags) == []
    assert debug_sections([f for f in zig_aarch64.cxxflags if f != "-g0"])  # zig's default


def test_wrappers_survive_every_trap_with_real_zig(tmp_path, zig_aarch64):
    src = tmp_path / "m.cc"
    src.write_text(
        textwrap.dedent("""\
        #include <string>
        #include <cmath>
        extern "C" __attribute__((visibility("default"))) int PyInit_m(void) {
            std::string s(3, 'x'); return (int)std::hypot(3.0, 4.0) + (int)s.size();
        }
        """)
    )
    (tmp_path / "m.map").write_text("{ global: PyInit_*; local: *; };\n")
    out = tmp_path / "m.so"
    cmd = [
        *zig_aarch64.cxx,
        "-O2",
        "-fPIC",
        "-shared",
        "-march=armv8-a",
        "-mtune=generic",
        "-Wp,-D_FORTIFY_SOURCE=2",
        "--target=x86_64-linux-gnu",
        "-fsanitize=undefined",
        f"-Wl,--version-script={tmp_path / 'm.map'},--exclude-libs,ALL",
        str(src),
        "-o",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    info = read_elf(out)
    assert info.arch == "aarch64"
    glibc = [v for vs in info.version_requirements.values() for v in vs if v.startswith("GLIBC_2.")]
    assert max(tuple(int(x) for x in v[6:].split(".")) for v in glibc) <= (2, 17)
    assert not any("ubsan" in n or "stdc++" in n or "c++" in n for n in info.needed), info.needed
    assert [s.name for s in info.exported] == ["PyInit_m"]
    # the strip wrapper strips aarch64, which the host's binutils cannot
    assert subprocess.run(["strip", str(out)], capture_output=True).returncode != 0
    before = out.stat().st_size
    assert subprocess.run([str(zig_aarch64.bin_dir / "strip"), str(out)]).returncode == 0
    assert out.stat().st_size < before
    assert read_elf(out).arch == "aarch64"


def zig_project(
    tmp_path: Path,
    archs: str,
    pythons: str,
    image: str = "",
    link: str = "static",
    backend: str = "zig",
) -> Path:
    project = tmp_path / "zigproj"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("wheelhouse", "build"))
    text = (project / "pyproject.toml").read_text()
    images = f'images = {{ aarch64 = "{image}" }}\ncontainer-env = ["PIP_CERT"]\n' if image else ""
    (project / "pyproject.toml").write_text(
        text[: text.index("[tool.geonox]")]
        + textwrap.dedent(f"""\
        [tool.geonox]
        backend = "{backend}"
        archs = {archs}
        policy = "manylinux2014"
        link = "{link}"
        python = {pythons}
        test-command = "python -c 'import geodemo; geodemo.selftest()'"
        """)
        + images
        + textwrap.dedent("""\
        [tool.geonox.versions]
        proj = "9.1.1"
        geos = "3.13.1"
        sqlite = "3.52.0"
        """)
    )
    (project / "noxfile.py").write_text("import geonox\ngeonox.register(prefix='geo-')\n")
    return project


SELFTEST = re.compile(
    r"geodemo 0\.1\.0 OK: PROJ 9\.1\.1, GEOS 3\.13\.1\S*, SQLite 3\.52\.0; "
    r"Paris -> \(261845\.7, 6250564\.3\) m; 32-gon area 3\.1214452"
)


GLIBC = {
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
}


def check_zig_wheel(wheel: Path, arch: str, env: dict, tmp_path: Path) -> None:
    """manylinux2014 tags, verify passes, the module exports its init only, and every ELF
    file (the module, the grafted one-library GEOS and PROJ, SQLite) needs glibc <= 2.17
    and, beside glibc, only the libraries grafted next to it (libc++ is inside each)."""
    assert wheel.name.endswith(
        f"manylinux2014_{arch}.manylinux_2_17_{arch}.whl"
    ) or wheel.name.endswith(f"manylinux_2_17_{arch}.manylinux2014_{arch}.whl"), wheel.name
    verified = run(
        [sys.executable, "-m", "geonox", "verify", "--json", wheel], cwd=wheel.parent, env=env
    )
    assert verified.returncode == 0, verified.stdout
    report = json.loads(verified.stdout)[0]
    (so,) = [f for f in report["files"] if f["path"].endswith(".so")]
    assert so["machine"] == arch and so["exported"] == ["PyInit__geodemo"]
    grafted_once(
        wheel,
        "geodemo",
        {"libgeos_c": "1", "libproj": r"25\.9\.1\.1", "libsqlite3": r"3\.52\.0"},
        ("GEOS", "proj_", "sqlite3_", "_ZN4geos", "_ZN5osgeo"),
        tmp_path,
    )
    with zipfile.ZipFile(wheel) as zf:
        libs = {Path(n).name for n in zf.namelist() if n.startswith("geodemo.libs/")}
    elves = [f for f in report["files"] if f.get("machine")]
    assert len(elves) == 4, [f["path"] for f in elves]
    for elf in elves:
        assert elf["machine"] == arch, elf["path"]
        assert set(elf["needed"]) <= GLIBC | libs, (elf["path"], elf["needed"])
        assert tuple(map(int, elf["max_versions"]["GLIBC"].split("."))) <= (2, 17), elf["path"]


def test_zig_aarch64_example_tested_under_qemu(tmp_path, geonox_env, no_engine_env):
    """The example cross-built by zig for aarch64 against shared PROJ, GEOS and SQLite
    (each one library with libc++ inside, grafted by auditwheel), manylinux2014, and its
    selftest run under QEMU in the arm64 stand-in.  One full zig prefix per run keeps CI
    inside its time: this shared one serves the one-library test below too; static PROJ and
    GEOS under zig were checked the same way by hand (the x86_64 test keeps static SQLite).

    The default backend, as the README's `nox -s wheels-aarch64`: a foreign arch is
    compiled by zig even where docker answers (QEMU would compile for hours), and tested
    in docker under QEMU; with no engine at all, the test session is one line saying so."""
    image = standin_or_skip("aarch64")
    project = zig_project(tmp_path, '["aarch64"]', '["3.9"]', image, link="shared", backend="auto")
    pinned = run(
        [sys.executable, "-m", "geonox", "pin", "--project", project], cwd=project, env=geonox_env
    )
    assert pinned.returncode == 0, pinned.stdout
    result = nox("-s", "geo-wheels-aarch64", cwd=project, env=geonox_env)
    assert result.returncode == 0, result.stdout[-6000:]
    # built by zig here, or (a kept GEONOX_TEST_CACHE) cached from an earlier run
    assert re.search(r"geo-deps-aarch64: (building .*\(zig 0\.|cached \(key)", result.stdout), (
        result.stdout[-3000:]
    )
    assert "geo-build-aarch64: runs on zig aarch64-linux-gnu.2.17" in result.stdout
    assert re.search(
        r"geo-test-aarch64-3\.9: runs on docker \S+@sha256:[0-9a-f]{64} \(aarch64\)", result.stdout
    ), result.stdout[-3000:]
    assert SELFTEST.search(result.stdout), result.stdout[-3000:]
    (wheel,) = (project / "wheelhouse").glob("*.whl")
    check_zig_wheel(wheel, "aarch64", geonox_env, tmp_path)
    # the same machine without a container engine: it builds, then nothing runs aarch64
    alone = nox("-s", "geo-test-aarch64-3.9", cwd=project, env=no_engine_env)
    out = alone.stdout
    assert alone.returncode != 0 and "Traceback" not in out, out[-3000:]
    assert "geo-build-aarch64: runs on zig aarch64-linux-gnu.2.17" in out, out[-3000:]
    (said,) = [line for line in out.splitlines() if "cannot test the aarch64 wheels" in line]
    assert (
        "no container engine answers ('docker' is not installed (no program at /nonexistent/docker)"
        in said
    )
    assert "qemu-user-static" in said and "nox -s ldd-aarch64-<python>" in said, said


CAPI_STRESS = REPO / "tests" / "data" / "capistress"


GLIBC_LIBS = GLIBC - {"ld-linux-x86-64.so.2"}


def _one_library(path: Path, soname: str, api: tuple[str, ...], needed: set[str]):
    """A shared library that keeps its C++ runtime inside: exports ``api`` only, imports
    no C++ symbol, needs glibc (and ``needed``) only, within manylinux2014's glibc."""
    info = read_elf(path)
    assert info.arch == "aarch64" and info.soname == soname, (info.arch, info.soname)
    strays = sorted(s.name for s in info.exported if not s.name.startswith(api))
    assert not strays, strays[:10]
    assert set(info.needed) <= GLIBC_LIBS | needed, info.needed
    assert not [s.name for s in info.undefined if s.name.startswith("_Z")]
    top = max_version(
        v[len("GLIBC_") :]
        for vs in info.version_requirements.values()
        for v in vs
        if v.startswith("GLIBC_2")
    )
    assert top and tuple(map(int, top.split("."))) <= (2, 17), info.version_requirements
    return {s.name for s in info.exported}


def test_zig_shared_geos_and_proj_are_one_library_each_that_throw_and_catch_inside(
    tmp_path, geonox_env
):
    """Shared GEOS and PROJ under zig (whose libc++ is static in every shared object):
    each is one library carrying its C++ code and runtime, exporting the C API only
    (``libgeos_c.so.1`` relinked from GEOS's archives; upstream's ``libproj.so.25`` with a
    version script, SQLite shared beside it).  C programs
    linked to them run each C API hard under QEMU in the arm64 stand-in, through the paths
    where the library throws and its C API catches (GEOS: ParseException,
    IllegalArgumentException; PROJ: unknown EPSG code, bad WKT, unknown projection), plus
    real work (buffers and unions; EPSG:4326 -> 3857 through proj.db): a throw crossing
    two runtimes would not be caught and the process would abort.  The aarch64 example
    above builds the same shared zig prefix (its keys are this project's), so in a full
    run these artifacts are reused from it, not built twice."""
    image = standin_or_skip("aarch64")
    project = make_project(
        tmp_path,
        SQLEXT,
        """\
        [tool.geonox]
        backend = "zig"
        archs = ["aarch64"]
        policy = "manylinux2014"
        deps = ["geos", "proj"]
        link = "shared"
        [tool.geonox.versions]
        geos = "3.13.1"
        proj = "9.1.1"
        sqlite = "3.52.0"
        """,
        name="capi",
    )
    result = nox("-s", "geo-deps-aarch64", cwd=project, env=geonox_env)
    assert result.returncode == 0, result.stdout[-6000:]
    print(re.findall(r"(?:geos|proj|sqlite) \S+ \(shared\) built in .*", result.stdout))
    cache = Path(geonox_env["GEONOX_CACHE_DIR"])

    def artifact(name: str, version: str) -> Path:
        # the newest (a kept GEONOX_TEST_CACHE may hold one of an older recipe too)
        found = [
            d
            for d in (cache / "deps").glob(f"{name}-{version}-aarch64-*")
            if d.is_dir()
            and (m := json.loads((d / "geonox-dep.json").read_text()))["link"] == "shared"
            and m["toolchain"].startswith("zig-")
            and "linux-gnu" in m["toolchain"]  # not a musl target's (test_musllinux)
        ]
        assert found, name
        return max(found, key=lambda d: (d / "geonox-dep.json").stat().st_mtime)

    geos, proj, sqlite = (
        artifact("geos", "3.13.1"),
        artifact("proj", "9.1.1"),
        artifact("sqlite", "3.52.0"),
    )
    assert sorted(p.name for p in (geos / "lib").glob("libgeos*")) == [
        "libgeos_c.so",
        "libgeos_c.so.1",
    ]
    exported = _one_library(
        geos / "lib" / "libgeos_c.so.1", "libgeos_c.so.1", ("GEOS", "initGEOS", "finishGEOS"), set()
    )
    assert {"GEOSversion", "initGEOS_r", "GEOS_init_r"} <= exported
    assert sorted(p.name for p in (proj / "lib").glob("libproj*")) == [
        "libproj.so",
        "libproj.so.25",
        "libproj.so.25.9.1.1",
    ]
    exported = _one_library(
        proj / "lib" / "libproj.so.25",
        "libproj.so.25",
        ("proj_", "geod_", "pj_release"),
        {"libsqlite3.so.0"},
    )
    assert {"proj_create", "proj_trans", "geod_init"} <= exported
    # what consumers ask of them answers with the one library
    config = geos / "bin" / "geos-config"
    clibs = run([config, "--clibs"], cwd=tmp_path, env=geonox_env)
    assert clibs.stdout.split() == [f"-L{geos}/lib", "-lgeos_c"], clibs.stdout
    refused = run([config, "--cclibs"], cwd=tmp_path, env=geonox_env)
    assert refused.returncode != 0 and "one C API library" in refused.stdout
    assert "Libs.private" not in (geos / "lib" / "pkgconfig" / "geos.pc").read_text()
    assert "libgeos_c.so.1" in (geos / "lib" / "cmake" / "GEOS" / "geos-config.cmake").read_text()
    # programs over the C APIs, cross-built with the same zig, run under QEMU
    (cc,) = (cache / "toolchains").glob("zig-aarch64-linux-gnu.2.17-*/bin/cc")
    work = tmp_path / "run"
    (work / "proj").mkdir(parents=True)
    for lib in (
        geos / "lib" / "libgeos_c.so.1",
        proj / "lib" / "libproj.so.25",
        sqlite / "lib" / "libsqlite3.so.0",
    ):
        shutil.copy2(lib, work / lib.name)
    shutil.copy2(proj / "share" / "proj" / "proj.db", work / "proj" / "proj.db")
    for name, lib in (("geos", "geos_c"), ("proj", "proj")):
        built = run(
            [
                cc,
                "-O2",
                CAPI_STRESS / f"{name}.c",
                f"-I{geos}/include",
                f"-I{proj}/include",
                f"-L{geos}/lib",
                f"-L{proj}/lib",
                f"-l{lib}",
                "-Wl,-rpath,$ORIGIN",
                "-Wl,--allow-shlib-undefined",
                "-o",
                work / f"{name}-stress",
            ],
            cwd=work,
            env=geonox_env,
        )
        assert built.returncode == 0, built.stdout
    from standin import DOCKER, platform

    ran = run(
        [
            DOCKER,
            "run",
            "--rm",
            "--platform",
            platform("aarch64"),
            "-v",
            f"{work}:/w",
            "-e",
            "PROJ_DATA=/w/proj",
            "-e",
            "PROJ_NETWORK=OFF",
            image,
            "sh",
            "-c",
            "/w/geos-stress && /w/proj-stress",
        ],
        cwd=work,
        env=geonox_env,
        timeout=900,
    )
    assert ran.returncode == 0, ran.stdout
    assert re.search(
        r"geosstress 3\.13\.1-CAPI-1\.19\.2: 2000 rounds, 4000 NULL results, 2000 "
        r"ParseException, 2000 IllegalArgumentException, 0 other errors, 2000 unions",
        ran.stdout,
    ), ran.stdout
    assert re.search(
        r"projstress 9\.1\.1: 300 rounds, 900 refused, 300 transforms, "
        r"Paris -> \(261845\.7, 6250564\.3\), db found",
        ran.stdout,
    ), ran.stdout


def test_shapely_from_its_sdist_with_zig_for_aarch64_tested_under_qemu(tmp_path, geonox_env):
    """A real setuptools + Cython + numpy project cross-built by zig: shapely 2.0.7's
    release sdist (the arm64 stand-in has CPython 3.9; shapely 2.1 needs 3.10) for aarch64
    against the one-library shared GEOS above.  Its build requirements (numpy, Cython) are
    the build machine's (they run here), its wheel aarch64 manylinux2014; libgeos_c is
    grafted once, and shapely's own suite passes under QEMU in the arm64 stand-in."""
    image = standin_or_skip("aarch64")
    sdist = tmp_path / "shapely-2.0.7.tar.gz"
    shutil.copy(pypi_sdist("shapely", "2.0.7"), sdist)
    where = shapely_noxfile(
        tmp_path / "release",
        sdist,
        backend="zig",
        archs=["aarch64"],
        policy="manylinux2014",
        python=["3.9"],
        images={"aarch64": image},
        container_env=["PIP_CERT"],
    )
    pinned = nox("-s", "pin-images", cwd=where, env=geonox_env)
    assert pinned.returncode == 0, pinned.stdout[-3000:]
    result = nox("-s", "wheels-aarch64", cwd=where, env=geonox_env)
    out = result.stdout
    assert result.returncode == 0, out[-6000:]
    assert "build-aarch64-3.9: runs on zig aarch64-linux-gnu.2.17" in out, out[-3000:]
    assert re.search(r"test-aarch64-3\.9: runs on docker \S+@sha256:[0-9a-f]{64} \(aarch64\)", out)
    results = suite_results(out)
    assert len(results) == 1 and results[0][0] > 3000 and results[0][1] == 0, out[-3000:]
    (wheel,) = (tmp_path / "wheelhouse").glob("shapely-2.0.7-cp39-cp39-*.whl")
    assert wheel.name.endswith(
        "manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
    ) or wheel.name.endswith("manylinux2014_aarch64.manylinux_2_17_aarch64.whl"), wheel.name
    # one libgeos_c (GEOS and libc++ inside it), no libgeos beside it
    grafted_once(wheel, "shapely", {"libgeos_c": "1"}, ("GEOS", "_ZN4geos"), tmp_path)
    assert verify_errors(wheel, geonox_env, tmp_path) == []


def test_zig_x86_64_module_per_python_imports_on_every_python(tmp_path, geonox_env):
    """zig for this machine's arch: a non-abi3 module (named by scikit-build-core's
    SKBUILD_SOABI, since FindPython cannot ask a cross target) built once per CPython
    3.9-3.13 against a zig-built SQLite, each wheel manylinux2014 and imported on its own
    Python.  (The full PROJ/GEOS/SQLite prefix under zig, C++ and static libc++ included,
    is the aarch64 test's above: one full zig prefix per run keeps CI inside its time.)"""
    pythons = ("3.9", "3.10", "3.11", "3.12", "3.13")
    missing = [v for v in pythons if not shutil.which(f"python{v}")]
    if missing:
        skip_or_fail(f"python{', python'.join(missing)} not on PATH")
    project = make_project(
        tmp_path,
        SQLEXT,
        f"""\
        [tool.geonox]
        backend = "zig"
        archs = ["x86_64"]
        policy = "manylinux2014"
        deps = ["sqlite"]
        python = {list(pythons)!r}
        test-command = "python -c 'import sqlext; sqlext.selftest()'"
        [tool.geonox.versions]
        sqlite = "3.52.0"
        """,
        name="sqlext",
    )
    result = nox("-s", "geo-wheels-x86_64", cwd=project, env=geonox_env)
    out = result.stdout
    assert result.returncode == 0, out[-6000:]
    assert "geo-deps-x86_64: runs on zig x86_64-linux-gnu.2.17" in out
    assert out.count("sqlext OK: SQLite 3.52.0 on x86_64") == len(pythons), out[-3000:]
    wheels = sorted((project / "wheelhouse").glob("*.whl"))
    assert sorted(w.name.split("-")[2] for w in wheels) == sorted(
        f"cp{v.replace('.', '')}" for v in pythons
    )
    for wheel in wheels:
        assert "manylinux_2_17_x86_64" in wheel.name, wheel.name
        verified = run(
            [sys.executable, "-m", "geonox", "verify", "--json", wheel],
            cwd=tmp_path,
            env=geonox_env,
        )
        assert verified.returncode == 0, verified.stdout
        (so,) = [f for f in json.loads(verified.stdout)[0]["files"] if f["path"].endswith(".so")]
        tag = wheel.name.split("-")[2]
        assert so["path"] == f"sqlext/_sqlext.cpython-{tag[2:]}-x86_64-linux-gnu.so", so["path"]
        assert so["exported"] == ["PyInit__sqlext"] and so["machine"] == "x86_64"
        assert tuple(map(int, so["max_versions"]["GLIBC"].split("."))) <= (2, 17)

    # Reproducible under zig: the same project (CPython 3.12 only) at another path, in a
    # clean cache with ccache off (SQLite compiled again by zig), gives the same cp312 wheel.
    from test_reproducible import clean_env, project_at, same_artifacts, same_wheel

    fresh = tmp_path / "elsewhere" / "clean-cache"
    again = project_at(
        tmp_path / "elsewhere" / "deeper" / "sqlext",
        "zig",
        'archs = ["x86_64"]\n        policy = "manylinux2014"',
    )
    result = nox(
        "-s", "geo-wheels-x86_64", cwd=again, env=clean_env(fresh, geonox_env["GEONOX_MIRROR"])
    )
    assert result.returncode == 0, result.stdout[-6000:]
    assert "sqlite 3.52.0 (static) built in" in result.stdout
    (second,) = (again / "wheelhouse").glob("*.whl")
    (first,) = [w for w in wheels if w.name == second.name]
    same_wheel(first, second, tmp_path, fresh, Path(geonox_env["GEONOX_CACHE_DIR"]), tmp_path)
    assert same_artifacts(fresh, Path(geonox_env["GEONOX_CACHE_DIR"]), "sqlite")


def test_zig_refuses_a_shared_cxx_recipe_that_cannot_keep_its_runtime_inside(monkeypatch):
    """Every shipped C++ recipe (GEOS, PROJ) keeps its C++ runtime inside one shared
    library under zig; a C++ recipe that cannot (here a made-up one: no such recipe
    exists to test with) is refused as a user error naming it, shared only."""
    import dataclasses
    import types

    import geonox.recipes as recipes
    from geonox.backends import ZigBackend
    from geonox.errors import UserError

    real = recipes.registry()
    fake = dataclasses.replace(real["geos"], name="cxxlib", shared_with_static_runtime=False)
    monkeypatch.setattr(recipes, "registry", lambda: {**real, "cxxlib": fake})
    monkeypatch.setattr("geonox.backends.registry", recipes.registry)

    def backend(*deps):  # what check_link_modes reads: config.deps' names and link modes
        return types.SimpleNamespace(
            config=types.SimpleNamespace(
                deps=[types.SimpleNamespace(name=n, link=link) for n, link in deps]
            )
        )

    shipped = [(n, "shared") for n in ("sqlite", "geos", "proj")]
    ZigBackend.check_link_modes(backend(*shipped))  # nothing refused
    ZigBackend.check_link_modes(backend(("cxxlib", "static")))
    with pytest.raises(
        UserError, match=r'link = "shared" for cxxlib is not available with backend = "zig"'
    ):
        ZigBackend.check_link_modes(backend(*shipped, ("cxxlib", "shared")))
