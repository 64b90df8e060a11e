"""GEOS: static libgeos + libgeos_c with CMake, no tests, benchmarks or tools."""
from __future__ import annotations

from geonox.command import Command
from geonox.recipes import BuildContext, Library, Recipe, _release, cmake_commands

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


RECIPE = Recipe(
    name="geos",
    releases=RELEASES,
    default_version="3.14.1",
    commands=commands,
    # libgeos (C++) and libgeos_c (the C API over it) are two libraries of one recipe.
    libraries=(Library("geos", "geos", ("_ZN4geos", "_ZNK4geos"),
                       rb"Invalid number of points in LinearRing found "),
               Library("geos_c", "geos", ("GEOS",), rb"Argument is not a LineString")),
)
