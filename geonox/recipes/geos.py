"""GEOS: static libgeos + libgeos_c with CMake, no tests, benchmarks or tools."""
from __future__ import annotations

import re
from pathlib import Path

from geonox.command import Command
from geonox.recipes import (BuildContext, Consumer, Library, LinkMode, Recipe, _release, cmake_commands,
                            relocatable_pc)

_URL = "https://download.osgeo.org/geos/geos-{v}.tar.bz2"
RELEASES = {
    r.version: r
    for r in (
        _release("geos", "3.14.1", _URL.format(v="3.14.1"),
                 "3c20919cda9a505db07b5216baa980bacdaa0702da715b43f176fb07eff7e716"),
        _release("geos", "3.13.1", _URL.format(v="3.13.1"),
                 "df2c50503295f325e7c8d7b783aca8ba4773919cde984193850cf9e361dfd28c"),
    )
}


def commands(ctx: BuildContext) -> list[Command]:
    return cmake_commands(ctx, "-DBUILD_TESTING=OFF", "-DBUILD_BENCHMARKS=OFF",
                          "-DBUILD_GEOSOP=OFF", "-DBUILD_DOCUMENTATION=OFF")


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
    script = prefix / "bin" / "geos-config"
    if script.is_file():
        text = script.read_text()
        text = re.sub(r"^prefix=.*$", 'prefix=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)',
                      text, count=1, flags=re.M)
        text = re.sub(r"^exec_prefix=.*$", "exec_prefix=${prefix}", text, count=1, flags=re.M)
        text = re.sub(r"^includedir=.*$", "includedir=${prefix}/include", text, count=1, flags=re.M)
        text = re.sub(r"^libdir=.*$", "libdir=${prefix}/lib", text, count=1, flags=re.M)
        if link == "static":
            text = text.replace("echo -L${libdir} -lgeos_c\n",
                                f"echo -L${{libdir}} -lgeos_c -lgeos {STATIC_CXX}\n")
            text = text.replace("echo -L${libdir} -lgeos\n", f"echo -L${{libdir}} -lgeos {STATIC_CXX}\n")
        script.write_text(text)
    pc = prefix / "lib" / "pkgconfig" / "geos.pc"
    if pc.is_file():
        text = relocatable_pc(pc.read_text())
        if link == "static":
            text = re.sub(r"^Libs: .*$", f"Libs: -L${{libdir}} -lgeos_c -lgeos {STATIC_CXX}", text,
                          count=1, flags=re.M)
        pc.write_text(text)


RECIPE = Recipe(
    name="geos",
    releases=RELEASES,
    default_version="3.14.1",
    commands=commands,
    consumer=Consumer(env=_env, finish=_finish),
    # libgeos (C++) and libgeos_c (the C API over it) are two libraries of one recipe.
    libraries=(Library("geos", ("_ZN4geos", "_ZNK4geos"), rb"Invalid number of points in LinearRing found "),
               Library("geos_c", ("GEOS",), rb"Argument is not a LineString")),
    cxx=True,
)
