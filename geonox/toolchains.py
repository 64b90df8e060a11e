"""Toolchains: compiler, flags and CMake arguments for a target.

:class:`~geonox.recipes.Toolchain` is the interface recipes, steps and backends rely on
(defined beside the recipes, which render their commands with it).
:class:`GccToolchain` is the system compiler of wherever the executor runs (the host, or a
manylinux image's devtoolset) with the seed's per-arch flags; the zig cross toolchain is
:class:`geonox.zig.ZigToolchain`.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from geonox.executors import Executor
from geonox.recipes import Toolchain
from geonox.targets import PythonVersion

ARCH_FLAGS = {
    "x86_64": ("-march=x86-64-v2", "-mtune=generic"),
    "aarch64": ("-march=armv8-a",),
}


def seed_flags(arch: str) -> tuple[str, ...]:
    return ("-O2", "-fPIC", *ARCH_FLAGS[arch])


def prefix_args(prefix: str, search: Sequence[str] = ()) -> list[str]:
    """CMake arguments every toolchain uses: PIC, Release, into ``prefix``/lib, packages
    from ``search`` (the link mode's arguments come from the recipe,
    :func:`geonox.recipes.link_args`)."""
    return [
        "-DCMAKE_BUILD_TYPE=Release",
        "-DCMAKE_POSITION_INDEPENDENT_CODE=ON",
        f"-DCMAKE_INSTALL_PREFIX={prefix}",
        "-DCMAKE_INSTALL_LIBDIR=lib",
        f"-DCMAKE_PREFIX_PATH={';'.join(search) or prefix}",
        # CMake >= 4 refuses cmake_minimum_required(< 3.5), which older releases of the
        # dependencies (PROJ 9.1's Ccache.cmake) still say; earlier CMake ignores this.
        "-DCMAKE_POLICY_VERSION_MINIMUM=3.5",
    ]


def flag_args(toolchain: Toolchain) -> list[str]:
    return [
        f"-DCMAKE_C_FLAGS={' '.join(toolchain.cflags)}",
        f"-DCMAKE_CXX_FLAGS={' '.join(toolchain.cxxflags)}",
    ]


@dataclass
class GccToolchain:
    arch: str
    executor: Executor
    name: str = "gcc"
    cross: bool = False
    static_cxx_runtime: bool = False  # libstdc++.so, one per process

    cc: tuple[str, ...] = ("cc",)
    cxx: tuple[str, ...] = ("c++",)
    ar: tuple[str, ...] = ("ar",)
    ranlib: tuple[str, ...] = ("ranlib",)
    build_cc: tuple[str, ...] = ("cc",)

    @property
    def needed_renames(self) -> Mapping[str, str]:
        return {}

    @property
    def cflags(self) -> tuple[str, ...]:
        return seed_flags(self.arch)

    @property
    def cxxflags(self) -> tuple[str, ...]:
        return self.cflags

    def cmake_args(self, prefix: str, search: Sequence[str] = ()) -> list[str]:
        return [
            *prefix_args(prefix, search),
            f"-DCMAKE_C_COMPILER={self.cc[0]}",
            f"-DCMAKE_CXX_COMPILER={self.cxx[0]}",
            *flag_args(self),
        ]

    def extension_env(self, py: PythonVersion | None = None) -> dict[str, str]:
        return {
            "CC": self.cc[0],
            "CXX": self.cxx[0],
            "CFLAGS": " ".join(self.cflags),
            "CXXFLAGS": " ".join(self.cxxflags),
        }

    @functools.cached_property
    def identity(self) -> str:
        versions = [
            self.executor.capture([*tool, "--version"]).splitlines()[0]
            for tool in (self.cc, self.cxx)
        ]
        text = "|".join([self.name, self.arch, *versions, *self.cflags])
        return f"{self.name}-{hashlib.sha256(text.encode()).hexdigest()[:12]} ({versions[0]})"


@dataclass(frozen=True)
class Ccache:
    """ccache in front of every compiler of a build: its directory inside geonox's cache,
    paths below the cache root hashed relative to the build directory (``CCACHE_BASEDIR``),
    so a rebuild in another scratch directory still hits.  The compiler is identified by the
    toolchain's identity (versions and flags), not by the wrapper file's mtime.  It never
    decides whether anything is rebuilt: the artifact keys do."""

    exe: str
    directory: str
    basedir: str

    def env(
        self, toolchain: Toolchain, stats_log: Path | None = None, depend: bool = False
    ) -> dict[str, str]:
        """Its settings; with ``stats_log``, each compile also records there what it did
        (ccache >= 4.5; read back with :meth:`hits`).

        ``depend``: ccache's depend mode (ccache >= 4.0), for the dependency builds: a miss
        no longer runs the preprocessor once more before the compile (PROJ's 203 compiles
        spent about a tenth of their time there).  Its key is the command line plus the
        headers the compiler's own ``-MD`` file lists, so nothing on a command line may name
        a key: a dependency is seen through a view whose path does not (``PrefixEngine``),
        and an option holding the build's own prefix is left out of the key
        (:func:`geonox.recipes.ccache_ignoring`).  A compile without ``-MD`` falls back to
        the preprocessor mode."""
        return {
            "CCACHE_DIR": self.directory,
            "CCACHE_BASEDIR": self.basedir,
            "CCACHE_COMPILERCHECK": f"string:{toolchain.identity}",
            **({"CCACHE_DEPEND": "1"} if depend else {}),
            **({"CCACHE_STATSLOG": str(stats_log)} if stats_log else {}),
        }

    @staticmethod
    def hits(stats_log: Path) -> tuple[int, int] | None:
        """(hits, compiles) from the ``stats_log`` of :meth:`env` (a ``# <source>`` line, then
        the counters that call bumped), or None when ccache wrote none."""
        try:
            text = stats_log.read_text(errors="replace")
        except OSError:
            return None
        calls = [block.split() for block in text.split("\n# ") if block.strip()]
        compiles = [
            c for c in calls if "cache_miss" in c or any(w.endswith("_cache_hit") for w in c)
        ]
        if not compiles:
            return None
        return sum(1 for c in compiles if "cache_miss" not in c), len(compiles)

    def cmake_env(self, toolchain: Toolchain, stats_log: Path | None = None) -> dict[str, str]:
        """For a CMake-based build of the extension (CMake reads the launchers from the
        environment since 3.17)."""
        return {
            **self.env(toolchain, stats_log),
            "CMAKE_C_COMPILER_LAUNCHER": self.exe,
            "CMAKE_CXX_COMPILER_LAUNCHER": self.exe,
        }
