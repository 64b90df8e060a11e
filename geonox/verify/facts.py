"""The ELF facts of a wheel: it unpacked, every ELF file in it read with
:mod:`geonox.elf`, and what the rules ask of them (which libraries the wheel ships, what
it exports, what kind each file is, the highest symbol versions it needs)."""
from __future__ import annotations

import os
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from geonox.elf import ELFError, ElfInfo, is_elf, read_elf
from geonox.errors import UserError
from geonox.policy import Policy, max_version

# glibc's own libraries: every symbol they export carries a version.
GLIBC_LIBS = frozenset({
    "libc.so.6", "libm.so.6", "libmvec.so.1", "libpthread.so.0", "libdl.so.2", "librt.so.1",
    "libutil.so.1", "libanl.so.1", "libresolv.so.2", "libnsl.so.1",
})
# The GCC runtime also versions every export.
VERSIONED_RUNTIME_LIBS = GLIBC_LIBS | {"libstdc++.so.6", "libgcc_s.so.1", "libatomic.so.1"}
# Symbols the static linker defines in every shared object.
LINKER_SYMBOLS = frozenset({"_init", "_fini", "_edata", "_end", "__bss_start", "_DYNAMIC",
                            "_GLOBAL_OFFSET_TABLE_"})
LOADER_RE = re.compile(r"^(ld-linux.*|ld64\.so\.\d+|ld\.so\.\d+|ld-musl-.*)$")


def check_wheel_file(path: Path) -> None:
    if not path.exists():
        raise UserError(f"Wheel {str(path)!r} does not exist; pass the path of a built .whl file.")
    if not path.is_file() or path.suffix != ".whl":
        raise UserError(
            f"{str(path)!r} is not a wheel: geonox verify takes .whl files (for example the ones "
            "in wheelhouse/)."
        )
    if not zipfile.is_zipfile(path):
        raise UserError(f"{str(path)!r} is named like a wheel but is not a zip archive; rebuild it.")


def unpack(path: Path, dest: Path) -> None:
    root = dest.resolve()
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            name = info.filename
            pure = PurePosixPath(name)
            if pure.is_absolute() or ".." in pure.parts or "\\" in name:
                raise UserError(
                    f"{path.name} contains the unsafe member path {name!r}; refusing to unpack it."
                )
            mode = (info.external_attr >> 16) & 0o177777
            if info.is_dir() or stat.S_ISLNK(mode):
                continue
            target = root.joinpath(*pure.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            if mode & 0o111:
                target.chmod(0o755)


def kind_of(rel: str, info: ElfInfo) -> str:
    if info.elf_type == "ET_REL":
        return "object"
    if info.elf_type == "ET_EXEC":
        return "executable"
    if PurePosixPath(rel).name.endswith(".so") and any(
            s.name.startswith("PyInit_") and s.type == "FUNC" for s in info.exported):
        return "extension"
    return "shared-library"


@dataclass
class WheelFacts:
    """An unpacked wheel's ELF files and the policy its tag claims."""

    root: Path
    policy: Policy | None
    files: dict[str, ElfInfo] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)  # rel path -> why it cannot be parsed
    libs: set[str] = field(default_factory=set)  # file names and SONAMEs shipped in the wheel
    exports: set[str] = field(default_factory=set)  # every symbol some file of the wheel exports

    @classmethod
    def collect(cls, root: Path, policy: Policy | None) -> WheelFacts:
        facts = cls(root, policy)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for fn in sorted(filenames):
                full = Path(dirpath) / fn
                if full.is_symlink() or not is_elf(full):
                    continue
                rel = full.relative_to(root).as_posix()
                try:
                    facts.files[rel] = read_elf(full)
                except (ELFError, ValueError, OSError, KeyError) as exc:  # truncated/corrupt ELF
                    facts.broken[rel] = str(exc) or type(exc).__name__
        for rel, info in facts.files.items():
            facts.libs.add(PurePosixPath(rel).name)
            if info.soname:
                facts.libs.add(info.soname)
            facts.exports.update(s.name for s in info.exported)
        return facts

    def in_wheel(self, lib: str) -> bool:
        return PurePosixPath(lib).name in self.libs

    def external_requirements(self, info: ElfInfo) -> dict[str, list[str]]:
        """Symbol versions required from libraries the wheel does not ship (loader aside)."""
        return {lib: versions for lib, versions in info.version_requirements.items()
                if not self.in_wheel(lib) and not LOADER_RE.match(PurePosixPath(lib).name)}

    def max_versions(self, info: ElfInfo) -> dict[str, str]:
        by_prefix: dict[str, list[str]] = {}
        for versions in self.external_requirements(info).values():
            for v in versions:
                prefix, sep, rest = v.partition("_")
                if sep:
                    by_prefix.setdefault(prefix, []).append(rest)
        return {prefix: top for prefix, versions in sorted(by_prefix.items())
                for top in [max_version(versions)] if top is not None}
