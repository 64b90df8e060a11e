"""The ELF facts of a wheel: it unpacked, every ELF file in it read with
:mod:`geonox.elf`, and what the rules ask of them (which libraries the wheel ships, what
it exports, what kind each file is, the highest symbol versions it needs)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from geonox.elf import ELF_MAGIC, ELFError, ElfInfo, is_elf, read_elf
from geonox.errors import UserError
from geonox.policy import Policy, max_version
from geonox.recipes import Library, known_libraries

# glibc's own libraries: every symbol they export carries a version.
GLIBC_LIBS = frozenset(
    {
        "libc.so.6",
        "libm.so.6",
        "libmvec.so.1",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
        "libutil.so.1",
        "libanl.so.1",
        "libresolv.so.2",
        "libnsl.so.1",
    }
)
# The GCC runtime also versions every export.
VERSIONED_RUNTIME_LIBS = GLIBC_LIBS | {"libstdc++.so.6", "libgcc_s.so.1", "libatomic.so.1"}
# Symbols the static linker defines in every shared object.
LINKER_SYMBOLS = frozenset(
    {"_init", "_fini", "_edata", "_end", "__bss_start", "_DYNAMIC", "_GLOBAL_OFFSET_TABLE_"}
)
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
        raise UserError(
            f"{str(path)!r} is named like a wheel but is not a zip archive; rebuild it."
        )


def unpack(
    path: Path, dest: Path, hash_with: Mapping[str, str] | None = None
) -> dict[str, tuple[bytes, int]]:
    """Extract the wheel's ELF members into ``dest`` (their paths kept: the loader's view
    needs them); everything else is only checked for a safe path.  A member is ELF when its
    first bytes are the magic, read without inflating the rest (a wheel's ``proj.db`` is
    megabytes of data verify never looks at).

    ``hash_with`` (member name -> hashlib algorithm, from RECORD): those members are hashed
    in the same pass, each inflated once; returns ``{name: (digest, size)}`` for them."""
    root = dest.resolve()
    hash_with = hash_with or {}
    digests: dict[str, tuple[bytes, int]] = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            name = info.filename
            pure = PurePosixPath(name)
            if pure.is_absolute() or ".." in pure.parts or "\\" in name:
                raise UserError(
                    f"{path.name} contains the unsafe member path {name!r}; refusing to unpack it."
                )
            mode = (info.external_attr >> 16) & 0o177777
            if info.is_dir():
                continue
            algo = hash_with.get(name)
            if algo is None and (stat.S_ISLNK(mode) or info.file_size < len(ELF_MAGIC)):
                continue
            with archive.open(info) as src:
                head = src.read(len(ELF_MAGIC))
                elf = head == ELF_MAGIC and not stat.S_ISLNK(mode)
                if not elf and algo is None:
                    continue
                digest = hashlib.new(algo, head) if algo else None
                target = root.joinpath(*pure.parts)
                if elf:
                    target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "wb") if elf else contextlib.nullcontext() as dst:
                    if dst is not None:
                        dst.write(head)
                    size = len(head)
                    while chunk := src.read(1 << 20):
                        size += len(chunk)
                        if digest is not None:
                            digest.update(chunk)
                        if dst is not None:
                            dst.write(chunk)
            if digest is not None:
                digests[name] = (digest.digest(), size)
            if elf and mode & 0o111:
                target.chmod(0o755)
    return digests


def _libraries_in(path: Path, info: ElfInfo, libraries: tuple[Library, ...]) -> dict[str, str]:
    """Which known libraries the file carries: one that *exports* a (non-weak) symbol of the
    library's API, or whose bytes hold a string only the library's implementation has (a
    static copy linked with hidden visibility and stripped still has those)."""
    found: dict[str, str] = {}
    data = path.read_bytes()
    for lib in libraries:
        # C API names first (the api tuple's order): they say more than mangled C++ ones
        exported = sorted(
            (s.name for s in info.exported if s.binding == "GLOBAL" and lib.owns(s.name)),
            key=lambda n: (next(i for i, p in enumerate(lib.api) if n.startswith(p)), n),
        )
        if exported:
            found[lib.name] = f"exports {short_list(exported, 2)}"
        elif re.search(lib.fingerprint, data):
            found[lib.name] = "holds its code"
    return found


def short_list(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    if len(items) > limit:
        shown += f" (+{len(items) - limit} more)"
    return shown


def kind_of(rel: str, info: ElfInfo) -> str:
    if info.elf_type == "ET_REL":
        return "object"
    if info.elf_type == "ET_EXEC":
        return "executable"
    if PurePosixPath(rel).name.endswith(".so") and any(
        s.name.startswith("PyInit_") and s.type == "FUNC" for s in info.exported
    ):
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
    # rel path -> {library name: evidence}: which known libraries (PROJ, GEOS, SQLite) each
    # file carries a copy of, statically or as the library itself.
    contains: dict[str, dict[str, str]] = field(default_factory=dict)
    # in-wheel shared library -> the first extension/executable that loads it (the loader
    # context its NEEDED entries resolve in); libraries no module loads are absent.
    loaded_by: dict[str, str] = field(default_factory=dict)
    # (file, needed name, where it is in the wheel): an in-wheel library the loader will not
    # find from that file, following RPATH/RUNPATH as ld.so does.
    unreachable: list[tuple[str, str, str]] = field(default_factory=list)
    # what the wheel's SBOMs name (component names), and which SBOM files there are
    declared: set[str] = field(default_factory=set)
    sboms: list[str] = field(default_factory=list)
    require_sbom: bool = False
    # (member, why) for every file RECORD gets wrong
    record_problems: list[tuple[str, str]] = field(default_factory=list)

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
        libraries = known_libraries()
        for rel, info in facts.files.items():
            facts.libs.add(PurePosixPath(rel).name)
            if info.soname:
                facts.libs.add(info.soname)
            facts.exports.update(s.name for s in info.exported)
            facts.contains[rel] = _libraries_in(root / rel, info, libraries)
        facts._follow_loaders()
        return facts

    # ------------------------------------------------------------ the loader's view

    def _by_name(self) -> dict[str, str]:
        """Shipped file name and SONAME -> rel path."""
        names: dict[str, str] = {}
        for rel, info in self.files.items():
            names.setdefault(PurePosixPath(rel).name, rel)
            if info.soname:
                names.setdefault(info.soname, rel)
        return names

    def _search_dirs(
        self, rel: str, info: ElfInfo, inherited: list[Path]
    ) -> tuple[list[Path], list[Path]]:
        """Where the loader looks for ``rel``'s NEEDED libraries, and the DT_RPATH
        directories the libraries it loads inherit."""
        origin = str((self.root / rel).parent)

        def expand(entry: str) -> Path:
            return Path(entry.replace("${ORIGIN}", origin).replace("$ORIGIN", origin))

        if info.runpath:  # DT_RUNPATH: the file's own entries only, no inheritance
            return [expand(p) for p in info.runpath], inherited
        own = [expand(p) for p in info.rpath]
        return own + inherited, [*inherited, *own]  # DT_RPATH: then its loaders'

    def _follow_loaders(self) -> None:
        """Walk each extension's and executable's NEEDED graph inside the wheel the way
        ld.so does (an already loaded SONAME satisfies a NEEDED; DT_RPATH is inherited by
        what a file loads, DT_RUNPATH is not) and record who loads what, and which shipped
        library a file would not find."""
        shipped = self._by_name()
        for rel, info in self.files.items():
            if kind_of(rel, info) not in ("extension", "executable"):
                continue
            loaded: set[str] = {PurePosixPath(rel).name} | ({info.soname} if info.soname else set())
            queue: list[tuple[str, ElfInfo, list[Path]]] = [(rel, info, [])]
            while queue:
                current, cinfo, inherited = queue.pop(0)
                dirs, passed_on = self._search_dirs(current, cinfo, inherited)
                for lib in cinfo.needed:
                    name = PurePosixPath(lib).name
                    if name in loaded or name not in shipped:
                        continue
                    found = next((d / name for d in dirs if (d / name).is_file()), None)
                    if found is None:
                        self.unreachable.append((current, lib, shipped[name]))
                        continue
                    try:
                        target = found.resolve().relative_to(self.root).as_posix()
                    except ValueError:
                        continue
                    if target not in self.files:
                        continue
                    loaded.add(name)
                    tinfo = self.files[target]
                    if tinfo.soname:
                        loaded.add(tinfo.soname)
                    self.loaded_by.setdefault(target, rel)
                    queue.append((target, tinfo, passed_on))

    def in_wheel(self, lib: str) -> bool:
        return PurePosixPath(lib).name in self.libs

    def external_requirements(self, info: ElfInfo) -> dict[str, list[str]]:
        """Symbol versions required from libraries the wheel does not ship (loader aside)."""
        return {
            lib: versions
            for lib, versions in info.version_requirements.items()
            if not self.in_wheel(lib) and not LOADER_RE.match(PurePosixPath(lib).name)
        }

    def max_versions(self, info: ElfInfo) -> dict[str, str]:
        by_prefix: dict[str, list[str]] = {}
        for versions in self.external_requirements(info).values():
            for v in versions:
                prefix, sep, rest = v.partition("_")
                if sep:
                    by_prefix.setdefault(prefix, []).append(rest)
        return {
            prefix: top
            for prefix, versions in sorted(by_prefix.items())
            for top in [max_version(versions)]
            if top is not None
        }
