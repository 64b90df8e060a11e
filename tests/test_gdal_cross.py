"""GDAL off the host: pyogrio 0.13.0 from its sdist cross-built by zig for aarch64 and
tested under QEMU, and built in the x86_64 container stand-in by its gcc 10, each passing
pyogrio's own suite (test_gdal.py: the host, its helpers and what every wheel must hold).
A file of its own so that the three GDAL builds (host, zig aarch64, gcc 10) can run on
two workers at once (pytest-xdist deals files, not tests)."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
from conftest import (
    gdal_sources,
    grafted_once,
    nox,
    pypi_sdist,
    standin_or_skip,
    suite_results,
    verify_errors,
)
from conftest import keyword_noxfile as noxfile
from test_gdal import (
    GDAL_API,
    GRAFTED,
    PYOGRIO_NEEDS_MORE,
    VERSIONS,
    _check_sbom,
    _check_wheel,
    needs_x86_64,  # noqa: F401 (the module's autouse fixture)
)

pytestmark = pytest.mark.e2e


def _pyogrio_suite_in(
    image: str, arch: str, env: dict, mirror: Path, tmp_path: Path, **keywords
) -> str:
    """pyogrio from its sdist for ``arch`` on CPython 3.11 (``keywords``: the backend and
    policy), tested with its own suite in ``image`` (pinned first): the run's output, the
    run having succeeded.  The wheel lands in ``tmp_path / "wheelhouse"``."""
    deselect = " ".join(f"--deselect {t}" for t in PYOGRIO_NEEDS_MORE)
    where = noxfile(
        tmp_path / "pyogrio",
        project=str(pypi_sdist("pyogrio", "0.13.0")),
        deps=["gdal"],
        versions=VERSIONS,
        sources=gdal_sources(mirror),
        archs=[arch],
        python=["3.11"],
        wheelhouse=str(tmp_path / "wheelhouse"),
        images={arch: image},
        container_env=["PIP_CERT"],
        build_env={"PYOGRIO_PACKAGE_DATA": "1"},
        test_requires=["pytest"],
        test_command='python -m pytest --pyargs pyogrio -m "not network" -q '
        f"-p no:cacheprovider {deselect}",
        **keywords,
    )
    pinned = nox("-s", "pin-images", cwd=where, env=env)
    assert pinned.returncode == 0, pinned.stdout[-3000:]
    result = nox("-s", f"wheels-{arch}", cwd=where, env=env)
    assert result.returncode == 0, result.stdout[-6000:]
    return result.stdout


def test_pyogrio_cross_built_by_zig_for_aarch64_passes_its_suite_under_qemu(
    geonox_env, mirror, tmp_path
):
    """pyogrio from its sdist cross-built by zig for aarch64 against a zig libgdal (one
    library with libc++ inside, exporting what the bindings import) beside the
    one-library PROJ and GEOS test_zig.py builds for manylinux2014 (reused here: their keys
    are the same), its suite passing under QEMU in the arm64 bookworm stand-in (pyogrio
    0.13 needs CPython >= 3.10; bullseye's is 3.9)."""
    image = standin_or_skip("aarch64", "bookworm")
    out = _pyogrio_suite_in(
        image, "aarch64", geonox_env, mirror, tmp_path, backend="zig", policy="manylinux2014"
    )
    assert "deps-aarch64: runs on zig aarch64-linux-gnu.2.17" in out, out[-3000:]
    assert re.search(r"test-aarch64-3\.11: runs on docker \S+@sha256:[0-9a-f]{64} \(aarch64\)", out)
    results = suite_results(out)
    assert len(results) == 1 and results[0][0] >= 300 and results[0][1] == 0, results
    (wheel,) = (tmp_path / "wheelhouse").glob("pyogrio-0.13.0-cp311-*.whl")
    assert "manylinux2014_aarch64" in wheel.name, wheel.name
    # libgdal with GDAL's C++ and libc++ inside: no libc++ or libstdc++ grafted beside it
    zig_grafted = dict(GRAFTED, libgdal=r"36\.3\.10\.3", libgeos_c=r"1")
    del zig_grafted["libgeos"]  # under zig GEOS is libgeos_c alone
    (tmp_path / "modules").mkdir()
    grafted_once(wheel, "pyogrio", zig_grafted, GDAL_API, tmp_path / "modules")
    with zipfile.ZipFile(wheel) as zf:
        libs = [n for n in zf.namelist() if n.startswith("pyogrio.libs/")]
    assert not [n for n in libs if re.search(r"lib(c\+\+|stdc\+\+)", n)], libs
    assert verify_errors(wheel, geonox_env, tmp_path) == []
    _check_sbom(wheel)


def test_pyogrio_in_the_container_stand_in_with_its_gcc_10(geonox_env, mirror, tmp_path):
    """pyogrio built in the x86_64 stand-in image (bullseye's gcc 10, C++17; CPython 3.11
    built from source there): GDAL, PROJ, GEOS and SQLite shared and built by the image's
    compiler, the wheel repaired there and pyogrio's own suite passing there."""
    image = standin_or_skip("x86_64")
    out = _pyogrio_suite_in(
        image, "x86_64", geonox_env, mirror, tmp_path, backend="docker", policy="manylinux_2_31"
    )
    assert re.search(r"deps-x86_64: runs on docker 127\.0\.0\.1:5000/\S+@sha256:", out)
    assert re.search(r"gdal 3\.10\.3 \(shared\) .*\(cc \(Debian 10\.2\.1", out) or re.search(
        r"deps-x86_64: cached \(key", out
    ), out[-3000:]
    results = suite_results(out)
    assert len(results) == 1 and results[0][0] >= 300 and results[0][1] == 0, results
    (wheel,) = (tmp_path / "wheelhouse").glob("pyogrio-0.13.0-cp311-*.whl")
    assert wheel.name.endswith("manylinux_2_31_x86_64.whl"), wheel.name
    _check_wheel(wheel, "pyogrio", geonox_env, tmp_path)
