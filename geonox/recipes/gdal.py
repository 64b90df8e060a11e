"""GDAL: libgdal with CMake, against the prefix's PROJ, GEOS, SQLite and expat; its own
internal copies of libtiff, libgeotiff, libjpeg, libpng, zlib, json-c, LERC and shapelib;
iconv from the C library; no apps, tests, docs or bindings.

**Link mode.** Shared by default (``default_link``): rasterio, fiona and pyogrio have
several extension modules, and a static libgdal in each would be several copies with
several states (GDAL's own advice).  PROJ, GEOS and SQLite then default to shared as well
(``link`` defaults to shared when deps include gdal): each is one library beside libgdal,
grafted once, which a project's own modules may also link without a second copy; expat is
static inside libgdal (only GDAL uses it).

**Under zig** (a static C++ runtime in every shared object) libgdal is one library with
GDAL's C++ classes and libc++ inside, exporting only what rasterio, fiona and pyogrio
import (``gdal.map``), as PROJ and GEOS are there.

**Drivers.** ``GDAL_BUILD_OPTIONAL_DRIVERS=OFF`` and ``OGR_BUILD_OPTIONAL_DRIVERS=OFF``,
then :data:`DEFAULT_DRIVERS` on, plus ``[tool.geonox.options.gdal] drivers = [...]``
(GDAL's CMake names: ``netcdf``, ``parquet``, …; a driver whose library is not in the
prefix is left off by GDAL's configure, which says so in the log).

**No build paths inside.** GDAL compiles its install data, plugin and sysconfig
directories in as fallbacks; in a wheel those are paths into the build machine's cache, so
they are left out (``-U`` after GDAL's own ``-D``), as for PROJ: consumers ship
``gdal_data`` and point GDAL at it.

**The repacked source.** Debian's repack of 3.10.3 (the mirror's) lacks two CRS
dictionaries GDAL's configure copies (``ogr/data/cubewerx_extra.wkt``,
``ogr/data/ecw_cs.wkt``, for drivers outside the default set): empty files stand in for
any that are missing.
"""

from __future__ import annotations

import re
from pathlib import Path

from geonox.command import Command
from geonox.recipes import (
    BuildContext,
    Consumer,
    Embedded,
    Library,
    LinkMode,
    Provenance,
    Recipe,
    _release,
    cmake_commands,
    sources_read_command,
    unity_args,
)

RELEASES = {
    r.version: r
    for r in (
        # upstream's archives and the sha256s it publishes (conda-forge's gdal-feedstock
        # records 3.13.1's; the mirror's README names 3.10.3's)
        _release(
            "gdal",
            "3.13.1",
            "https://download.osgeo.org/gdal/3.13.1/gdal-3.13.1.tar.xz",
            "7398fb132753140740fac4f099f0dbe49d1ad074c4162290c308e067c46b7f92",
        ),
        _release(
            "gdal",
            "3.10.3",
            "https://download.osgeo.org/gdal/3.10.3/gdal-3.10.3.tar.gz",
            "e4bf7f104acbcb3e2d16c97fd1af2b92b28d0ba59d17d976e3ef08b794f4153b",
        ),
    )
}

#: GDAL's CMake names of its raster drivers (GDAL_ENABLE_DRIVER_<NAME>, 3.10's CMake files).
RASTER_DRIVERS = frozenset(
    "aaigrid adrg aigrid airsar avif basisu_ktx2 blx bmp bsb cals ceos ceos2 coasp cosar "
    "ctg daas dds derived dimap dted ecw eeda elas envisat ers esric exr fit fits geor "
    "georaster gff gif grib gsg gta gti gtiff gxf hdf4 hdf5 heif hf2 hfa http idrisi "
    "ilwis iris jaxapalsar jdem jp2kak jp2lura jp2mrsid jp2openjpeg jpeg jpegxl jpipkak "
    "kea kmlsuperoverlay l1b leveller map mbtiles mrf mrsid msg msgn netcdf ngsgeoid nitf "
    "northwood null ogcapi openjpeg ozi pcidsk pcraster pdf pds plmosaic png "
    "postgisraster prf r rasterlite raw rdb rik rmf rs2 safe saga sde sdts sentinel2 sgi "
    "sigdem snap_tiff srtmhgt stacit stacta terragen tga til tiledb tsx usgsdem vrt wcs "
    "webp wms wmts xpm xyz zarr zmap".split()
)
#: ... and of its vector drivers (OGR_ENABLE_DRIVER_<NAME>).
VECTOR_DRIVERS = frozenset(
    "amigocloud arrow avc cad carto csv csw dgn dwg dxf edigeo elastic filegdb flatgeobuf "
    "geoconcept geojson georss gml gmlas gmt gpkg gpsbabel gpx gtfs hana idb idrisi ili "
    "jml jsonfg kml libkml lvbag mapml miramon mongodbv3 mssqlspatial mvt mysql nas ngw "
    "ntf oapif oci odbc ods ogdi openfilegdb osm parquet pds pg pgdump pgeo plscenes "
    "pmtiles s57 sdts selafin shape sosi sqlite svg sxf tab tiger vdv vfk vrt wasp wfs "
    "xls xlsx xodr".split()
)
#: What rasterio's, fiona's and pyogrio's users read and write (MEM is always built; COG
#: is part of GTiff): GeoTIFF/COG, VRT, PNG, JPEG; GeoPackage, SQLite, GeoJSON (and
#: GeoJSONSeq), ESRI Shapefile, FlatGeobuf, CSV, OpenFileGDB, GPX, GML, KML, OGR's VRT,
#: OpenStreetMap (.osm, .pbf: with SQLite and expat at hand, and pyogrio's suite reads
#: one), and DXF: fiona and pyogrio find GDAL's data by its header.dxf (installed with the
#: DXF driver), and refuse to import without it.
DEFAULT_DRIVERS = (
    "gtiff", "vrt", "png", "jpeg",
    "gpkg", "sqlite", "geojson", "shape", "flatgeobuf", "csv", "openfilegdb", "gpx", "gml",
    "kml", "osm", "dxf",
)  # fmt: skip
#: GDAL's internal copies of third-party libraries, used instead of any on the system.
INTERNAL = ("ZLIB", "TIFF", "GEOTIFF", "JPEG", "PNG", "JSONC", "LERC", "SHAPELIB")
#: The third-party code in GDAL's source tree (its internal libraries, and header-only or
#: vendored code its drivers compile in): each is a component of the SBOM when the build
#: read any of its files.  tests/test_sbom.py checks that every directory of GDAL's tree
#: with a license file of its own is named here.
EMBEDDED = (
    Embedded(
        "libtiff", ("frmts/gtiff/libtiff/",), "libtiff", ("frmts/gtiff/libtiff/tiff.h",),
        "frmts/gtiff/libtiff/tiffvers.h", r"Version (\d+)\.(\d+)\.(\d+)",
        "libtiff", ("libtiff", "libtiff"),
    ),
    Embedded(
        "libgeotiff", ("frmts/gtiff/libgeotiff/",), "MIT", ("frmts/gtiff/libgeotiff/geotiff.h",),
        "frmts/gtiff/libgeotiff/geotiff.h", r"LIBGEOTIFF_VERSION (\d)(\d)(\d)\d",
        "OSGeo", ("osgeo", "libgeotiff"),
    ),
    Embedded(  # 8- and 12-bit builds of one IJG 6b
        "libjpeg", ("frmts/jpeg/libjpeg/", "frmts/jpeg/libjpeg12/"), "IJG",
        ("frmts/jpeg/libjpeg/README",), "frmts/jpeg/libjpeg/jversion.h", r'JVERSION\s+"(\w+)',
        "Independent JPEG Group", ("ijg", "libjpeg"),
    ),
    Embedded(
        "libpng", ("frmts/png/libpng/",), "libpng-2.0", ("frmts/png/libpng/LICENSE",),
        "frmts/png/libpng/png.h", r'PNG_LIBPNG_VER_STRING "(\d+)\.(\d+)\.(\d+)"',
        "libpng", ("libpng", "libpng"),
    ),
    Embedded(
        "zlib", ("frmts/zlib/",), "Zlib", ("frmts/zlib/zlib.h",),
        "frmts/zlib/zlib.h", r'ZLIB_VERSION "(\d+)\.(\d+)\.(\d+)"', "zlib", ("zlib", "zlib"),
    ),
    Embedded(
        "json-c", ("ogr/ogrsf_frmts/geojson/libjson/",), "MIT",
        ("ogr/ogrsf_frmts/geojson/libjson/COPYING",),
        "ogr/ogrsf_frmts/geojson/libjson/json_c_version.h", r'JSON_C_VERSION "(\d+)\.(\d+)"',
        "json-c", ("json-c", "json-c"),
    ),
    Embedded(  # a commit of Esri's repository, no release number
        "lerc", ("third_party/LercLib/",), "Apache-2.0",
        ("third_party/LercLib/LICENSE", "third_party/LercLib/NOTICE"),
        "third_party/LercLib/README_GDAL.TXT", r"commit ([0-9a-f]{7})", "Esri", ("esri", "lerc"),
    ),
    Embedded(  # compiled through ogr/ogrsf_frmts/shape's *_wrapper.cpp
        "shapelib",
        tuple(f"ogr/ogrsf_frmts/shape/{f}" for f in (
            "shpopen.c", "dbfopen.c", "shptree.c", "sbnsearch.c", "shapefil.h"
        )),
        "MIT OR LGPL-2.0-or-later", ("ogr/ogrsf_frmts/shape/shpopen.c",),
        "ogr/ogrsf_frmts/shape/shapefil.h",
        r"SHAPELIB_VERSION_MAJOR (\d+)\s+#define SHAPELIB_VERSION_MINOR (\d+)"
        r"\s+#define SHAPELIB_VERSION_MICRO (\d+)",
        "OSGeo", ("osgeo", "shapelib"),
    ),
    Embedded(
        "fast_float", ("third_party/fast_float/",), "MIT", ("third_party/fast_float/LICENSE-MIT",),
        "third_party/fast_float/PROVENANCE.TXT", r"commit/([0-9a-f]{7})", "fast_float",
    ),
    Embedded(
        "flatbuffers", ("ogr/ogrsf_frmts/flatgeobuf/flatbuffers/",), "Apache-2.0",
        ("ogr/ogrsf_frmts/flatgeobuf/flatbuffers/LICENSE",),
        "ogr/ogrsf_frmts/flatgeobuf/flatbuffers/base.h",
        r"FLATBUFFERS_VERSION_MAJOR (\d+)\s+#define FLATBUFFERS_VERSION_MINOR (\d+)"
        r"\s+#define FLATBUFFERS_VERSION_REVISION (\d+)",
        "Google", ("google", "flatbuffers"),
    ),
    Embedded(  # FlatGeobuf's own generated headers and packed R-tree
        "flatgeobuf",
        tuple(f"ogr/ogrsf_frmts/flatgeobuf/{f}" for f in (
            "packedrtree.cpp", "packedrtree.h", "feature_generated.h", "header_generated.h"
        )),
        "ISC", ("ogr/ogrsf_frmts/flatgeobuf/LICENSE",), "", "", "FlatGeobuf",
    ),
    Embedded(
        "argparse", ("apps/argparse/",), "MIT", ("apps/argparse/argparse.hpp",),
        "apps/argparse/README.TXT", r"blob/([0-9a-f]{7})", "p-ranav",
    ),
    Embedded(
        "sqlite_rtree_bulk_load", ("ogr/ogrsf_frmts/sqlite/sqlite_rtree_bulk_load/",), "MIT",
        ("ogr/ogrsf_frmts/sqlite/sqlite_rtree_bulk_load/sqlite_rtree_bulk_load.c",),
        "", "", "OSGeo",
    ),
    Embedded(
        "libertiff", ("third_party/libertiff/",), "MIT", ("third_party/libertiff/libertiff.hpp",),
        "", "", "OSGeo",
    ),
    Embedded(
        "qhull", ("alg/internal_libqhull/",), "Qhull", ("alg/internal_libqhull/COPYING.txt",),
        "alg/internal_libqhull/global_r.c", r'qhull_r (\d+)\.(\d+)\.(\d+)', "Qhull",
        ("qhull", "qhull"),
    ),
    Embedded(
        "giflib", ("frmts/gif/giflib/",), "MIT", ("frmts/gif/giflib/COPYING",),
        "frmts/gif/giflib/gif_lib.h",
        r"GIFLIB_MAJOR (\d+)\s+#define GIFLIB_MINOR (\d+)\s+#define GIFLIB_RELEASE (\d+)",
        "giflib", ("giflib_project", "giflib"),
    ),
    Embedded(
        "libcsf", ("frmts/pcraster/libcsf/",), "BSD-3-Clause", ("frmts/pcraster/libcsf/COPYING",),
        "", "", "PCRaster",
    ),
    Embedded(  # NOAA's, public domain with a notice
        "degrib", ("frmts/grib/degrib/",), "LicenseRef-degrib",
        ("frmts/grib/degrib/LICENSE.TXT",), "", "", "NOAA",
    ),
    Embedded(
        "lerc1", ("frmts/mrf/LERCV1/",), "Apache-2.0",
        ("frmts/mrf/LERCV1/LICENSE.TXT", "frmts/mrf/LERCV1/NOTICE"), "", "", "Esri",
    ),
    Embedded(  # minizip's zip/unzip, in GDAL's port library (always built)
        "minizip",
        tuple(f"port/cpl_minizip_{f}" for f in (
            "ioapi.cpp", "ioapi.h", "unzip.cpp", "unzip.h", "zip.cpp", "zip.h"
        )),
        "Info-ZIP", ("port/LICENCE_minizip",), "", "", "Gilles Vollant",
    ),
    Embedded(
        "pmtiles", ("ogr/ogrsf_frmts/pmtiles/pmtiles/",), "BSD-3-Clause",
        ("ogr/ogrsf_frmts/pmtiles/pmtiles/LICENSE",), "", "", "Protomaps",
    ),
)  # fmt: skip
#: Paths GDAL would compile in as fallbacks (undefined: see the module docstring).
BUILD_PATHS = ("INST_DATA", "INSTALL_PLUGIN_FULL_DIR", "SYSCONFDIR")
MISSING_DATA = ("ogr/data/cubewerx_extra.wkt", "ogr/data/ecw_cs.wkt")
#: What a libgdal with a static C++ runtime (zig) exports: see the file.
VERSION_SCRIPT = Path(__file__).with_name("gdal.map")


def _onoff(value: bool) -> str:
    return "ON" if value else "OFF"


def driver_args(extra: tuple[str, ...]) -> list[str]:
    """The CMake switches of the default drivers plus ``extra``: each name turns on GDAL's
    raster driver of that name, OGR's vector driver of that name, or both (vrt, sdts, …)."""
    names = sorted(set(DEFAULT_DRIVERS) | set(extra))
    args = []
    for name in names:
        if name in RASTER_DRIVERS:
            args.append(f"-DGDAL_ENABLE_DRIVER_{name.upper()}=ON")
        if name in VECTOR_DRIVERS:
            args.append(f"-DOGR_ENABLE_DRIVER_{name.upper()}=ON")
    return args


def commands(ctx: BuildContext) -> list[Command]:
    deps = ctx.deps
    tc = ctx.toolchain
    unset = " ".join(f"-U{name}" for name in BUILD_PATHS)
    stand_ins = " ".join(f'"{p}"' for p in MISSING_DATA)
    configure, build, install = cmake_commands(
        ctx,
        f"-DCMAKE_C_FLAGS={' '.join((*tc.cflags, unset))}",
        f"-DCMAKE_CXX_FLAGS={' '.join((*tc.cxxflags, unset))}",
        "-DBUILD_APPS=OFF",
        "-DBUILD_TESTING=OFF",
        "-DBUILD_DOCS=OFF",
        "-DBUILD_PYTHON_BINDINGS=OFF",
        "-DBUILD_JAVA_BINDINGS=OFF",
        "-DBUILD_CSHARP_BINDINGS=OFF",
        # GDAL keeps its sources unity-safe (its CI builds this way): 225 compiles instead
        # of 637 for the default drivers
        *unity_args(),
        "-DGDAL_USE_EXTERNAL_LIBS=OFF",
        *(f"-DGDAL_USE_{name}_INTERNAL=ON" for name in INTERNAL),
        "-DGDAL_USE_ICONV=ON",  # code pages (CP1252, LATIN1, ...): glibc's and musl's
        # ... iconv, inside libc: GDAL's FindIconv would look for a libc.so file, which a
        # cross toolchain (zig) has none of
        "-DIconv_IS_BUILT_IN=ON",
        "-DIconv_LIBRARY=c",
        "-DGDAL_USE_GEOS=ON",
        "-DGDAL_USE_SQLITE3=ON",
        "-DGDAL_USE_EXPAT=ON",
        f"-DGDAL_USE_CURL={_onoff(ctx.flag('curl'))}",
        f"-DSQLite3_INCLUDE_DIR={deps['sqlite']}/include",
        f"-DSQLite3_LIBRARY={ctx.lib('sqlite3', 'sqlite')}",
        f"-DEXPAT_INCLUDE_DIR={deps['expat']}/include",
        f"-DEXPAT_LIBRARY={ctx.lib('expat', 'expat')}",
        "-DGDAL_BUILD_OPTIONAL_DRIVERS=OFF",
        "-DOGR_BUILD_OPTIONAL_DRIVERS=OFF",
        *driver_args(ctx.names("drivers")),
        *(
            # one libgdal with libc++ inside, exporting what its consumers import
            [f"-DCMAKE_SHARED_LINKER_FLAGS=-Wl,--version-script={VERSION_SCRIPT} -Wl,--strip-debug"]
            if ctx.shared_with_static_runtime
            else []
        ),
    )
    return [
        Command(
            "missing-data",
            ("sh", "-c", f'for f in {stand_ins}; do [ -e "$f" ] || : > "$f"; done'),
            cwd=ctx.src,
        ),
        configure,
        # GDAL_PREFIX in the generated cpl_config.h (its data and plugin fallbacks) cannot
        # be undefined on the command line: the header defines it after
        Command(
            "no-prefix", ("sed", "-i", "/#define GDAL_PREFIX /d", f"{ctx.build}/port/cpl_config.h")
        ),
        build,
        install,
        sources_read_command(ctx, "gdal"),  # which of EMBEDDED the build compiled in
    ]


def _env(prefix: str, version: str) -> dict[str, str]:
    # rasterio, fiona and pyogrio read GDAL_CONFIG (or GDAL_VERSION with the include and
    # library paths); with PACKAGE_DATA / PYOGRIO_PACKAGE_DATA they copy GDAL_DATA and
    # PROJ's data (PROJ_DATA, or PROJ_LIB for the older names) into the package
    return {
        "GDAL_CONFIG": f"{prefix}/bin/gdal-config",
        "GDAL_VERSION": version,
        "GDAL_DATA": f"{prefix}/share/gdal",
        "PROJ_DATA": f"{prefix}/share/proj",
        "PROJ_LIB": f"{prefix}/share/proj",
    }


def _finish(prefix: Path, version: str, link: LinkMode) -> None:
    """gdal-config and gdal.pc relocatable: their own paths follow where they lie."""
    script = prefix / "bin" / "gdal-config"
    if script.is_file():
        text = script.read_text().replace(str(prefix), "${prefix}")
        text = re.sub(
            r"^#!/bin/sh\n",
            '#!/bin/sh\nprefix=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)\n',
            text,
            count=1,
        )
        script.write_text(text)
    pc = prefix / "lib" / "pkgconfig" / "gdal.pc"
    if pc.is_file():  # its prefix is CONFIG_INST_PREFIX, the other paths name it
        text = pc.read_text().replace(f"{prefix}/", "${CONFIG_INST_PREFIX}/")
        text = re.sub(
            r"^CONFIG_INST_PREFIX=.*$", "CONFIG_INST_PREFIX=${pcfiledir}/../..", text, flags=re.M
        )
        pc.write_text(text)


RECIPE = Recipe(
    name="gdal",
    releases=RELEASES,
    default_version="3.13.1",
    commands=commands,
    consumer=Consumer(env=_env, finish=_finish),
    libraries=(
        Library(
            "gdal",
            ("GDAL", "OGR_", "OSR", "CPL", "VSI"),
            # an error of GDALOpen's: in its implementation alone (rasterio's _version
            # module holds "GDAL 1.1.7, released 2002/04/16" in a docstring)
            rb"GDALOpen\(\) called on %s recursively",
        ),
    ),
    cxx=True,
    shared_with_static_runtime=True,  # one libgdal exporting what consumers import
    depends=("proj", "geos", "sqlite", "expat"),
    default_link="shared",
    # its CMake options (GDAL_USE_*_INTERNAL, *_BUILD_OPTIONAL_DRIVERS, ...) as used here
    oldest=(3, 9),
    static_note=(
        "gdal is static: every extension module that links it carries a copy of its own, "
        "with its own driver registry and error state; fine for one module, and refused by "
        "verify (duplicate-library) for several. Bindings with several modules (rasterio, "
        'fiona, pyogrio) need the default, [tool.geonox.options.gdal] link = "shared".'
    ),
    options={"curl": False, "drivers": ()},
    choices={"drivers": RASTER_DRIVERS | VECTOR_DRIVERS},
    provenance=Provenance(
        supplier="OSGeo",
        cpe_vendor="osgeo",
        cpe_product="gdal",
        license="MIT",
        license_files=("LICENSE.TXT",),
    ),
    embedded=EMBEDDED,
)
