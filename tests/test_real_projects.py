"""Real geospatial projects, from the release sdists PyPI serves, built by geonox and
tested with their own test suites: shapely 2.1.2 over a shared GEOS, pyproj 3.6.1 over a
shared PROJ + SQLite.  Nobody here wrote these projects, their build systems (setuptools +
Cython, finding GEOS through ``GEOS_CONFIG`` and PROJ through ``PROJ_DIR``) or their tests.

The noxfiles are the README's "Building an existing project" examples, outside the sdist
(an sdist you do not own has no ``[tool.geonox]``).  The module runs after test_e2e, so
the dependency compiles are mostly ccache hits of the session's static builds (one
``CCACHE_DIR`` for the session): the shared artifacts are still built, keyed apart."""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import pytest
from conftest import (
    grafted_once,
    nox,
    pypi_sdist,
    shapely_noxfile,
    skip_or_fail,
    suite_results,
    verify_errors,
)
from conftest import (
    keyword_noxfile as noxfile,
)

from geonox.targets import host_arch

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", autouse=True)
def needs_x86_64():
    if host_arch() != "x86_64":
        skip_or_fail(f"these builds target the x86_64 host, this is {host_arch()}")
    for v in ("3.11", "3.12"):
        if shutil.which(f"python{v}") is None:
            skip_or_fail(f"python{v} not on PATH")


def test_shapely_from_its_sdist_with_a_shared_geos_passes_its_own_suite(geonox_env, tmp_path):
    sdist = pypi_sdist("shapely", "2.1.2")
    wheelhouse = tmp_path / "wheelhouse"
    where = shapely_noxfile(
        tmp_path / "shapely",
        sdist,
        backend="host",
        python=["3.11", "3.12"],
        wheelhouse=str(wheelhouse),
    )
    result = nox("-s", "wheels-x86_64", cwd=where, env=geonox_env)
    out = result.stdout
    assert result.returncode == 0, out[-6000:]
    # built here, or by an earlier test of the session, or by the other worker while this
    # one waited (the artifact is shared)
    assert re.search(
        r"deps-x86_64: (building geos 3\.13\.1 \(shared\)|cached \(key)"
        r"|reused geos 3\.13\.1 \(shared\)",
        out,
    ), out[-3000:]
    # shapely's own suite, on each Python, against the installed wheel
    results = suite_results(out)
    assert len(results) == 2 and all(p > 6000 and f == 0 for p, f in results), results
    assert re.search(r"bundled libraries: shapely\.libs/libgeos", out), out[-3000:]

    wheels = sorted(wheelhouse.glob("shapely-2.1.2-*.whl"))
    assert [w.name.split("-")[2] for w in wheels] == ["cp311", "cp312"], wheels
    for wheel in wheels:
        # GEOS once, grafted: the C++ library and its C API, each a single copy
        grafted_once(
            wheel,
            "shapely",
            {"libgeos": r"3\.13\.1", "libgeos_c": r"1\.\d+\.\d+"},
            ("GEOS", "_ZN4geos"),
            tmp_path,
        )
        assert verify_errors(wheel, geonox_env, tmp_path) == []


def test_pyproj_from_its_sdist_finds_its_own_proj_db_and_passes_its_suite(geonox_env, tmp_path):
    sdist = pypi_sdist("pyproj", "3.6.1")
    wheelhouse = tmp_path / "wheelhouse"
    # pyproj's release recipe: proj.db copied into the package before the build,
    # PROJ_WHEEL=true; Cython < 3.1 (3.6.1 built with today's Cython fails at CRS()).
    # The test command runs pyproj's own test/ offline, then says where its data is.
    command = (
        "import sys, pytest; "
        "rc = pytest.main(['test', '-m', 'not network', '-q', '-p', 'no:cacheprovider']); "
        "import pyproj, pyproj.datadir as d; "
        "t = pyproj.Transformer.from_crs(4326, 3857, always_xy=True); "
        "print('datadir', d.get_data_dir(), 'module', pyproj.__file__, "
        "'paris %.3f %.3f' % t.transform(2.3522, 48.8566)); sys.exit(rc)"
    )
    where = noxfile(
        tmp_path / "pyproj",
        project=str(sdist),
        deps=["proj"],
        versions={"proj": "9.1.1", "sqlite": "3.52.0"},
        link="shared",
        backend="host",
        python=["3.11"],
        wheelhouse=str(wheelhouse),
        build_env={"PROJ_WHEEL": "true"},
        before_build="mkdir -p pyproj/proj_dir/share/proj && "
        "cp -r {prefix}/share/proj/. pyproj/proj_dir/share/proj/",
        build_constraints=["cython<3.1"],
        test_requires=["pytest", "numpy"],
        test_sources=["test"],
        test_command=f'python -c "{command}"',
    )
    result = nox("-s", "wheels-x86_64", cwd=where, env=geonox_env)
    out = result.stdout
    assert result.returncode == 0, out[-6000:]
    assert "proj 9.1.1 (shared)" in out and "sqlite 3.52.0 (shared)" in out, out[-3000:]
    # pyproj's own suite passed (measured by hand: 953 passed, 25 skipped, 24 deselected
    # (the network tests), 2 xpassed; nothing else deselected)
    results = suite_results(out)
    assert len(results) == 1 and results[0][0] > 900 and results[0][1] == 0, out[-3000:]
    found = re.search(r"datadir (\S+) module (\S+) paris ([\d.]+) ([\d.]+)", out)
    assert found, out[-3000:]
    datadir, module = Path(found.group(1)), Path(found.group(2))
    # the data directory pyproj uses is inside the installed package, not the build prefix
    assert datadir == module.parent / "proj_dir" / "share" / "proj", found.groups()
    assert "site-packages" in datadir.parts and "prefixes" not in datadir.parts
    assert (
        abs(float(found.group(3)) - 261845.706) < 0.01
        and abs(float(found.group(4)) - 6250564.350) < 0.01
    ), found.groups()

    (wheel,) = wheelhouse.glob("pyproj-3.6.1-cp311-*.whl")
    grafted_once(
        wheel,
        "pyproj",
        {"libproj": r"25\.\d+\.\d+\.\d+", "libsqlite3": r"3\.52\.0"},
        ("proj_", "sqlite3_"),
        tmp_path,
    )
    with zipfile.ZipFile(wheel) as zf:
        assert "pyproj/proj_dir/share/proj/proj.db" in zf.namelist()
    assert verify_errors(wheel, geonox_env, tmp_path) == []
