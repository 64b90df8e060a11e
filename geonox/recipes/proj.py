"""PROJ: static libproj with CMake against the prefix's SQLite; TIFF and CURL off by
default (options ``tiff`` and ``curl`` turn them on)."""
from __future__ import annotations

from geonox.command import Command
from geonox.recipes import BuildContext, Library, Recipe, _release, cmake_commands

_URL = "https://download.osgeo.org/proj/proj-{v}.tar.gz"
RELEASES = {
    r.version: r
    for r in (
        _release("proj", "9.8.1", _URL.format(v="9.8.1"),
                 "af5b731c145c1d13c4e3b4eeb7d167e94e845e440f71e3496b4ed8dae0291960"),
        _release("proj", "9.1.1", _URL.format(v="9.1.1"),
                 "003cd4010e52bb5eb8f7de1c143753aa830c8902b6ed01209f294846e40e6d39"),
    )
}


def _onoff(value: bool) -> str:
    return "ON" if value else "OFF"


def commands(ctx: BuildContext) -> list[Command]:
    p = ctx.prefix
    sqlite = (
        # PROJ < 9.4 spells them SQLITE3_*, later releases use CMake's SQLite3_*.
        f"-DSQLITE3_INCLUDE_DIR={p}/include", f"-DSQLITE3_LIBRARY={p}/lib/libsqlite3.a",
        f"-DSQLite3_INCLUDE_DIR={p}/include", f"-DSQLite3_LIBRARY={p}/lib/libsqlite3.a",
        f"-DEXE_SQLITE3={p}/bin/sqlite3",
    )
    return cmake_commands(
        ctx, *sqlite, "-DBUILD_TESTING=OFF", "-DBUILD_APPS=OFF", "-DBUILD_PROJSYNC=OFF",
        "-DNLOHMANN_JSON=internal",  # never pick up a system nlohmann_json
        f"-DENABLE_TIFF={_onoff(ctx.options['tiff'])}",
        f"-DENABLE_CURL={_onoff(ctx.options['curl'])}")


RECIPE = Recipe(
    name="proj",
    releases=RELEASES,
    default_version="9.8.1",
    commands=commands,
    libraries=(Library("proj", "proj", ("proj_", "_ZN5osgeo4proj"), rb"Rel\. \d+\.\d+\.\d+, "),),
    depends=("sqlite",),
    options={"tiff": False, "curl": False},
)
