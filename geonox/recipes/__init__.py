"""Dependency recipes: data (releases, dependencies, options) plus one function that
returns the configure/build/install commands.

Adding a release is one line in the recipe's ``RELEASES``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, Union

from geonox.command import Command
from geonox.sources.model import Source
from geonox.targets import PythonVersion

LinkMode = Literal["static", "shared"]
LINK_MODES: tuple[LinkMode, ...] = ("static", "shared")
#: A recipe option's value: a switch, or a list of names (GDAL's extra drivers).
OptionValue = Union[bool, tuple[str, ...]]  # a runtime alias: no "|" on 3.9


class Toolchain(Protocol):
    """What a compiler toolchain offers the recipes (and steps and backends): gcc on the
    host or in an image (:mod:`geonox.toolchains`), zig (:mod:`geonox.zig`)."""

    name: str
    arch: str
    #: Its output cannot run on the build machine (tools needed while building, such as
    #: PROJ's sqlite3, are compiled again with ``build_cc``).
    cross: bool
    #: It links its C++ runtime into every shared library it makes (zig: libc++ static), so
    #: one C++ library must not be split over two shared objects (see the GEOS recipe).
    static_cxx_runtime: bool

    @property
    def cc(self) -> tuple[str, ...]: ...
    @property
    def cxx(self) -> tuple[str, ...]: ...
    @property
    def ar(self) -> tuple[str, ...]: ...
    @property
    def ranlib(self) -> tuple[str, ...]: ...
    @property
    def build_cc(self) -> tuple[str, ...]: ...
    @property
    def cflags(self) -> tuple[str, ...]: ...
    @property
    def cxxflags(self) -> tuple[str, ...]: ...

    @property
    def identity(self) -> str:
        """Compiler versions and flags: anything here changing means a different prefix."""

    def cmake_args(self, prefix: str, search: Sequence[str] = ()) -> list[str]:
        """Arguments of a dependency's CMake configure into ``prefix``, finding the
        packages it depends on in ``search``."""

    def extension_env(self, py: PythonVersion | None = None) -> dict[str, str]:
        """Environment for building the extension itself (its PEP 517 backend)."""

    @property
    def needed_renames(self) -> Mapping[str, str]:
        """DT_NEEDED names its links write that the target knows by another name (zig's
        ``libc.so`` for musl is ``libc.musl-x86_64.so.1`` on musllinux): geonox renames
        them in every library it installs and every wheel it builds."""


@dataclass(frozen=True)
class BuildContext:
    """Where one dependency is built, as paths the executor understands."""

    src: str  # extracted source tree
    build: str  # scratch build directory
    prefix: str  # where it installs: its own artifact, nothing else in it
    jobs: int
    options: Mapping[str, OptionValue]
    toolchain: Toolchain
    link: LinkMode = "static"
    version: str = ""  # the release being built
    links: Mapping[str, LinkMode] = field(default_factory=dict)  # every configured dep's mode
    #: the install prefix of each dependency and build tool it uses (their own artifacts)
    deps: Mapping[str, str] = field(default_factory=dict)
    #: what runs the compiler (``("ccache",)``) or nothing; never part of a key
    launcher: tuple[str, ...] = ()

    def flag(self, option: str) -> bool:
        """A switch option's value."""
        value = self.options[option]
        assert isinstance(value, bool), option
        return value

    def names(self, option: str) -> tuple[str, ...]:
        """A list option's value."""
        value = self.options[option]
        assert isinstance(value, tuple), option
        return value

    @property
    def shared_with_static_runtime(self) -> bool:
        """A shared build by a toolchain that puts its C++ runtime into every shared object
        (zig): a C++ recipe must then make one library that keeps that runtime inside."""
        return self.link == "shared" and self.toolchain.static_cxx_runtime

    def lib(self, name: str, dep: str) -> str:
        """The file to link for library ``name`` of dependency ``dep``, in that dependency's
        artifact."""
        suffix = ".so" if self.links.get(dep, "static") == "shared" else ".a"
        return f"{self.deps[dep]}/lib/lib{name}{suffix}"


@dataclass(frozen=True)
class Consumer:
    """How a built dependency is found by its consumers (its "consumer contract"): the
    environment a build of the extension gets, and the files geonox completes in the prefix
    after install (so that pkg-config and config scripts answer with the right link line)."""

    env: Callable[[str, str], dict[str, str]]  # (prefix, version) -> variables
    finish: Callable[[Path, str, LinkMode], None] | None = None  # (prefix, version, link)
    #: part of the artifact key: bump when ``finish`` writes something different
    revision: int = 1


@dataclass(frozen=True)
class Library:
    """One library a recipe installs, as verify recognises it inside any ELF file: a symbol
    of its API exported there, or a byte pattern only its implementation contains (not its
    headers: a consumer compiled against the headers must not match)."""

    name: str  # "geos_c"
    api: tuple[str, ...]  # symbol name prefixes: ("GEOS",)
    fingerprint: bytes  # a regular expression over the file's bytes
    #: names with the API's prefix that its *users* define (an SQLite extension's entry
    #: point, sqlite3_extension_init, which libgdal exports)
    not_api: frozenset[str] = frozenset()

    def owns(self, symbol: str) -> bool:
        return symbol.startswith(self.api) and symbol not in self.not_api


@dataclass(frozen=True)
class Provenance:
    """What an SBOM says of a recipe's releases: who makes it, under which license (SPDX),
    how NVD names it (CPE vendor and product), and which files of its source tree carry
    the license text."""

    supplier: str
    license: str  # SPDX expression
    cpe_vendor: str
    cpe_product: str
    license_files: tuple[str, ...] = ()  # paths in the extracted source tree

    def cpe(self, version: str) -> str:
        return cpe23(self.cpe_vendor, self.cpe_product, version)


def cpe23(vendor: str, product: str, version: str) -> str:
    """NVD's CPE 2.3 name of an application release ("*": any version)."""
    return f"cpe:2.3:a:{vendor}:{product}:{version}:*:*:*:*:*:*:*"


#: Where a recipe with :attr:`Recipe.embedded` libraries lists the files of its source tree
#: its build read (from the compilers' dependency files), relative to its artifact.
SOURCES_READ = "share/geonox/{name}-sources.txt"


@dataclass(frozen=True)
class Embedded:
    """A third-party library a recipe compiles into its own from a copy in its source tree
    (GDAL's libtiff, libpng, ...): a component of its own in the SBOM when the build read
    any file under ``paths`` (known from the build, not assumed from the options)."""

    name: str
    paths: tuple[str, ...]  # files or directories ("dir/") of the recipe's source tree
    license: str  # SPDX expression
    license_files: tuple[str, ...]  # in the source tree; a .c/.h stands for its notice
    version_file: str  # "" when the copy names no version
    version_re: str  # its groups, joined with ".", are the version
    supplier: str
    cpe: tuple[str, str] | None = None  # NVD's (vendor, product)

    def used_by(self, read: Collection[str]) -> bool:
        return any(
            f == p or (p.endswith("/") and f.startswith(p)) for f in read for p in self.paths
        )

    def version(self, text: str) -> str:
        """Its version as ``version_file``'s ``text`` says it ("" when it does not)."""
        m = re.search(self.version_re, text) if self.version_re else None
        return ".".join(g for g in m.groups() if g) if m else ""


def sources_read_command(ctx: BuildContext, name: str) -> Command:
    """After the build: the source files the compilers read, from their dependency files
    (``-MD``, every backend's cmake), as paths in the source tree, into
    :data:`SOURCES_READ` of the artifact."""
    src = Path(ctx.src)
    marker = f"{src.parent.name}/{src.name}/".replace(".", "\\.")  # a sed pattern
    out = f"{ctx.prefix}/{SOURCES_READ.format(name=name)}"
    script = (
        'mkdir -p "$(dirname "$3")" && cd "$1" && '
        "find . -type f \\( -name '*.o.d' -o -name '*.obj.d' \\) -exec cat {} + "
        "| tr -s ' \\t\\\\' '\\n\\n\\n' "
        '| sed -n "s|^.*$2||p" | LC_ALL=C sort -u > "$3.part" && mv "$3.part" "$3"'
    )
    return Command("sources-read", ("sh", "-c", script, "sh", ctx.build, marker, out))


@dataclass(frozen=True)
class Recipe:
    name: str
    releases: Mapping[str, Source]  # version -> source
    default_version: str
    commands: Callable[[BuildContext], list[Command]]
    depends: tuple[str, ...] = ()
    options: Mapping[str, OptionValue] = field(default_factory=dict)
    #: the names a list option may hold (``drivers``: the ones the release has)
    choices: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: its link mode when ``options.<name>.link`` does not say: None follows the top-level
    #: ``link``; a library only other recipes link (expat) has its own
    default_link: LinkMode | None = None
    #: the oldest release its commands build (a custom source older than it is refused)
    oldest: tuple[int, ...] | None = None
    #: said in the deps step when it is built static (GDAL's bindings have several modules)
    static_note: str | None = None
    libraries: tuple[Library, ...] = ()
    consumer: Consumer | None = None
    cxx: bool = False  # written in C++ (its shared libraries carry a C++ runtime's needs)
    #: a C++ recipe whose shared build is sound with a static C++ runtime (zig): it makes
    #: one shared library that keeps its C++ objects and runtime inside
    shared_with_static_runtime: bool = False
    #: build tools it runs while building (recipes with ``build_tool``): built for the build
    #: machine, their own artifacts, never part of a target's prefix
    tools: tuple[str, ...] = ()
    #: a program for the build machine (compiled with ``build_cc``), not a library
    build_tool: bool = False
    #: a build tool built from another recipe's source takes that recipe's configured release
    source_of: str | None = None
    provenance: Provenance | None = None
    #: third-party libraries it may compile in from its own source tree
    embedded: tuple[Embedded, ...] = ()


def _release(name: str, version: str, url: str, sha256: str) -> Source:
    return Source(name=name, version=version, url=url, sha256=sha256)


def relocatable_pc(text: str) -> str:
    """A pkg-config file whose paths follow the file: ``prefix`` from ``${pcfiledir}``, and
    every variable under the old absolute prefix through ``${prefix}``."""
    old = re.search(r"^prefix=(.*)$", text, flags=re.M)
    if old is None:
        return text
    text = re.sub(
        rf"^(\w+)={re.escape(old.group(1).strip())}(?=/|$)", r"\1=${prefix}", text, flags=re.M
    )
    return re.sub(r"^prefix=.*$", "prefix=${pcfiledir}/../..", text, count=1, flags=re.M)


def link_args(ctx: BuildContext) -> list[str]:
    """CMake arguments of the link mode: static archives, or versioned shared libraries
    with a SONAME that find each other through ``$ORIGIN`` (auditwheel rewrites it).

    Linked with that RUNPATH from the start (no recipe runs what it builds): CMake's
    default links a build-tree RPATH and overwrites it at install, leaving ``.dynstr`` as
    long as the build directory's path, so the same library built in another cache was
    not the same bytes."""
    if ctx.link == "shared":
        return [
            "-DBUILD_SHARED_LIBS=ON",
            "-DCMAKE_INSTALL_RPATH=$ORIGIN",
            "-DCMAKE_SKIP_INSTALL_RPATH=OFF",
            "-DCMAKE_BUILD_WITH_INSTALL_RPATH=ON",
        ]
    return ["-DBUILD_SHARED_LIBS=OFF"]


def cmake_commands(ctx: BuildContext, *options: str) -> list[Command]:
    """configure (toolchain args + link mode + recipe options), build on every core, install."""
    launch = (
        [f"-DCMAKE_{lang}_COMPILER_LAUNCHER={';'.join(ctx.launcher)}" for lang in ("C", "CXX")]
        if ctx.launcher
        else []
    )
    return [
        Command(
            "configure",
            (
                "cmake",
                "-S",
                ctx.src,
                "-B",
                ctx.build,
                *ctx.toolchain.cmake_args(ctx.prefix, list(ctx.deps.values())),
                *launch,
                *link_args(ctx),
                *options,
            ),
        ),
        Command("build", ("cmake", "--build", ctx.build, "--parallel", str(ctx.jobs))),
        Command("install", ("cmake", "--install", ctx.build)),
    ]


def ccache_ignoring(commands: list[Command], *options: str) -> list[Command]:
    """``commands`` with ``options`` left out of ccache's key (``CCACHE_IGNOREOPTIONS``,
    ``-DNAME=*`` style; still passed to the compiler).  ccache runs the dependency builds
    in depend mode, which keys a compile by its command line: an option naming a path
    makes every rebuild at another cache root miss, and CMake's ``-D<target>_EXPORTS`` on
    a shared library's compiles makes a shared build miss the same library's static
    objects.  Only for options that cannot change the object: cancelled by a later ``-U``,
    or read by no source (checked per recipe)."""
    ignore = {"CCACHE_IGNOREOPTIONS": " ".join(options)}
    return [dataclasses.replace(c, env={**c.env, **ignore}) for c in commands]


def release_numbers(version: str, parts: int) -> tuple[int, ...]:
    """The first ``parts`` numbers of a release's version ("3.10.3+dfsg" -> (3, 10)), to
    compare with a recipe's thresholds."""
    return tuple(int(n) for n in re.findall(r"\d+", version)[:parts])


UNITY_INCLUDE = Path(__file__).with_name("unity.cmake")


def unity_args(skip: Sequence[str] = ()) -> list[str]:
    """A unity (jumbo) build: CMake compiles each batch of sources as one file, so their
    common headers are parsed once per batch, not once per source.  The unity files include
    the sources by paths relative to the tree (RELOCATABLE), so ccache hits from another
    scratch directory.  ``skip``: sources (relative to the top source directory) that do
    not compile together with others and are compiled on their own, for releases whose
    upstream has no list of its own (:file:`unity.cmake`)."""
    args = ["-DCMAKE_UNITY_BUILD=ON", "-DCMAKE_UNITY_BUILD_RELOCATABLE=ON"]
    if skip:
        args += [
            f"-DCMAKE_PROJECT_INCLUDE={UNITY_INCLUDE}",
            f"-DGEONOX_UNITY_SKIP={';'.join(skip)}",
        ]
    return args


def registry() -> dict[str, Recipe]:
    return {
        r.name: r
        for r in (sqlite.RECIPE, sqlite.SHELL, geos.RECIPE, proj.RECIPE, expat.RECIPE, gdal.RECIPE)
    }


def known_libraries() -> tuple[Library, ...]:
    """Every library of every recipe (what verify can recognise in a wheel)."""
    return tuple(lib for recipe in registry().values() for lib in recipe.libraries)


def build_order(names: Sequence[str]) -> list[str]:
    """The named recipes plus what they depend on, dependencies first."""
    recipes = registry()
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        for dep in recipes[name].depends:
            visit(dep)
        order.append(name)

    for name in sorted(names):
        visit(name)
    return order


# The recipes themselves import the definitions above.
from geonox.recipes import expat, gdal, geos, proj, sqlite  # noqa: E402
