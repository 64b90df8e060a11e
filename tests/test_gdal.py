"""GDAL and the projects built on it, from their PyPI sdists, on the host: pyogrio 0.13.0
passes its own suite and rasterio 1.4.4 a smoke suite (its sdist leaves its test rasters
out), on CPython 3.11 and 3.12, each wheel carrying libgdal, PROJ, GEOS and SQLite once
and GDAL's and PROJ's data, found from the installed wheel.  The second project reuses
the first one's GDAL: no compiler runs for it.

GDAL is the mirror's Debian repack of 3.10.3, named through the sources table (with
Debian's expat 2.7.1), as the README's noxfiles for rasterio and pyogrio do."""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest
from conftest import (
    REPO,
    gdal_sources,
    grafted_once,
    nox,
    pypi_sdist,
    skip_or_fail,
    suite_results,
    verify_errors,
)
from conftest import (
    keyword_noxfile as noxfile,
)

from geonox.targets import host_arch

pytestmark = pytest.mark.e2e

PYTHONS = ["3.11", "3.12"]
VERSIONS = {"proj": "9.1.1", "geos": "3.13.1", "sqlite": "3.52.0"}
#: The four tests of pyogrio's suite that need what the default drivers leave out: the
#: HTTP and OAPIF drivers and /vsis3/ need curl (off by default), the GMLAS driver needs
#: Xerces-C.  Everything else passes (304 on Debian's full-driver GDAL 3.6.2, 304 here).
PYOGRIO_NEEDS_MORE = (
    "tests/test_core.py::test_detect_write_driver_multiple_unsupported[test.xml]",
    "tests/test_core.py::test_ogr_driver_supports_write[HTTP-False]",
    "tests/test_core.py::test_ogr_driver_supports_write[OAPIF-False]",
    "tests/test_raw_io.py::test_write_gdalclose_error",
)
#: What every wheel carries in its .libs: each library once (soname stem -> version)
GRAFTED = {
    "libgdal": r"36\.3\.10\.3",
    "libproj": r"25\.9\.1\.1",
    "libgeos_c": r"1\.\d+\.\d+",
    "libgeos": r"3\.13\.1",
    "libsqlite3": r"3\.52\.0",
}
GDAL_API = ("GDAL", "OGR_", "OSR", "CPL", "VSI", "proj_", "GEOS", "sqlite3_")
#: What GDAL's build compiles in from its own tree with the default drivers (its SBOM
#: components inside gdal), with the versions GDAL 3.10.3's copies say they are
COMPILED_IN = {
    "libtiff": "4.6.0",
    "libgeotiff": "1.7.4",
    "libjpeg": "6b",
    "libpng": "1.6.43",
    "zlib": "1.3.1",
    "json-c": "0.15",
    "lerc": "fcf086a",
    "shapelib": "1.6.0",
    "flatbuffers": "2.0.6",
    "flatgeobuf": "",
    "fast_float": "a5ea205",
    "argparse": "8dead89",
    "sqlite_rtree_bulk_load": "",
    "minizip": "",
    "qhull": "8.0.2",  # alg/delaunay.c includes GDAL's internal qhull's sources
}


@pytest.fixture(scope="module", autouse=True)
def needs_x86_64():
    if host_arch() != "x86_64":
        skip_or_fail(f"these builds target the x86_64 host, this is {host_arch()}")
    for v in PYTHONS:
        if shutil.which(f"python{v}") is None:
            skip_or_fail(f"python{v} not on PATH")


@pytest.fixture(scope="module")
def leaky_env(geonox_env, mirror, tmp_path_factory):
    """The session's environment with GDAL_DATA, PROJ_DATA and PROJ_LIB pointing at data
    directories this machine has (as a developer's shell may): a wheel whose test found
    its data through them would pass without carrying any.  geonox must not pass them on."""
    fake = tmp_path_factory.mktemp("machine-data")
    for name in ("gdal", "proj"):
        (fake / name).mkdir()
        (fake / name / "header.dxf").write_text("not GDAL's\n")
    return dict(
        geonox_env,
        GDAL_DATA=str(fake / "gdal"),
        PROJ_DATA=str(fake / "proj"),
        PROJ_LIB=str(fake / "proj"),
    )


def _wheels(wheelhouse: Path, name: str) -> list[Path]:
    wheels = sorted(wheelhouse.glob(f"{name}-*.whl"))
    assert [w.name.split("-")[2] for w in wheels] == ["cp311", "cp312"], wheels
    return wheels


def _check_wheel(wheel: Path, package: str, env: dict, tmp_path: Path) -> None:
    # (apart: grafted_once writes the modules it reads into its directory, and rasterio
    # has one named shutil, which `python -m geonox` would import from its working dir)
    for where in ("modules", "verify"):
        (tmp_path / where).mkdir(exist_ok=True)
    grafted_once(wheel, package, GRAFTED, GDAL_API, tmp_path / "modules")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    assert f"{package}/gdal_data/header.dxf" in names and f"{package}/proj_data/proj.db" in names
    assert verify_errors(wheel, env, tmp_path / "verify") == []
    _check_sbom(wheel)


def _check_sbom(wheel: Path) -> None:
    """GDAL, the libraries beside it and expat inside it, and each third-party copy GDAL's
    build compiled in (and none it did not: no giflib, qhull, ... for these drivers),
    each with its license text in the wheel."""
    from geonox.sbom import read_wheel

    components = {c.name: c for c in read_wheel(wheel)}
    mine = {n: c for n, c in components.items() if c.purl and c.purl.startswith("pkg:generic/")}
    assert {"gdal", "proj", "geos", "sqlite", "expat"} <= set(mine), sorted(mine)
    inside = {n: c.version or "" for n, c in mine.items() if n not in VERSIONS}
    inside.pop("gdal"), inside.pop("expat")
    assert inside == COMPILED_IN, inside
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        sbom = json.loads(zf.read(next(n for n in names if n.endswith("sboms/geonox.cdx.json"))))
    for component in sbom["components"]:
        files = [p["value"] for p in component["properties"] if p["name"] == "geonox:license-file"]
        assert files and all(f in names for f in files), component["name"]
        if component["name"] in COMPILED_IN:
            assert {"name": "geonox:compiled-into", "value": "gdal@3.10.3"} in component[
                "properties"
            ]
    (gdal,) = [d for d in sbom["dependencies"] if d["ref"] == "gdal@3.10.3"]
    assert {r.split("@")[0] for r in gdal["dependsOn"]} >= set(COMPILED_IN) | {"proj", "expat"}


def test_pyogrio_from_its_sdist_passes_its_own_suite(leaky_env, mirror, tmp_path):
    sdist = pypi_sdist("pyogrio", "0.13.0")
    wheelhouse = tmp_path / "wheelhouse"
    deselect = " ".join(f"--deselect {t}" for t in PYOGRIO_NEEDS_MORE)
    # the suite, then where pyogrio found GDAL's data (its wheel's, whatever the env says)
    command = (
        "import os, sys, pytest; "
        "rc = pytest.main(['--pyargs', 'pyogrio', '-m', 'not network', '-q', "
        f"'-p', 'no:cacheprovider', *{deselect.split()!r}]); "
        "import pyogrio; "
        "print('gdal', pyogrio.__gdal_version_string__, 'data', pyogrio.get_gdal_data_path(), "
        "'module', pyogrio.__file__, 'env', sorted(k for k in os.environ "
        "if k in ('GDAL_DATA', 'PROJ_DATA', 'PROJ_LIB'))); sys.exit(rc)"
    )
    where = noxfile(
        tmp_path / "pyogrio",
        project=str(sdist),
        deps=["gdal"],
        versions=VERSIONS,
        sources=gdal_sources(mirror),
        backend="host",
        python=PYTHONS,
        wheelhouse=str(wheelhouse),
        build_env={"PYOGRIO_PACKAGE_DATA": "1"},
        test_requires=["pytest"],
        test_command=f'python -c "{command}"',
    )
    result = nox("-s", "wheels-x86_64", cwd=where, env=leaky_env)
    out = result.stdout
    assert result.returncode == 0, out[-6000:]
    assert re.search(r"deps-x86_64: (building gdal 3\.10\.3 \(shared\)|cached \(key)", out), out[
        -3000:
    ]
    results = suite_results(out)
    assert len(results) == 2 and all(p >= 300 and f == 0 for p, f in results), results
    found = re.findall(r"gdal 3\.10\.3 data (\S+) module (\S+) env \[\]", out)
    assert len(found) == 2, out[-3000:]
    for data, module in found:
        assert Path(data) == Path(module).parent / "gdal_data", (data, module)
    for wheel in _wheels(wheelhouse, "pyogrio-0.13.0"):
        _check_wheel(wheel, "pyogrio", leaky_env, tmp_path)


def test_rasterio_from_its_sdist_reuses_the_gdal_and_passes_a_smoke_suite(
    leaky_env, mirror, tmp_path
):
    """rasterio after pyogrio: the same GDAL (no compiler runs for GDAL, PROJ, GEOS or
    SQLite), its data packaged by PACKAGE_DATA and found from the wheel."""
    sdist = pypi_sdist("rasterio", "1.4.4")
    wheelhouse = tmp_path / "wheelhouse"
    suite = tmp_path / "smoke"  # outside any project: its own rootdir, nobody's conftest
    suite.mkdir()
    shutil.copy(REPO / "tests" / "data" / "rasterio_smoke" / "test_rasterio_smoke.py", suite)
    where = noxfile(
        tmp_path / "rasterio",
        project=str(sdist),
        deps=["gdal"],
        versions=VERSIONS,
        sources=gdal_sources(mirror),
        backend="host",
        python=PYTHONS,
        wheelhouse=str(wheelhouse),
        build_env={"PACKAGE_DATA": "1"},
        test_requires=["pytest"],
        test_command=f"env GEONOX_EXPECT_GDAL=3.10.3 python -m pytest -q -p no:cacheprovider "
        f"{suite / 'test_rasterio_smoke.py'}",
    )
    result = nox("-s", "wheels-x86_64", cwd=where, env=leaky_env)
    out = result.stdout
    assert result.returncode == 0, out[-6000:]
    deps = out.split("Running session build-x86_64")[0]
    assert re.search(r"deps-x86_64: cached \(key [0-9a-f]{16}\)", deps) or re.search(
        r"reused .*gdal 3\.10\.3 \(shared\)", deps
    ), deps[-3000:]
    assert "building" not in deps and " built in " not in deps, deps[-3000:]
    results = suite_results(out)
    assert results == [(8, 0), (8, 0)], results
    for wheel in _wheels(wheelhouse, "rasterio-1.4.4"):
        _check_wheel(wheel, "rasterio", leaky_env, tmp_path)


def test_the_gdal_built_again_at_another_path_is_the_same_bytes(leaky_env, mirror, tmp_path):
    """Issue 24's reproducibility with the host's gcc: the shared deps of pyogrio's
    noxfile (GDAL, expat, PROJ, GEOS and SQLite, the same artifacts shapely and pyproj
    link in test_real_projects) built again in a fresh cache at another path, with the
    session's ccache: every file the same bytes, the text files once each cache's root is
    relocated, and no binary naming either root -- so a compiler that wrote its path in
    would fail this even where the object is the ccache's.  The link and install steps run
    anew (where the build-tree RPATH once made libgeos_c and libgdal differ).  Compiling
    every object anew with ccache off is test_reproducible's (SQLite on the host, zig and
    the container): a ccache-off GEOS, PROJ and GDAL on gcc would add their whole compile
    to the suite (docs/cache.md: what is measured once, what every run tests)."""
    from test_reproducible import deps_built_twice, has_all

    fresh = tmp_path / "elsewhere" / "deeper" / "cache"
    keywords = {
        "project": str(pypi_sdist("pyogrio", "0.13.0")),
        "deps": ["gdal"],
        "versions": VERSIONS,
        "sources": gdal_sources(mirror),
        "backend": "host",
        "python": PYTHONS,
    }
    out, files = deps_built_twice(
        tmp_path,
        keywords,
        leaky_env,
        {**leaky_env, "GEONOX_CACHE_DIR": str(fresh)},
        ("gdal", "expat", "proj", "geos", "sqlite"),
    )
    for name in ("gdal", "expat", "proj", "geos", "sqlite"):  # built there, not reused
        assert re.search(rf"{name} \S+ \((shared|static)\) built in", out), (name, out[-3000:])
    has_all(
        files,
        r"lib/libgdal\.so\.36\.3\.10\.3",
        r"lib/libgeos\.so\.3\.13\.1",
        r"lib/libgeos_c\.so\.1\.\d+\.\d+",
        r"lib/libproj\.so\.25\.[\d.]+",
        r"lib/libsqlite3\.so\.[\d.]+",
        r"lib/pkgconfig/proj\.pc",
        r"lib/cmake/GEOS/geos-targets\.cmake",
        r"bin/geos-config",
        r"share/gdal/header\.dxf",
        r"share/proj/proj\.db",
        r"lib/cmake/gdal/GDAL-targets\.cmake",
        r"bin/gdal-config",
    )
