"""PROJ: libproj with CMake against the prefix's SQLite; TIFF and CURL off by default
(options ``tiff`` and ``curl`` turn them on).

Shared with a toolchain that links its C++ runtime into every shared object (zig),
upstream's one ``libproj.so`` is linked with a version script that exports the C API only
(``proj_*``, ``geod_*``, ``pj_release``): its C++ classes and the C++ runtime stay hidden
inside, so they never meet another library's copy of the runtime (a GEOS beside it, or
the extension).  The C++ API (``osgeo::proj``) is then not usable by consumers.
"""

from __future__ import annotations

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
    release_numbers,
    relocatable_pc,
    unity_args,
)

_URL = "https://download.osgeo.org/proj/proj-{v}.tar.gz"
RELEASES = {
    r.version: r
    for r in (
        _release(
            "proj",
            "9.8.1",
            _URL.format(v="9.8.1"),
            "af5b731c145c1d13c4e3b4eeb7d167e94e845e440f71e3496b4ed8dae0291960",
        ),
        _release(
            "proj",
            "9.1.1",
            _URL.format(v="9.1.1"),
            "003cd4010e52bb5eb8f7de1c143753aa830c8902b6ed01209f294846e40e6d39",
        ),
    )
}


def _onoff(value: bool) -> str:
    return "ON" if value else "OFF"


VERSION_SCRIPT = Path(__file__).with_name("proj.map")

#: PROJ builds as a unity build since 9.4: its src/lib_proj.cmake lists the sources to
#: compile alone, and its CI builds so on Linux (travis/install.sh).  Earlier releases are
#: not unity-safe: 9.1.1's projections each define ``struct pj_opaque`` and macros such as
#: ``C_x`` at file level, and a first attempt failed in 74 of its 218 sources.
UNITY_SINCE = (9, 4)


def unity(version: str) -> list[str]:
    """The unity build's arguments for releases whose upstream supports it, else none."""
    return unity_args() if release_numbers(version, 2) >= UNITY_SINCE else []


def commands(ctx: BuildContext) -> list[Command]:
    if ctx.shared_with_static_runtime:
        # upstream's one libproj.so, its exports cut to the C API by a version script (a
        # static libproj.a cannot be relinked into it: its C API is hidden there)
        return _cmake(
            ctx,
            f"-DCMAKE_SHARED_LINKER_FLAGS=-Wl,--version-script={VERSION_SCRIPT} -Wl,--strip-debug",
        )
    return _cmake(ctx)


def _cmake(ctx: BuildContext, *extra: str) -> list[Command]:
    include = f"{ctx.deps['sqlite']}/include"
    sqlite = (
        # PROJ < 9.4 spells them SQLITE3_*, later releases use CMake's SQLite3_*.
        f"-DSQLITE3_INCLUDE_DIR={include}",
        f"-DSQLITE3_LIBRARY={ctx.lib('sqlite3', 'sqlite')}",
        f"-DSQLite3_INCLUDE_DIR={include}",
        f"-DSQLite3_LIBRARY={ctx.lib('sqlite3', 'sqlite')}",
        f"-DEXE_SQLITE3={ctx.deps['sqlite-shell']}/bin/sqlite3",
    )
    # PROJ compiles its install data directory in (PROJ_DATA, a fallback search path): in a
    # wheel that is a path into the build machine's cache -- on users' machines a dead
    # path, or worse one under /tmp anybody may create -- and it makes the bytes depend on
    # where the cache is.  Every consumer here points PROJ at its data (pyproj's bundled
    # proj_dir, PROJ_DATA, proj_context_set_search_paths), so geonox leaves it out: the
    # flags come after PROJ's own -D on the compile line.
    unset = "-UPROJ_DATA"
    flags = (
        f"-DCMAKE_C_FLAGS={' '.join((*ctx.toolchain.cflags, unset))}",
        f"-DCMAKE_CXX_FLAGS={' '.join((*ctx.toolchain.cxxflags, unset))}",
    )
    commands = cmake_commands(
        ctx,
        *sqlite,
        *flags,
        "-DBUILD_TESTING=OFF",
        "-DBUILD_APPS=OFF",
        "-DBUILD_PROJSYNC=OFF",
        "-DNLOHMANN_JSON=internal",  # never pick up a system nlohmann_json
        f"-DENABLE_TIFF={_onoff(ctx.flag('tiff'))}",
        f"-DENABLE_CURL={_onoff(ctx.flag('curl'))}",
        *unity(ctx.version),
        *extra,
    )
    # ... and ccache is told to ignore that -D, so a rebuild at another cache root still
    # hits, and CMake's -Dproj_EXPORTS of a shared build (read by no PROJ source: its
    # exports are PROJ_DLL, MSVC's dllexport keyed on PROJ_MSVC_DLL_EXPORT), so a shared
    # PROJ reuses the static one's objects (PIC too)
    return ccache_ignoring(commands, "-DPROJ_DATA=*", "-Dproj_EXPORTS")


def _env(prefix: str, version: str) -> dict[str, str]:
    # pyproj: PROJ_DIR (+ PROJ_LIBDIR/PROJ_INCDIR), and PROJ_VERSION, which it would
    # otherwise ask the `proj` app for (not built: BUILD_APPS=OFF)
    return {
        "PROJ_DIR": prefix,
        "PROJ_LIBDIR": f"{prefix}/lib",
        "PROJ_INCDIR": f"{prefix}/include",
        "PROJ_VERSION": version,
    }


CXX_RUNTIME = {"-lstdc++", "-lc++", "-lc++abi", "-lunwind", "-lgcc_s", "-lgcc", "-lc"}


def _finish(prefix: Path, version: str, link: LinkMode) -> None:
    """proj.pc: relocatable, and in static mode its private libraries (SQLite, the C++
    runtime) are on the ``Libs`` line, since consumers rarely ask ``--static``."""
    pc = prefix / "lib" / "pkgconfig" / "proj.pc"
    if not pc.is_file():
        return
    text = relocatable_pc(pc.read_text())
    if link == "static":
        private = re.search(r"^Libs.private: ?(.*)$", text, flags=re.M)
        # PROJ writes the compiler's implicit C++ libraries there: under zig absolute paths
        # into zig's own cache (as -l/root/.cache/zig/o/.../libc++abi.a, which no linker
        # takes, naming a directory only that machine has). The runtime is -lstdc++ below,
        # which geonox's zig wrapper reads as zig's libc++.
        extra = " ".join(
            t
            for t in (private.group(1).split() if private else ())
            if not t.startswith(("-l/", "/")) and t not in CXX_RUNTIME
        )
        text = re.sub(
            r"^Libs: .*$",
            f"Libs: -L${{libdir}} -lproj {extra} -lstdc++".replace("  ", " "),
            text,
            count=1,
            flags=re.M,
        )
        text = re.sub(r"^Requires:.*$", "Requires: sqlite3", text, count=1, flags=re.M)
        text = re.sub(r"^Requires.private:.*\n", "", text, flags=re.M)
    pc.write_text(text)


RECIPE = Recipe(
    name="proj",
    releases=RELEASES,
    default_version="9.8.1",
    commands=commands,
    # 2: datarootdir relocatable too; 3: no compiler runtime paths in Libs
    consumer=Consumer(env=_env, finish=_finish, revision=3),
    libraries=(Library("proj", ("proj_", "_ZN5osgeo4proj"), rb"Rel\. \d+\.\d+\.\d+, "),),
    cxx=True,
    shared_with_static_runtime=True,  # one libproj.so exporting the C API only
    depends=("sqlite",),
    tools=("sqlite-shell",),
    options={"tiff": False, "curl": False},
    provenance=Provenance(
        supplier="OSGeo",
        cpe_vendor="osgeo",
        cpe_product="proj",
        license="MIT",
        license_files=("COPYING",),
    ),
)
