"""Which symbols a glibc release has: read from the glibc of the machine verify runs on.

An unversioned import binds to whatever the user's glibc offers; it is a defect only if the
oldest glibc the wheel's tag admits has no such symbol.  glibc keeps every symbol with the
version it first appeared at, so a symbol this machine's glibc defines at ``GLIBC_x.y`` with
``x.y`` no newer than the policy's glibc existed there.  The libraries of the wheel's own
arch are used where present (in a manylinux container, or with a multiarch libc); else
this machine's, which is close enough: a symbol's first version on a newer port such as
aarch64 (``GLIBC_2.17``) is its x86_64 one or the port's base, whichever is newer, and both
compare the same way against a ``manylinux_2_17``-or-newer policy.
"""

from __future__ import annotations

import functools
from pathlib import Path

from elftools.common.exceptions import ELFError

from geonox.elf import defined_versions
from geonox.targets import host_arch

_LIBS = (
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libmvec.so.1",
    "libutil.so.1",
    "libresolv.so.2",
)
_TRIPLETS = {
    "x86_64": "x86_64-linux-gnu",
    "aarch64": "aarch64-linux-gnu",
    "i686": "i386-linux-gnu",
    "ppc64le": "powerpc64le-linux-gnu",
    "s390x": "s390x-linux-gnu",
}


def _dirs(arch: str) -> list[Path]:
    triplet = _TRIPLETS.get(arch, f"{arch}-linux-gnu")
    dirs = [Path(f"/lib/{triplet}"), Path(f"/usr/lib/{triplet}")]
    if arch == host_arch():
        dirs += [Path("/lib64"), Path("/usr/lib64"), Path("/lib"), Path("/usr/lib")]
    return dirs


def _glibc_versions(path: Path) -> dict[str, list[tuple[int, ...]]]:
    """symbol -> every GLIBC_x.y version the library defines it at."""
    out: dict[str, list[tuple[int, ...]]] = {}
    for symbol, version in defined_versions(path):
        if version.startswith("GLIBC_"):
            try:
                number = tuple(int(p) for p in version[len("GLIBC_") :].split("."))
            except ValueError:
                continue  # GLIBC_PRIVATE
            out.setdefault(symbol, []).append(number)
    return out


#: What every CPython process has loaded before any extension module: the interpreter links
#: libc and libm, so their symbols are global there whatever a module's DT_NEEDED says.
INTERPRETER_LIBS = ("libc.so.6", "libm.so.6")


@functools.cache
def _table(arch: str, libs: tuple[str, ...] = _LIBS) -> dict[str, tuple[int, ...]] | None:
    """symbol -> the oldest GLIBC version it is defined at, over ``libs`` of glibc, or
    ``None`` when no glibc of this arch (or of this machine) can be read."""
    for candidate in (arch, host_arch()):
        table: dict[str, tuple[int, ...]] = {}
        for lib in libs:
            path = next((d / lib for d in _dirs(candidate) if (d / lib).is_file()), None)
            if path is None:
                continue
            try:
                for name, versions in _glibc_versions(path).items():
                    oldest = min(versions)
                    table[name] = min(table.get(name, oldest), oldest)
            except (ELFError, OSError):
                continue
        if table:
            return table
    return None


def glibc_has(
    symbol: str, arch: str, glibc: tuple[int, int], libs: tuple[str, ...] = _LIBS
) -> bool:
    """True when glibc ``glibc`` (for ``arch``) defines ``symbol`` in one of ``libs``; False
    when it does not or when no glibc can be read here to tell (the safe answer)."""
    table = _table(arch, libs)
    if table is None or symbol not in table:
        return False
    return table[symbol] <= tuple(glibc)
