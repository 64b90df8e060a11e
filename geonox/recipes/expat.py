"""expat: the XML parser GDAL's XML-based vector drivers (GPX, GML, KML, OSM, …) need.

Only other recipes link it (GDAL), so it is a static PIC archive by default, linked into
libgdal: one copy per wheel, nothing to graft.  Upstream's release archives hold the
library at their top; a GitHub tag archive (``libexpat-R_2_7_1/``, what Debian's pool
serves as ``expat_2.7.1.orig.tar.gz``) holds it in ``expat/``: the build copes with both.
"""

from __future__ import annotations

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
    cmake_commands,
    relocatable_pc,
)

_URL = "https://github.com/libexpat/libexpat/releases/download/R_{u}/expat-{v}.tar.{ext}"
RELEASES = {
    r.version: r
    for r in (
        # the sha256s upstream publishes (as conda-forge's expat-feedstock records them)
        _release(
            "expat",
            "2.8.1",
            _URL.format(u="2_8_1", v="2.8.1", ext="xz"),
            "10b195ee78160a908388180a8fe3603d4e9a12f4755fbf5f3816b23a9d750da0",
        ),
        _release(
            "expat",
            "2.7.1",
            _URL.format(u="2_7_1", v="2.7.1", ext="bz2"),
            "45c98ae1e9b5127325d25186cf8c511fa814078e9efeae7987a574b482b79b3d",
        ),
    )
}

OPTIONS = (
    "-DEXPAT_BUILD_TOOLS=OFF",
    "-DEXPAT_BUILD_EXAMPLES=OFF",
    "-DEXPAT_BUILD_TESTS=OFF",
    "-DEXPAT_BUILD_DOCS=OFF",
    "-DEXPAT_BUILD_FUZZERS=OFF",
    "-DEXPAT_BUILD_PKGCONFIG=ON",
)

#: A tag archive of the repository has the library in expat/: copied up to the top, where
#: a release archive has it (a no-op for those).
#: (tar, not cp: the repository's top-level README.md is a link into expat/)
_LAYOUT = (
    "if [ ! -f CMakeLists.txt ] && [ -f expat/CMakeLists.txt ]; then "
    "(cd expat && tar -cf - .) | tar -xf - --skip-old-files; fi"
)


def commands(ctx: BuildContext) -> list[Command]:
    return [
        Command("layout", ("sh", "-c", _LAYOUT), cwd=ctx.src),
        *cmake_commands(
            ctx, *OPTIONS, f"-DEXPAT_SHARED_LIBS={'ON' if ctx.link == 'shared' else 'OFF'}"
        ),
    ]


def _finish(prefix: Path, version: str, link: LinkMode) -> None:
    pc = prefix / "lib" / "pkgconfig" / "expat.pc"
    if pc.is_file():
        pc.write_text(relocatable_pc(pc.read_text()))


RECIPE = Recipe(
    name="expat",
    releases=RELEASES,
    default_version="2.8.1",
    commands=commands,
    consumer=Consumer(env=lambda prefix, version: {}, finish=_finish),
    default_link="static",
    libraries=(Library("expat", ("XML_",), rb"expat_\d+\.\d+\.\d+"),),
    provenance=Provenance(
        supplier="The Expat maintainers",
        cpe_vendor="libexpat_project",
        cpe_product="libexpat",
        license="MIT",
        license_files=("COPYING",),
    ),
)
