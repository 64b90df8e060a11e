"""GEOS: libgeos + libgeos_c with CMake, no tests, benchmarks or tools.

Shared with a toolchain that links its C++ runtime into every shared object (zig), GEOS
is built as static PIC archives and then linked into **one** ``libgeos_c.so.1`` that
exports the C API only: libgeos's C++ objects and the C++ runtime they use live in that
one library, so no C++ object, exception or allocation crosses two copies of the runtime.
(Upstream's two libraries would each carry their own libc++, and libgeos_c passes
``geos::geom::Geometry`` objects to libgeos.)  The C++ API (``libgeos``) is then not
offered: consumers of the C API (shapely, GDAL's GEOS support, ...) are unaffected.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from geonox.command import Command
from geonox.recipes import (
    BuildContext,
    Consumer,
    Library,
    LinkMode,
    Provenance,
    Recipe,
    _release,
    ccache_ignoring,
    cmake_commands,
    relocatable_pc,
    unity_args,
)

_URL = "https://download.osgeo.org/geos/geos-{v}.tar.bz2"
RELEASES = {
    r.version: r
    for r in (
        _release(
            "geos",
            "3.14.1",
            _URL.format(v="3.14.1"),
            "3c20919cda9a505db07b5216baa980bacdaa0702da715b43f176fb07eff7e716",
        ),
        _release(
            "geos",
            "3.13.1",
            _URL.format(v="3.13.1"),
            "df2c50503295f325e7c8d7b783aca8ba4773919cde984193850cf9e361dfd28c",
        ),
    )
}


OPTIONS = (
    "-DBUILD_TESTING=OFF",
    "-DBUILD_BENCHMARKS=OFF",
    "-DBUILD_GEOSOP=OFF",
    "-DBUILD_DOCUMENTATION=OFF",
)
#: GEOS has no unity build of its own.  For the releases checked here, these sources do
#: not compile together with others (a file-level ``using namespace`` makes a later
#: file's ``util`` or ``EdgeRing`` ambiguous, two files define the same local class) and
#: are compiled on their own; the other 392 of 439 are compiled in batches (CMake's
#: default of 8), their headers parsed once per batch.  Found by building until it passed;
#: shapely's suite runs against the result.  A release not listed builds file by file.
UNITY_SKIP = {
    "3.13.1": (
        "capi/geos_c.cpp",
        "capi/geos_ts_c.cpp",
        "src/geom/GeometryCollection.cpp",
        "src/geom/HeuristicOverlay.cpp",
        "src/geom/IntersectionMatrix.cpp",
        "src/geom/LineSegment.cpp",
        "src/geom/LineString.cpp",
        "src/geom/LinearRing.cpp",
        "src/geom/prep/PreparedGeometryFactory.cpp",
        "src/geom/prep/PreparedPoint.cpp",
        "src/geom/util/SineStarFactory.cpp",
        "src/geomgraph/DirectedEdgeStar.cpp",
        "src/geomgraph/EdgeEnd.cpp",
        "src/geomgraph/GeometryGraph.cpp",
        "src/io/GeoJSONReader.cpp",
        "src/io/GeoJSONWriter.cpp",
        "src/operation/distance/DistanceOp.cpp",
        "src/operation/intersection/RectangleIntersectionBuilder.cpp",
        "src/operation/overlay/snap/GeometrySnapper.cpp",
        "src/operation/overlay/validate/FuzzyPointLocator.cpp",
        "src/operation/overlay/validate/OffsetPointGenerator.cpp",
        "src/operation/overlayng/Edge.cpp",
        "src/operation/overlayng/EdgeKey.cpp",
        "src/operation/overlayng/EdgeMerger.cpp",
        "src/operation/overlayng/OverlayEdgeRing.cpp",
        "src/operation/overlayng/OverlayUtil.cpp",
        "src/operation/overlayng/PolygonBuilder.cpp",
        "src/operation/polygonize/PolygonizeGraph.cpp",
        "src/operation/relate/EdgeEndBuilder.cpp",
        "src/operation/relate/EdgeEndBundle.cpp",
        "src/operation/relate/RelateComputer.cpp",
        "src/operation/sharedpaths/SharedPathsOp.cpp",
        "src/operation/union/OverlapUnion.cpp",
        "src/operation/union/UnaryUnionOp.cpp",
        "src/operation/valid/IsSimpleOp.cpp",
        "src/operation/valid/IsValidOp.cpp",
        "src/operation/valid/MakeValid.cpp",
        "src/operation/valid/PolygonIntersectionAnalyzer.cpp",
        "src/operation/valid/PolygonTopologyAnalyzer.cpp",
        "src/operation/valid/RepeatedPointRemover.cpp",
        "src/operation/valid/RepeatedPointTester.cpp",
        "src/planargraph/DirectedEdge.cpp",
        "src/precision/SimpleGeometryPrecisionReducer.cpp",
        "src/triangulate/DelaunayTriangulationBuilder.cpp",
        "src/triangulate/VoronoiDiagramBuilder.cpp",
        "src/triangulate/polygon/ConstrainedDelaunayTriangulator.cpp",
        "src/triangulate/quadedge/QuadEdgeSubdivision.cpp",
    ),
}
#: The C API's SONAME, the same in every GEOS release since 3.0.
C_SONAME = "libgeos_c.so.1"
VERSION_SCRIPT = Path(__file__).with_name("geos_c.map")


def options(ctx: BuildContext) -> tuple[str, ...]:
    skip = UNITY_SKIP.get(ctx.version)
    return (*OPTIONS, *(unity_args(skip) if skip else ()))


def commands(ctx: BuildContext) -> list[Command]:
    if ctx.shared_with_static_runtime:
        return one_c_library(ctx)
    # a shared GEOS compiles what a static one does (PIC too) plus CMake's -D<target>_EXPORTS,
    # which no GEOS source reads (its exports are GEOS_DLL, keyed on MSVC's GEOS_DLL_EXPORT):
    # left out of ccache's key, so one link mode reuses the other's objects
    return ccache_ignoring(cmake_commands(ctx, *options(ctx)), "-Dgeos_EXPORTS", "-Dgeos_c_EXPORTS")


def one_c_library(ctx: BuildContext) -> list[Command]:
    """Static PIC archives (the same compiles as a static build: ccache hits), then one
    ``libgeos_c.so.1`` from all of libgeos_c.a plus what it needs of libgeos.a, exporting
    the C API only; the archives and upstream's CMake package (which names them) go."""
    tc, lib = ctx.toolchain, f"{ctx.prefix}/lib"
    return [
        *cmake_commands(dataclasses.replace(ctx, link="static"), *options(ctx)),
        Command(
            "link-c-api",
            (
                *tc.cxx,
                *tc.cxxflags,
                "-shared",
                "-o",
                f"{lib}/{C_SONAME}",
                f"-Wl,-soname,{C_SONAME}",
                f"-Wl,--version-script={VERSION_SCRIPT}",
                "-Wl,--strip-debug",
                "-Wl,--whole-archive",
                f"{lib}/libgeos_c.a",
                "-Wl,--no-whole-archive",
                f"{lib}/libgeos.a",
                "-lm",
            ),
        ),
        Command("dev-link", ("cmake", "-E", "create_symlink", C_SONAME, f"{lib}/libgeos_c.so")),
        Command(
            "drop-archives",
            (
                "cmake",
                "-E",
                "rm",
                "-rf",
                f"{lib}/libgeos_c.a",
                f"{lib}/libgeos.a",
                f"{lib}/cmake/GEOS",
            ),
        ),
    ]


#: What the C++ library needs after it when linked statically.
STATIC_CXX = "-lstdc++ -lm"


def _env(prefix: str, version: str) -> dict[str, str]:
    # shapely 2.0/2.1 read GEOS_CONFIG.  GEOS_INCLUDE_PATH + GEOS_LIBRARY_PATH are left
    # unset on purpose: with them shapely links "-lgeos_c" alone, which fails for a static
    # GEOS, while geos-config answers with the link line of the prefix's mode.
    return {"GEOS_CONFIG": f"{prefix}/bin/geos-config"}


def _finish(prefix: Path, version: str, link: LinkMode) -> None:
    """geos-config and geos.pc: relocatable, and in static mode answering with the static
    link line (a consumer that asks ``--clibs`` of a static GEOS gets ``-lgeos_c -lgeos
    -lstdc++ -lm``; upstream's answer, ``-lgeos_c`` alone, fails to link)."""
    one_library = c_only(prefix, link)
    script = prefix / "bin" / "geos-config"
    if script.is_file():
        text = script.read_text()
        text = re.sub(
            r"^prefix=.*$",
            'prefix=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)',
            text,
            count=1,
            flags=re.M,
        )
        text = re.sub(r"^exec_prefix=.*$", "exec_prefix=${prefix}", text, count=1, flags=re.M)
        text = re.sub(r"^includedir=.*$", "includedir=${prefix}/include", text, count=1, flags=re.M)
        text = re.sub(r"^libdir=.*$", "libdir=${prefix}/lib", text, count=1, flags=re.M)
        if one_library:
            text = _c_only_script(text)
        if link == "static":
            text = text.replace(
                "echo -L${libdir} -lgeos_c\n", f"echo -L${{libdir}} -lgeos_c -lgeos {STATIC_CXX}\n"
            )
            text = text.replace(
                "echo -L${libdir} -lgeos\n", f"echo -L${{libdir}} -lgeos {STATIC_CXX}\n"
            )
        script.write_text(text)
    pc = prefix / "lib" / "pkgconfig" / "geos.pc"
    if pc.is_file():
        text = relocatable_pc(pc.read_text())
        if link == "static":
            text = re.sub(
                r"^Libs: .*$",
                f"Libs: -L${{libdir}} -lgeos_c -lgeos {STATIC_CXX}",
                text,
                count=1,
                flags=re.M,
            )
        if one_library:
            text = re.sub(r"^Libs.private: .*\n", "", text, flags=re.M)
        pc.write_text(text)
    if one_library:
        _c_only_cmake_package(prefix, version)


def c_only(prefix: Path, link: LinkMode) -> bool:
    """Was this shared GEOS built as one C API library (:func:`one_c_library`)?"""
    lib = prefix / "lib"
    return link == "shared" and (lib / C_SONAME).is_file() and not any(lib.glob("libgeos.so*"))


def _c_only_script(text: str) -> str:
    """geos-config of the one C API library: ``--libs`` answers the C API (upstream's
    ticket #497 asks for that alias anyway); the C++ library and the archives are refused."""
    refuse = (
        'echo "geos-config: this GEOS was built by geonox as one C API library '
        "(libgeos_c, with a static C++ runtime): the C++ library and static archives "
        'are not available" >&2; exit 1'
    )
    text = text.replace("      # TODO: make an alias for --clibs\n", "")
    text = text.replace("      # see http://trac.osgeo.org/geos/ticket/497\n", "")
    text = re.sub(
        r"(--libs\)\n\s*)echo -L\$\{libdir\} -lgeos\n", r"\1echo -L${libdir} -lgeos_c\n", text
    )
    for option in ("--cclibs", "--static-clibs", "--static-cclibs"):
        text = re.sub(
            rf"({re.escape(option)}\)\n\s*)echo [^\n]*\n", lambda m: f"{m.group(1)}{refuse}\n", text
        )
    return text


def _c_only_cmake_package(prefix: Path, version: str) -> None:
    """A CMake package with the one target this GEOS has, ``GEOS::geos_c``, relative to
    where it lies (upstream's package names the archives that are gone)."""
    package = prefix / "lib" / "cmake" / "GEOS"
    package.mkdir(parents=True, exist_ok=True)
    (package / "geos-config.cmake").write_text(
        "\n".join(
            [
                "# geonox: GEOS's C API as one library (libgeos is linked into it); no GEOS::geos",
                "get_filename_component(_geos_prefix "
                '"${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)',
                "if(NOT TARGET GEOS::geos_c)",
                "  add_library(GEOS::geos_c SHARED IMPORTED)",
                "  set_target_properties(GEOS::geos_c PROPERTIES",
                f'    IMPORTED_LOCATION "${{_geos_prefix}}/lib/{C_SONAME}"',
                f'    IMPORTED_SONAME "{C_SONAME}"',
                '    INTERFACE_INCLUDE_DIRECTORIES "${_geos_prefix}/include")',
                "endif()",
                "unset(_geos_prefix)",
                "",
            ]
        )
    )
    (package / "geos-config-version.cmake").write_text(
        "\n".join(
            [
                f'set(PACKAGE_VERSION "{version}")',
                'string(REGEX MATCH "^[0-9]+" _geos_major "${PACKAGE_FIND_VERSION}")',
                "if(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION "
                'OR NOT _geos_major STREQUAL "3")',
                "  set(PACKAGE_VERSION_COMPATIBLE FALSE)",
                "else()",
                "  set(PACKAGE_VERSION_COMPATIBLE TRUE)",
                "  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)",
                "    set(PACKAGE_VERSION_EXACT TRUE)",
                "  endif()",
                "endif()",
                "",
            ]
        )
    )


RECIPE = Recipe(
    name="geos",
    releases=RELEASES,
    default_version="3.14.1",
    commands=commands,
    consumer=Consumer(env=_env, finish=_finish),
    # libgeos (C++) and libgeos_c (the C API over it) are two libraries of one recipe.
    libraries=(
        Library(
            "geos", ("_ZN4geos", "_ZNK4geos"), rb"Invalid number of points in LinearRing found "
        ),
        Library("geos_c", ("GEOS",), rb"Argument is not a LineString"),
    ),
    cxx=True,
    shared_with_static_runtime=True,  # one_c_library
    provenance=Provenance(
        supplier="OSGeo",
        cpe_vendor="osgeo",
        cpe_product="geos",
        # GEOS is LGPL 2.1+; it compiles in ryu (Apache-2.0 OR BSL-1.0)
        license="LGPL-2.1-or-later AND (Apache-2.0 OR BSL-1.0)",
        license_files=("COPYING", "src/deps/ryu/LICENSE"),
    ),
)
