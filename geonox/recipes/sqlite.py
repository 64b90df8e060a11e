"""SQLite from the autoconf amalgamation: sqlite3.c compiled directly (no configure); and
``sqlite-shell``, the ``sqlite3`` program for the build machine that PROJ runs to generate
proj.db (a build tool: its own artifact, not a variant of the library)."""

from __future__ import annotations

from pathlib import Path

from geonox.command import Command
from geonox.recipes import BuildContext, Consumer, Library, LinkMode, Provenance, Recipe, _release

_URL = "https://sqlite.org/{year}/sqlite-autoconf-{num}.tar.gz"
RELEASES = {
    r.version: r
    for r in (
        _release(
            "sqlite",
            "3.53.1",
            _URL.format(year=2026, num="3530100"),
            "83e6b2020a034e9a7ad4a72feea59e1ad52f162e09cbd26735a3ffb98359fc4f",
        ),
        _release(
            "sqlite",
            "3.52.0",
            _URL.format(year=2026, num="3520000"),
            "f6b50b0c103392af32a8be15b2b9d25959de9a00a70c3979128aafeaa5338b3f",
        ),
    )
}

DEFINES = (
    "-DSQLITE_THREADSAFE=1",
    "-DSQLITE_ENABLE_RTREE=1",
    "-DSQLITE_ENABLE_COLUMN_METADATA=1",
    "-DSQLITE_OMIT_LOAD_EXTENSION=1",
)


#: The shared library's SONAME, as SQLite's own builds name it (autoconf: libsqlite3.so.0).
SONAME = "libsqlite3.so.0"
#: What SQLite needs from the system: linked into the shared library, and after a static
#: libsqlite3.a on a consumer's link line.
SYSTEM_LIBS = "-lm -lpthread"


def commands(ctx: BuildContext) -> list[Command]:
    tc = ctx.toolchain
    src, build, prefix = ctx.src, ctx.build, ctx.prefix
    obj = f"{build}/sqlite3.o"
    commands = [
        Command(
            "mkdirs", ("cmake", "-E", "make_directory", build, f"{prefix}/include", f"{prefix}/lib")
        ),
        # in the build directory: ccache then hashes paths relative to it (CCACHE_BASEDIR),
        # the same in every scratch directory; -MD (a dependency file beside the object)
        # lets ccache's depend mode key it without preprocessing the 9 MB amalgamation
        Command(
            "compile",
            (
                *ctx.launcher,
                *tc.cc,
                *tc.cflags,
                *DEFINES,
                "-MD",
                "-c",
                f"{src}/sqlite3.c",
                "-o",
                obj,
            ),
            cwd=build,
        ),
    ]
    if ctx.link == "shared":
        real = f"libsqlite3.so.{ctx.version}"
        commands += [
            Command(
                "link",
                (
                    *tc.cc,
                    *tc.cflags,
                    "-shared",
                    f"-Wl,-soname,{SONAME}",
                    obj,
                    "-o",
                    f"{prefix}/lib/{real}",
                    *SYSTEM_LIBS.split(),
                ),
            ),
            Command(
                "soname-link", ("cmake", "-E", "create_symlink", real, f"{prefix}/lib/{SONAME}")
            ),
            Command(
                "dev-link", ("cmake", "-E", "create_symlink", real, f"{prefix}/lib/libsqlite3.so")
            ),
        ]
    else:
        commands.append(Command("archive", (*tc.ar, "rcs", f"{prefix}/lib/libsqlite3.a", obj)))
    commands.append(
        Command(
            "headers",
            (
                "cmake",
                "-E",
                "copy",
                f"{src}/sqlite3.h",
                f"{src}/sqlite3ext.h",
                f"{prefix}/include/",
            ),
        )
    )
    return commands


def shell_commands(ctx: BuildContext) -> list[Command]:
    """The ``sqlite3`` shell for the build machine (PROJ runs it to generate proj.db): the
    amalgamation and shell.c compiled together by the build machine's compiler, so it needs
    no library at run time and is the same program whatever the target's toolchain.

    At -O1: it runs once per PROJ build, for PROJ's SQL script, and -O2's optimiser costs
    more than it saves there (measured with gcc 12 on 2 cores: compile 41 s at -O2, 21 s
    at -O1, 7 s at -O0; proj.db from PROJ 9.1.1's script 27 s, 31 s and 52 s).  proj.db
    comes out byte-identical from each."""
    return [
        Command("mkdirs", ("cmake", "-E", "make_directory", f"{ctx.prefix}/bin")),
        Command(
            "shell",
            (
                *ctx.toolchain.build_cc,
                "-O1",
                *DEFINES,
                f"{ctx.src}/shell.c",
                f"{ctx.src}/sqlite3.c",
                "-o",
                f"{ctx.prefix}/bin/sqlite3",
                "-lpthread",
                "-lm",
            ),
        ),
    ]


def _pc(prefix: Path, version: str, link: LinkMode) -> None:
    """sqlite3.pc, which the amalgamation does not ship (PROJ's proj.pc requires it)."""
    libs = "-L${libdir} -lsqlite3" + (f" {SYSTEM_LIBS}" if link == "static" else "")
    pc = prefix / "lib" / "pkgconfig" / "sqlite3.pc"
    pc.parent.mkdir(parents=True, exist_ok=True)
    pc.write_text(
        "\n".join(
            [
                "prefix=${pcfiledir}/../..",
                "libdir=${prefix}/lib",
                "includedir=${prefix}/include",
                "",
                "Name: SQLite",
                "Description: SQL database engine (built by geonox)",
                f"Version: {version}",
                f"Libs: {libs}",
                f"Libs.private: {SYSTEM_LIBS}",
                "Cflags: -I${includedir}",
                "",
            ]
        )
    )


CONSUMER = Consumer(env=lambda prefix, version: {}, finish=_pc)


RECIPE = Recipe(
    name="sqlite",
    releases=RELEASES,
    default_version="3.53.1",
    commands=commands,
    consumer=CONSUMER,
    libraries=(
        Library(
            "sqlite3",
            ("sqlite3_",),
            # a message of SQLite's misuse checks: its implementation alone has it (GDAL, a
            # consumer, holds "SQLite format 3" to recognise database files)
            rb"API call with %s database connection pointer",
            not_api=frozenset({"sqlite3_extension_init"}),
        ),
    ),
    provenance=Provenance(
        supplier="SQLite",
        cpe_vendor="sqlite",
        cpe_product="sqlite",
        # public domain, with the blessing at the head of sqlite3.c
        license="blessing",
        license_files=("sqlite3.c",),
    ),
)


SHELL = Recipe(
    name="sqlite-shell",
    releases=RELEASES,
    default_version="3.53.1",
    commands=shell_commands,
    build_tool=True,
    source_of="sqlite",
)
