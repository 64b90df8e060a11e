"""SQLite from the autoconf amalgamation: sqlite3.c compiled directly (no configure),
plus, when PROJ is configured, a ``sqlite3`` shell for the build machine, which PROJ runs
to generate proj.db."""
from __future__ import annotations

from geonox.command import Command
from geonox.recipes import BuildContext, Library, Recipe, _release

_URL = "https://sqlite.org/{year}/sqlite-autoconf-{num}.tar.gz"
RELEASES = {
    r.version: r
    for r in (
        _release("sqlite", "3.53.1", _URL.format(year=2026, num="3530100"),
                 "83e6b2020a034e9a7ad4a72feea59e1ad52f162e09cbd26735a3ffb98359fc4f"),
        _release("sqlite", "3.52.0", _URL.format(year=2026, num="3520000"),
                 "f6b50b0c103392af32a8be15b2b9d25959de9a00a70c3979128aafeaa5338b3f"),
    )
}

DEFINES = (
    "-DSQLITE_THREADSAFE=1",
    "-DSQLITE_ENABLE_RTREE=1",
    "-DSQLITE_ENABLE_COLUMN_METADATA=1",
    "-DSQLITE_OMIT_LOAD_EXTENSION=1",
)


def commands(ctx: BuildContext) -> list[Command]:
    tc = ctx.toolchain
    src, build, prefix = ctx.src, ctx.build, ctx.prefix
    obj = f"{build}/sqlite3.o"
    commands = [
        Command("mkdirs", ("cmake", "-E", "make_directory", build, f"{prefix}/include",
                           f"{prefix}/lib", f"{prefix}/bin")),
        Command("compile", (*tc.cc, *tc.cflags, *DEFINES, "-c", f"{src}/sqlite3.c", "-o", obj)),
        Command("archive", (*tc.ar, "rcs", f"{prefix}/lib/libsqlite3.a", obj)),
        Command("headers", ("cmake", "-E", "copy", f"{src}/sqlite3.h", f"{src}/sqlite3ext.h",
                            f"{prefix}/include/")),
    ]
    if "proj" in ctx.needed_by:
        # PROJ runs a sqlite3 shell on the build machine to generate proj.db.  A native
        # toolchain links it to the library just built; a cross toolchain compiles the
        # amalgamation again with the build machine's compiler.
        commands.append(Command("shell", (
            *tc.build_cc, "-O2", *DEFINES, f"{src}/shell.c",
            *((f"{src}/sqlite3.c",) if tc.cross else (f"{prefix}/lib/libsqlite3.a",)),
            "-o", f"{prefix}/bin/sqlite3", "-lpthread", "-lm")))
    return commands


RECIPE = Recipe(
    name="sqlite",
    releases=RELEASES,
    default_version="3.53.1",
    commands=commands,
    libraries=(Library("sqlite3", "sqlite", ("sqlite3_",), rb"SQLite format 3\x00"),),
)
