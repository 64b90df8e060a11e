"""verify against wheels nobody here wrote: the release wheels PyPI ships for shapely,
pyproj and numpy install and work everywhere their tags admit (and ``auditwheel show``
accepts them), so verify must find no *error* in them; what it does find is house style
(Cython's exported ``__pyx_module_is_main_*``, helper exports) and is reported as warnings.
The wheels are downloaded once (tests/conftest.py ``pypi_download``)."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
from conftest import MUSL_X86, pypi_download

from geonox.verify import format_table, verify_wheel

pytestmark = pytest.mark.network  # the wheels come from PyPI (once per machine)

X86 = ("--only-binary", ":all:", "--platform", "manylinux2014_x86_64", "--python-version", "3.12")
ARM = ("--only-binary", ":all:", "--platform", "manylinux2014_aarch64", "--python-version", "3.12")
#: rasterio 1.4.4 and pyogrio 0.13.0 ship manylinux_2_28 wheels only (fiona 1.10.1: x86_64 only)
X86_228 = (
    "--only-binary",
    ":all:",
    "--platform",
    "manylinux_2_28_x86_64",
    "--python-version",
    "3.12",
)
ARM_228 = (
    "--only-binary",
    ":all:",
    "--platform",
    "manylinux_2_28_aarch64",
    "--python-version",
    "3.12",
)

#: musllinux (PEP 656) and free-threaded (cp313t) wheels, as shapely and pyproj ship them
#: (x86_64's musllinux arguments: conftest.MUSL_X86)
MUSL_ARM = (
    "--only-binary",
    ":all:",
    "--platform",
    "musllinux_1_2_aarch64",
    "--python-version",
    "3.13",
)
FT_X86 = ("--only-binary", ":all:", "--python-version", "3.13", "--abi", "cp313t")
FT_X86_2014 = (*FT_X86, "--platform", "manylinux2014_x86_64")
FT_X86_228 = (*FT_X86, "--platform", "manylinux_2_28_x86_64")

REAL = {
    "shapely-x86_64": ("shapely==2.1.2", X86),
    "shapely-aarch64": ("shapely==2.1.2", ARM),
    "pyproj-3.6-x86_64": ("pyproj==3.6.1", X86),
    "pyproj-3.6-aarch64": ("pyproj==3.6.1", ARM),
    "pyproj-3.7-x86_64": ("pyproj==3.7.1", X86),
    "numpy-x86_64": ("numpy==2.2.6", X86),
    # the GDAL bindings: libgdal grafted with PROJ, GEOS, SQLite, ... beside it
    "rasterio-x86_64": ("rasterio==1.4.4", X86_228),
    "rasterio-aarch64": ("rasterio==1.4.4", ARM_228),
    "fiona-x86_64": ("fiona==1.10.1", X86),
    "pyogrio-x86_64": ("pyogrio==0.13.0", X86_228),
    "pyogrio-aarch64": ("pyogrio==0.13.0", ARM_228),
    "shapely-musllinux-x86_64": ("shapely==2.1.2", MUSL_X86),
    "shapely-musllinux-aarch64": ("shapely==2.1.2", MUSL_ARM),
    "shapely-cp313t-x86_64": ("shapely==2.1.2", FT_X86_2014),
    # pyproj 3.8.0's _compat keeps a DT_RUNPATH of its build machine (needing only libc):
    # a warning, not an error (the wheel loads the same everywhere)
    "pyproj-musllinux-x86_64": ("pyproj==3.8.0", MUSL_X86),
    "pyproj-cp313t-x86_64": ("pyproj==3.7.2", FT_X86_228),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_release_wheels_have_no_error(name):
    requirement, args = REAL[name]
    wheel = pypi_download(requirement, *args)
    report = verify_wheel(wheel)
    table = format_table([report])
    assert report.ok, table
    assert report.warnings, table  # they are not perfect: the findings are still shown
    assert {v.rule for v in report.warnings} <= {
        "exported-symbols",
        "unversioned-libc",
        "undeclared-bundle",
        "rpath",
        "musl-relr",
    }, table
    if "musllinux" in name:
        # musl has no symbol versions: no glibc rule applies, the library list does
        assert report.tag_policy == "musllinux_1_2", table
        assert not [f for f in report.files if {"GLIBC", "GLIBCXX"} & set(f.max_versions)], table
        assert all(not f.ldd_checked for f in report.files), table  # no musl loader context
        # the libgcc_s grafted from Alpine uses DT_RELR (musl >= 1.2.4): shown, not failed
        relr = {
            v.file.split("/")[-1].split("-")[0] for v in report.warnings if v.rule == "musl-relr"
        }
        assert "libgcc_s" in relr, table
    # no RECORD of a release wheel is wrong
    assert not [v for v in report.violations if v.rule == "record"], table
    # they bundle PROJ/GEOS and say so nowhere scanners look: a warning, or with
    # --require-sbom (geonox's own gate) an error
    if any(f.libraries for f in report.files):
        strict = verify_wheel(wheel, require_sbom=True)
        assert "undeclared-bundle" in {v.rule for v in strict.errors}, format_table([strict])
    libs = [f for f in report.files if f.kind == "shared-library"]
    assert libs and "bundled libraries: " in table
    if report.arch == "x86_64" and "musllinux" not in name:
        # grafted libraries are checked with ldd through the module that loads them (the
        # RPATH context the loader uses), not on their own (where libgeos_c cannot find
        # libgeos: it has no RUNPATH of its own)
        for lib in libs:
            assert lib.loaded_by and lib.ldd_checked, (lib.path, table)
    if name.startswith("shapely"):
        assert sorted(lib for f in libs for lib in f.libraries) == ["geos", "geos_c"]
    if "cp313t" in name:
        assert all("cpython-313t" in f.path for f in report.files if f.kind == "extension")
    if name.startswith("pyproj"):
        assert sorted(lib for f in libs for lib in f.libraries) == ["proj", "sqlite3"]
    if name.startswith(("rasterio", "fiona", "pyogrio")):
        assert "gdal" in {lib for f in libs for lib in f.libraries}, table


def test_a_module_that_relies_on_the_interpreters_libm_is_a_warning():
    """pandas' timedeltas module calls nextafter without libm in its DT_NEEDED: ldd -r
    calls it undefined, yet every CPython process has libm loaded (the interpreter links
    it), so the wheel works everywhere its tag admits: a warning naming -lm, no error."""
    wheel = pypi_download(
        "pandas==3.1.1", "--only-binary", ":all:", "--platform", "manylinux_2_24_x86_64",
        "--python-version", "3.12",
    )  # fmt: skip
    report = verify_wheel(wheel)
    table = format_table([report])
    assert report.ok, table
    (ldd,) = [v for v in report.warnings if v.rule == "ldd"]
    assert "timedeltas" in ldd.file and "nextafter" in ldd.detail and "-lm" in ldd.detail


def _version_script_matches(script: Path, symbols: list[str]) -> list[str]:
    """The symbols of ``symbols`` (mangled) that the version script's global patterns do not
    match: C globs against the name, extern "C++" ones against the demangled name."""
    import fnmatch
    import re
    import subprocess

    text = re.sub(r"/\*.*?\*/", "", script.read_text(), flags=re.S)
    cxx_block = re.search(r'extern "C\+\+"\s*\{(.*?)\};', text, flags=re.S)
    cxx = [p.strip() for p in cxx_block.group(1).split(";") if p.strip()] if cxx_block else []
    glob = text.split("global:", 1)[1].split("local:", 1)[0]
    if cxx_block:
        glob = glob.replace(cxx_block.group(0), "")
    c = [p.strip() for p in glob.split(";") if p.strip()]
    demangled = dict(zip(symbols, subprocess.run(
        ["c++filt"], input="\n".join(symbols), capture_output=True, text=True, check=True
    ).stdout.splitlines()))  # fmt: skip
    return [
        s for s in symbols
        if not any(fnmatch.fnmatchcase(s, p) for p in c)
        and not any(fnmatch.fnmatchcase(demangled[s], p) for p in cxx)
    ]  # fmt: skip


def test_zig_libgdal_exports_what_the_bindings_import(tmp_path):
    """geonox's gdal.map (a zig libgdal's exports) is derived from what the extension
    modules of rasterio's, fiona's and pyogrio's PyPI wheels import from the libgdal they
    bundle: every such symbol is matched, C API and the few C++ entry points alike."""
    from geonox.elf import read_elf
    from geonox.recipes.gdal import VERSION_SCRIPT

    imported: set[str] = set()
    for requirement, platform in (
        ("rasterio==1.4.4", X86_228), ("fiona==1.10.1", X86), ("pyogrio==0.13.0", X86_228)
    ):  # fmt: skip
        wheel = pypi_download(requirement, *platform)
        out = tmp_path / wheel.name
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(out)
        (libgdal,) = list(out.glob("*.libs/libgdal*.so*"))
        exported = {s.name for s in read_elf(libgdal).exported}
        for module in out.rglob("*.so"):
            if ".libs" in module.parent.name:
                continue
            imported |= {s.name for s in read_elf(module).undefined if s.name in exported}
    assert len(imported) > 300 and any(s.startswith("_Z") for s in imported)
    assert _version_script_matches(VERSION_SCRIPT, sorted(imported)) == []
    # and the check can fail: a symbol none of its patterns names
    assert _version_script_matches(VERSION_SCRIPT, ["GEOSversion", "_ZN11GDALDataset5CloseEv"]) == [
        "GEOSversion",
        "_ZN11GDALDataset5CloseEv",
    ]


def test_a_second_copy_of_a_bundled_library_is_an_error(tmp_path):
    """pyproj's real wheel plus a second libproj (vendored beside the modules): two copies."""
    wheel = pypi_download("pyproj==3.6.1", *X86)
    bad = tmp_path / wheel.name
    shutil.copy(wheel, bad)
    with zipfile.ZipFile(bad, "a") as zf:
        (grafted,) = [n for n in zf.namelist() if n.startswith("pyproj.libs/libproj-")]
        zf.writestr("pyproj/libproj.so.25", zf.read(grafted))
    report = verify_wheel(bad)
    (dup,) = [v for v in report.errors if v.rule == "duplicate-library"]
    assert "proj is in 2 files" in dup.detail
    assert grafted in dup.detail and "pyproj/libproj.so.25" in dup.detail
    assert "exports proj_" in dup.detail  # the evidence: its API defined in both
    assert not report.ok


def test_ldd_on_a_grafted_library_alone_would_be_a_false_error(tmp_path):
    """The defect the loader context fixes, shown on the real file: shapely's libgeos_c has
    no RUNPATH, so ``ldd -r`` on it alone cannot find libgeos; through lib.so it can."""
    import subprocess

    wheel = pypi_download("shapely==2.1.2", *X86)
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(tmp_path)
    (geos_c,) = (tmp_path / "shapely.libs").glob("libgeos_c-*")
    (module,) = (tmp_path / "shapely").glob("lib.cpython-*.so")
    alone = subprocess.run(["ldd", "-r", str(geos_c)], capture_output=True, text=True)
    assert "libgeos-" in alone.stdout and "not found" in alone.stdout
    through = subprocess.run(["ldd", "-r", str(module)], capture_output=True, text=True)
    assert "not found" not in through.stdout and str(Path(geos_c).name) in through.stdout


def test_auditwheels_own_sbom_is_read_and_kept_beside_geonoxs(tmp_path, mirror):
    """xgboost 3.4.1's release wheel carries the SBOM auditwheel 6.8 wrote (libgomp, grafted
    from AlmaLinux's rpm): ``geonox sbom`` lists that library (and not the wheel itself,
    which auditwheel also names), verify finds no error in it, and geonox's SBOM written
    into the same wheel sits beside auditwheel's file without touching it."""
    import json
    import subprocess
    import sys

    from geonox import __version__
    from geonox.sbom import BuildFacts, Bundled, add_to_wheel, read_wheel

    wheel = pypi_download(
        "xgboost==3.4.1",
        "--only-binary",
        ":all:",
        "--platform",
        "manylinux_2_28_x86_64",
        "--python-version",
        "3.12",
    )
    theirs = "xgboost-3.4.1.dist-info/sboms/auditwheel.cdx.json"
    with zipfile.ZipFile(wheel) as zf:
        original = zf.read(theirs)
    (gomp,) = read_wheel(wheel)
    assert gomp.name == "libgomp" and gomp.purl.startswith("pkg:rpm/almalinux/libgomp@")
    assert gomp.sbom == theirs
    report = verify_wheel(wheel)
    assert report.ok, format_table([report])
    listed = subprocess.run(
        [sys.executable, "-m", "geonox", "sbom", wheel], capture_output=True, text=True
    )
    assert (
        listed.returncode == 0
        and "libgomp 8.5.0" in listed.stdout
        and "auditwheel.cdx.json" in listed.stdout
    )

    both = tmp_path / wheel.name
    shutil.copy(wheel, both)
    sqlite = Bundled(
        name="sqlite",
        version="3.52.0",
        url="https://sqlite.org/x.tar.gz",
        sha256="0" * 64,
        link="static",
        license="blessing",
        supplier="SQLite",
        cpe="cpe:2.3:a:sqlite:sqlite:3.52.0:*:*:*:*:*:*:*",
        depends=(),
        license_files=(),
    )
    ours = add_to_wheel(both, [sqlite], BuildFacts(__version__, "gcc-x"))
    with zipfile.ZipFile(both) as zf:
        assert zf.read(theirs) == original  # never clobbered
        assert json.loads(zf.read(ours))["components"][0]["name"] == "sqlite"
    assert sorted(c.name for c in read_wheel(both)) == ["libgomp", "sqlite"]
    assert not [v for v in verify_wheel(both).violations if v.rule == "record"]
