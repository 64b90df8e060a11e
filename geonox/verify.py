"""Check the ELF files of a wheel against the manylinux policy its platform tag claims.

``verify_wheel`` unpacks a wheel, finds every ELF file in it (by magic bytes), reads each
one with :mod:`geonox.elf` and applies the rules below against auditwheel's policy data
(the JSON auditwheel ships; nothing is copied here).  Where the files can run on this
machine it also runs ``ldd -r`` on them with the wheel unpacked.

Rules (``Violation.rule``):

``architecture``        e_machine differs from the arch in the platform tag.
``needed-library``      a DT_NEEDED library is neither in the policy's whitelist nor shipped
                        in the wheel (also: a policy-versioned library such as zlib asked for a
                        too-new version or a blacklisted symbol).
``glibc-version``       a GLIBC_x.y version newer than the policy allows (or GLIBC_PRIVATE).
``cxx-runtime-version`` the same for GLIBCXX_, CXXABI_, GCC_ (and LIBATOMIC_).
``unversioned-libc``    a non-weak undefined symbol with no version, in a file that links only
                        against glibc and the GCC runtime (so it can only come from glibc).
``rpath``               a DT_RPATH/DT_RUNPATH entry that is not ``$ORIGIN``-relative.
``exported-symbols``    an extension module exports more than its ``PyInit_*`` function.
``ldd``                 ``ldd -r`` reports a missing library, version or symbol.
"""
from __future__ import annotations

import json
import os
import platform
import re
import shutil
import stat
import subprocess
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Dict, FrozenSet, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from geonox.elf import ELFError, ElfInfo, is_elf, read_elf
from geonox.errors import UserError
from geonox.targets import host_arch, policy_records

RULES = (
    "architecture",
    "needed-library",
    "glibc-version",
    "cxx-runtime-version",
    "unversioned-libc",
    "rpath",
    "exported-symbols",
    "ldd",
)

# Version namespaces (the part before the first "_") and the rule that judges them.
_GLIBC_PREFIXES = frozenset({"GLIBC"})
_CXX_PREFIXES = frozenset({"GLIBCXX", "CXXABI", "GCC", "LIBATOMIC"})

# glibc's own libraries: every symbol they export carries a version.
_GLIBC_LIBS = frozenset(
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
_VERSIONED_RUNTIME_LIBS = _GLIBC_LIBS | {"libstdc++.so.6", "libgcc_s.so.1", "libatomic.so.1"}

# Symbols the static linker defines in every shared object.
_LINKER_SYMBOLS = frozenset({"_init", "_fini", "_edata", "_end", "__bss_start", "_DYNAMIC", "_GLOBAL_OFFSET_TABLE_"})

# Vague-linkage C++ symbols from namespace std / __gnu_cxx: libstdc++'s headers give them
# default visibility, so -fvisibility=hidden cannot hide the weak instantiations.
_STD_MANGLED_PREFIXES = (
    "_ZNSt", "_ZNKSt", "_ZSt", "_ZTISt", "_ZTSSt", "_ZTVSt", "_ZTINSt", "_ZTSNSt", "_ZTVNSt",
    "_ZZNSt", "_ZZNKSt", "_ZZSt", "_ZGVZNSt", "_ZGVZNKSt",
    "_ZN9__gnu_cxx", "_ZNK9__gnu_cxx", "_ZTIN9__gnu_cxx", "_ZTSN9__gnu_cxx", "_ZTVN9__gnu_cxx",
)

_PYTHON_SYMBOL_RE = re.compile(r"^_?Py")
_LIBPYTHON_RE = re.compile(r"^libpython\d+\.\d+[a-z]*\.so(\.\d+)*$")
_LOADER_RE = re.compile(r"^(ld-linux.*|ld64\.so\.\d+|ld\.so\.\d+|ld-musl-.*)$")
_ORIGIN_RE = re.compile(r"^(\$ORIGIN|\$\{ORIGIN\})(/.*)?$")

_PLATFORM_RE = re.compile(
    r"^(?P<policy>manylinux_\d+_\d+|manylinux1|manylinux2010|manylinux2014|musllinux_\d+_\d+|linux)"
    r"_(?P<arch>[a-z0-9_]+)$"
)
_VERSION_RE = re.compile(r"^(?P<sub>[A-Za-z_]*?)(?P<num>\d+(?:\.\d+)*)$")

_MUSL_LIBC_ARCH = {"i686": "x86", "armv7l": "armv7"}


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Violation:
    rule: str  # one of RULES
    file: str  # path inside the wheel, e.g. "geodemo/_geodemo.abi3.so"
    detail: str  # a sentence naming the offending value(s) and the limit


@dataclass
class FileReport:
    path: str  # path inside the wheel
    machine: str  # "x86_64", "aarch64", ... (raw e_machine if unknown)
    kind: str  # "extension", "shared-library", "executable", "object"
    soname: Optional[str] = None
    needed: List[str] = field(default_factory=list)
    max_versions: Dict[str, str] = field(default_factory=dict)  # {"GLIBC": "2.17", ...}
    rpath: List[str] = field(default_factory=list)  # DT_RPATH + DT_RUNPATH entries
    exported: List[str] = field(default_factory=list)  # defined dynamic symbols (minus linker ones)
    ldd_checked: bool = False


@dataclass
class WheelReport:
    wheel: str  # file name
    tag_policy: str  # "manylinux_2_28", "linux", "any"
    arch: str  # "x86_64", ... ("any" for a pure wheel)
    files: List[FileReport] = field(default_factory=list)
    violations: List[Violation] = field(default_factory=list)
    platform_tags: List[str] = field(default_factory=list)
    path: str = ""

    @property
    def ok(self) -> bool:
        return not self.violations

    def violations_for(self, file: str) -> List[Violation]:
        return [v for v in self.violations if v.file == file]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "WheelReport":
        """The inverse of :meth:`to_dict` (a report made where the wheel could run)."""
        return cls(
            wheel=data["wheel"], tag_policy=data["tag_policy"], arch=data["arch"],
            files=[FileReport(**f) for f in data.get("files", [])],
            violations=[Violation(**x) for x in data.get("violations", [])],
            platform_tags=list(data.get("platform_tags", [])), path=data.get("path", ""),
        )

    def to_dict(self) -> Dict[str, Any]:
        return {
            "wheel": self.wheel,
            "path": self.path,
            "tag_policy": self.tag_policy,
            "arch": self.arch,
            "platform_tags": list(self.platform_tags),
            "ok": self.ok,
            "files": [asdict(f) for f in self.files],
            "violations": [asdict(v) for v in self.violations],
        }


@dataclass(frozen=True)
class Policy:
    """One auditwheel policy for one arch (``manylinux_2_17`` + ``x86_64``)."""

    name: str  # canonical: "manylinux_2_17", "musllinux_1_2", "linux"
    arch: str
    libc: str  # "glibc" or "musl"
    priority: int  # auditwheel's: higher is more restrictive
    whitelist: Optional[FrozenSet[str]] = field(repr=False)  # None: any library ("linux")
    symbol_versions: Mapping[str, FrozenSet[str]] = field(repr=False)
    blacklist: Mapping[str, FrozenSet[str]] = field(repr=False)

    @property
    def tag(self) -> str:
        return f"{self.name}_{self.arch}"


# --------------------------------------------------------------------------- policy


def _policy_data(libc: str) -> Tuple[Dict[str, Any], ...]:
    return policy_records(libc)


def _version_key(version: str) -> Optional[Tuple[str, Tuple[int, ...]]]:
    """``"2.17"`` -> ``("", (2, 17))``; ``"LDBL_3.4.7"`` -> ``("LDBL_", (3, 4, 7))``; else None."""
    m = _VERSION_RE.match(version)
    if not m:
        return None
    return m.group("sub"), tuple(int(p) for p in m.group("num").split("."))


def version_allowed(version: str, allowed: Iterable[str]) -> bool:
    """Is ``version`` (the part after ``GLIBC_``) covered by the policy's list?

    Numeric versions compare numerically against the highest listed one with the same
    sub-namespace (``LDBL_``, ``TM_``); anything else (``PRIVATE``, ``ABI_DT_RELR``) is
    allowed only if listed literally.
    """
    allowed = list(allowed)
    if version in allowed:
        return True
    key = _version_key(version)
    if key is None:
        return False
    for candidate in allowed:
        ckey = _version_key(candidate)
        if ckey is not None and ckey[0] == key[0] and key[1] <= ckey[1]:
            return True
    return False


def _max_version(versions: Iterable[str]) -> Optional[str]:
    versions = list(versions)
    plain = [(k[1], v) for v in versions for k in [_version_key(v)] if k is not None and k[0] == ""]
    if plain:
        return max(plain)[1]
    return max(versions) if versions else None


def _policy_from_json(entry: Mapping[str, Any], arch: str, libc: str) -> Policy:
    whitelist = []
    for lib in entry["lib_whitelist"]:
        if libc == "musl" and lib == "libc.so":
            lib = f"libc.musl-{_MUSL_LIBC_ARCH.get(arch, arch)}.so.1"
        whitelist.append(lib)
    return Policy(
        name=entry["name"],
        arch=arch,
        libc=libc,
        priority=int(entry["priority"]),
        whitelist=frozenset(whitelist),
        symbol_versions={k: frozenset(v) for k, v in entry["symbol_versions"][arch].items()},
        blacklist={k: frozenset(v) for k, v in entry.get("blacklist", {}).items()},
    )


def _numbered(name: str) -> Optional[Tuple[str, int, int]]:
    m = re.match(r"^(manylinux|musllinux)_(\d+)_(\d+)$", name)
    return (m.group(1), int(m.group(2)), int(m.group(3))) if m else None


def resolve_policy(platform_tag: str) -> Policy:
    """The policy a platform tag such as ``manylinux2014_x86_64`` claims."""
    m = _PLATFORM_RE.match(platform_tag)
    if not m:
        raise UserError(
            f"geonox verify checks Linux wheels, but the platform tag {platform_tag!r} is not a "
            "manylinux_X_Y_ARCH, manylinux1/2010/2014_ARCH, musllinux_X_Y_ARCH or linux_ARCH tag."
        )
    name, arch = m.group("policy"), m.group("arch")
    if name == "linux":
        return Policy("linux", arch, "glibc", 0, None, {}, {})
    libc = "musl" if name.startswith("musllinux") else "glibc"
    entries = _policy_data(libc)
    for entry in entries:
        if entry["name"] == name or name in entry.get("aliases", ()):
            if arch not in entry["symbol_versions"]:
                known = ", ".join(sorted(entry["symbol_versions"]))
                raise UserError(
                    f"The platform tag {platform_tag!r} names policy {entry['name']}, which auditwheel "
                    f"does not define for {arch} (it covers: {known}); retag the wheel with a policy "
                    f"that exists for {arch}."
                )
            return _policy_from_json(entry, arch, libc)
    # A policy newer than this auditwheel knows (e.g. manylinux_2_45): use the newest known
    # one below it for the library and C++ limits, and the tag's own glibc version.
    wanted = _numbered(name)
    older = [
        (num, entry)
        for entry in entries
        for num in [_numbered(entry["name"])]
        if num is not None and wanted is not None and num[1:] <= wanted[1:] and arch in entry["symbol_versions"]
    ]
    if not older:
        raise UserError(
            f"The platform tag {platform_tag!r} names a policy that auditwheel's policy data does "
            "not know and that is older than every known one; check the tag."
        )
    _, entry = max(older, key=lambda item: item[0][1:])
    base = _policy_from_json(entry, arch, libc)
    versions = dict(base.symbol_versions)
    if libc == "glibc" and wanted is not None:
        versions["GLIBC"] = versions.get("GLIBC", frozenset()) | {f"{wanted[1]}.{wanted[2]}"}
    return Policy(name, arch, libc, base.priority - 1, base.whitelist, versions, base.blacklist)


def wheel_platform_tags(filename: str) -> List[str]:
    try:
        _, _, _, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        raise UserError(
            f"{filename!r} is not a wheel file name ({exc}); geonox verify expects "
            "{dist}-{version}(-{build})?-{python}-{abi}-{platform}.whl."
        ) from exc
    return sorted({t.platform for t in tags})


def wheel_policy(filename: str) -> Optional[Policy]:
    """The most restrictive policy the wheel's platform tags claim (``None`` for ``any``)."""
    platforms = wheel_platform_tags(filename)
    if platforms == ["any"]:
        return None
    policies = [resolve_policy(p) for p in platforms if p != "any"]
    arches = sorted({p.arch for p in policies})
    if len(arches) > 1:
        raise UserError(
            f"{filename} claims several architectures ({', '.join(arches)}) in its platform tags; "
            "a Linux wheel holds binaries for one architecture, so build one wheel per arch."
        )
    return max(policies, key=lambda p: p.priority)


# --------------------------------------------------------------------------- unpacking


def _check_wheel(path: Path) -> None:
    if not path.exists():
        raise UserError(f"Wheel {str(path)!r} does not exist; pass the path of a built .whl file.")
    if not path.is_file() or path.suffix != ".whl":
        raise UserError(
            f"{str(path)!r} is not a wheel: geonox verify takes .whl files (for example the ones "
            "in wheelhouse/)."
        )
    if not zipfile.is_zipfile(path):
        raise UserError(f"{str(path)!r} is named like a wheel but is not a zip archive; rebuild it.")


def _extract(path: Path, dest: Path) -> None:
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


# --------------------------------------------------------------------------- rules


def _short_list(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    if len(items) > limit:
        shown += f" (+{len(items) - limit} more)"
    return shown


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeio" else "a"


def _kind(rel: str, info: ElfInfo) -> str:
    if info.elf_type == "ET_REL":
        return "object"
    if info.elf_type == "ET_EXEC":
        return "executable"
    if PurePosixPath(rel).name.endswith(".so") and any(
        s.name.startswith("PyInit_") and s.type == "FUNC" for s in info.exported
    ):
        return "extension"
    return "shared-library"


class _WheelChecker:
    def __init__(self, wheel: str, root: Path, policy: Optional[Policy], run_ldd: Optional[bool]) -> None:
        self.wheel = wheel
        self.root = root
        self.policy = policy
        self.run_ldd = run_ldd
        self.violations: List[Violation] = []
        self._seen: Set[Violation] = set()
        self.files: Dict[str, ElfInfo] = {}
        self.broken: Dict[str, str] = {}
        self.wheel_libs: Set[str] = set()
        self.wheel_exports: Set[str] = set()
        self._ldd = shutil.which("ldd")
        if run_ldd and self._ldd is None:
            raise UserError("geonox verify was asked to run ldd, but no ldd is on PATH; install glibc's ldd (libc-bin) or pass run_ldd=False.")

    def add(self, rule: str, file: str, detail: str) -> None:
        v = Violation(rule, file, detail)
        if v not in self._seen:
            self._seen.add(v)
            self.violations.append(v)

    # -- collection
    def collect(self) -> None:
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            for fn in sorted(filenames):
                full = Path(dirpath) / fn
                if full.is_symlink() or not is_elf(full):
                    continue
                rel = full.relative_to(self.root).as_posix()
                try:
                    self.files[rel] = read_elf(full)
                except (ELFError, ValueError, OSError, KeyError) as exc:  # truncated/corrupt ELF
                    self.broken[rel] = str(exc) or type(exc).__name__
        for rel, info in self.files.items():
            self.wheel_libs.add(PurePosixPath(rel).name)
            if info.soname:
                self.wheel_libs.add(info.soname)
            self.wheel_exports.update(s.name for s in info.exported)

    def in_wheel(self, lib: str) -> bool:
        return PurePosixPath(lib).name in self.wheel_libs

    # -- per-file rules
    def check_file(self, rel: str, info: ElfInfo) -> FileReport:
        kind = _kind(rel, info)
        exported = [s.name for s in info.exported if s.name not in _LINKER_SYMBOLS]
        report = FileReport(
            path=rel,
            machine=info.arch or info.machine,
            kind=kind,
            soname=info.soname,
            needed=list(info.needed),
            max_versions=self._max_versions(info),
            rpath=info.search_paths,
            exported=exported,
        )
        self.check_architecture(rel, info)
        if self.policy is None:
            return report
        self.check_needed(rel, info)
        self.check_versions(rel, info)
        self.check_blacklist(rel, info)
        self.check_unversioned(rel, info)
        self.check_rpath(rel, info)
        if kind == "extension":
            self.check_exports(rel, info)
        if kind != "object" and self._should_run_ldd(info):
            report.ldd_checked = True
            self.check_ldd(rel)
        return report

    def _max_versions(self, info: ElfInfo) -> Dict[str, str]:
        by_prefix: Dict[str, List[str]] = {}
        for lib, versions in info.version_requirements.items():
            if self.in_wheel(lib) or _LOADER_RE.match(lib):
                continue
            for v in versions:
                prefix, sep, rest = v.partition("_")
                if sep:
                    by_prefix.setdefault(prefix, []).append(rest)
        result = {}
        for prefix, versions in sorted(by_prefix.items()):
            top = _max_version(versions)
            if top is not None:
                result[prefix] = top
        return result

    def check_architecture(self, rel: str, info: ElfInfo) -> None:
        found = info.arch or f"{info.machine} ({info.elf_class}-bit)"
        if self.policy is None:
            self.add(
                "architecture",
                rel,
                f"is a compiled {found} ELF file, but the wheel is tagged 'any' (pure Python); "
                "tag it with the platform it was built for.",
            )
        elif info.arch != self.policy.arch:
            self.add(
                "architecture",
                rel,
                f"is {_article(found)} {found} ELF file, but the wheel's platform tag {self.policy.tag} says "
                f"{self.policy.arch}; build it for {self.policy.arch} or fix the tag.",
            )

    def check_needed(self, rel: str, info: ElfInfo) -> None:
        policy = self.policy
        assert policy is not None
        bad = []
        for lib in info.needed:
            if _LOADER_RE.match(PurePosixPath(lib).name) or self.in_wheel(lib):
                continue
            if _LIBPYTHON_RE.match(PurePosixPath(lib).name) and policy.whitelist is not None:
                self.add(
                    "needed-library",
                    rel,
                    f"NEEDS {lib}; an extension must not link libpython (the manylinux interpreters "
                    "are statically linked), drop -lpython from the link.",
                )
                continue
            if policy.whitelist is not None and lib not in policy.whitelist:
                bad.append(lib)
        if bad:
            self.add(
                "needed-library",
                rel,
                f"NEEDS {_short_list(bad)}, which {'is' if len(bad) == 1 else 'are'} neither in the "
                f"{policy.tag} library whitelist nor shipped in the wheel; run auditwheel repair to "
                "graft it, or link it statically.",
            )

    def check_versions(self, rel: str, info: ElfInfo) -> None:
        policy = self.policy
        assert policy is not None
        # (rule, prefix) -> offending full version names, keeping order
        offending: Dict[Tuple[str, str], List[str]] = {}
        for lib, versions in info.version_requirements.items():
            if self.in_wheel(lib) or _LOADER_RE.match(PurePosixPath(lib).name):
                continue
            for full in versions:
                prefix, sep, rest = full.partition("_")
                if not sep or prefix not in policy.symbol_versions:
                    continue
                if version_allowed(rest, policy.symbol_versions[prefix]):
                    continue
                if prefix in _GLIBC_PREFIXES:
                    rule = "glibc-version"
                elif prefix in _CXX_PREFIXES:
                    rule = "cxx-runtime-version"
                else:  # ZLIB_ and other versioned whitelisted libraries
                    rule = "needed-library"
                names = offending.setdefault((rule, prefix), [])
                if full not in names:
                    names.append(full)
        for (rule, prefix), names in offending.items():
            names.sort(key=lambda n: _version_key(n.partition("_")[2]) or ("~", ()))
            users = sorted({s.name for s in info.undefined if s.version in names})
            limit = _max_version(policy.symbol_versions[prefix])
            limit_text = f"{prefix} up to {limit}" if limit else f"no {prefix} versions"
            used_by = f" (used by {_short_list(users, 4)})" if users else ""
            fix = {
                "glibc-version": "build in the matching manylinux image (or zig cc -target ARCH-linux-gnu.X.Y) "
                "or claim a newer policy",
                "cxx-runtime-version": "build with the manylinux image's devtoolset/gcc-toolset "
                "(it links new C++ features statically) or claim a newer policy",
                "needed-library": "ship the library in the wheel (auditwheel repair) or build against an older one",
            }[rule]
            self.add(
                rule,
                rel,
                f"requires {_short_list(names)}{used_by}, but {policy.tag} allows {limit_text}; {fix}.",
            )

    def check_blacklist(self, rel: str, info: ElfInfo) -> None:
        policy = self.policy
        assert policy is not None
        for lib in info.needed:
            if lib not in policy.blacklist or self.in_wheel(lib):
                continue
            used = sorted(
                {s.name for s in info.undefined if s.binding != "WEAK"} & set(policy.blacklist[lib])
            )
            if used:
                rule = "glibc-version" if lib in _GLIBC_LIBS else "needed-library"
                self.add(
                    rule,
                    rel,
                    f"uses {_short_list(used)} from {lib}, which {policy.tag} does not allow "
                    "(auditwheel's policy blacklist); avoid these symbols.",
                )

    def check_unversioned(self, rel: str, info: ElfInfo) -> None:
        policy = self.policy
        assert policy is not None
        if policy.libc != "glibc" or not (set(info.needed) & _GLIBC_LIBS):
            return
        external = [
            lib
            for lib in info.needed
            if lib not in _VERSIONED_RUNTIME_LIBS
            and not self.in_wheel(lib)
            and not _LOADER_RE.match(PurePosixPath(lib).name)
        ]
        if external:
            # An unversioned symbol could come from one of those; we cannot tell which.
            return
        names = sorted(
            {
                s.name
                for s in info.undefined
                if s.version is None
                and s.binding != "WEAK"
                and not _PYTHON_SYMBOL_RE.match(s.name)
                and s.name not in self.wheel_exports
            }
        )
        if names:
            libs = ", ".join(sorted(set(info.needed) & _GLIBC_LIBS))
            self.add(
                "unversioned-libc",
                rel,
                f"imports {_short_list(names)} from glibc ({libs}) without a symbol version; "
                "unversioned references bind to whatever the user's glibc provides, so the "
                "manylinux guarantee does not hold. Link against a real glibc (not a stub "
                "or a sysroot without version info).",
            )

    def check_rpath(self, rel: str, info: ElfInfo) -> None:
        bad = [f"DT_RPATH {p}" for p in info.rpath if not _ORIGIN_RE.match(p)]
        bad += [f"DT_RUNPATH {p}" for p in info.runpath if not _ORIGIN_RE.match(p)]
        if bad:
            self.add(
                "rpath",
                rel,
                f"has {_short_list(bad)}; only $ORIGIN-relative entries may ship in a wheel (other "
                "paths are searched on the user's machine). Remove it (patchelf --remove-rpath) "
                "or let auditwheel repair set $ORIGIN/...",
            )

    def check_exports(self, rel: str, info: ElfInfo) -> None:
        extra = [
            s.name
            for s in info.exported
            if not s.name.startswith("PyInit_")
            and s.name not in _LINKER_SYMBOLS
            and not (s.binding in ("WEAK", "UNIQUE") and s.name.startswith(_STD_MANGLED_PREFIXES))
        ]
        if extra:
            inits = ", ".join(sorted(s.name for s in info.exported if s.name.startswith("PyInit_")))
            self.add(
                "exported-symbols",
                rel,
                f"exports {len(extra)} symbol{'s' if len(extra) != 1 else ''} besides {inits}: "
                f"{_short_list(sorted(extra))}; an extension module should export only its PyInit_ "
                "function (compile with -fvisibility=hidden, link static libraries with "
                "-Wl,--exclude-libs,ALL).",
            )

    # -- ldd
    def _should_run_ldd(self, info: ElfInfo) -> bool:
        if self.run_ldd is False or self._ldd is None:
            return False
        if info.arch != host_arch():
            return False  # cannot load a foreign-arch file here
        if self.run_ldd is None and self.policy is not None and self.policy.libc == "musl":
            return platform.libc_ver()[0] != "glibc"
        return True

    def check_ldd(self, rel: str) -> None:
        assert self._ldd is not None
        target = self.root / rel
        env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "LD_PRELOAD", "LD_AUDIT")}
        env["LC_ALL"] = "C"
        try:
            proc = subprocess.run(
                [self._ldd, "-r", str(target)],
                cwd=str(self.root),
                env=env,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=120,
            )
        except subprocess.TimeoutExpired:
            self.add("ldd", rel, "ldd -r did not finish within 120 s.")
            return
        output = proc.stdout + proc.stderr
        if "not a dynamic executable" in output or "statically linked" in output:
            return
        missing: List[str] = []
        undefined: Dict[str, List[str]] = {}
        versions: Dict[str, List[str]] = {}
        for line in output.splitlines():
            m = re.match(r"^\s*(\S+) => not found", line)
            if m:
                missing.append(m.group(1))
                continue
            m = re.search(r"undefined symbol: ([^\s,]+)(?:, version (\S+))?\s*\((.*)\)", line)
            if m:
                symbol, owner = m.group(1), self._owner(m.group(3), rel)
                if not _PYTHON_SYMBOL_RE.match(symbol):
                    undefined.setdefault(owner, []).append(symbol + (f"@{m.group(2)}" if m.group(2) else ""))
                continue
            m = re.search(r"version [`']([^']+)' not found \(required by (.+)\)", line)
            if m:
                versions.setdefault(self._owner(m.group(2), rel), []).append(m.group(1))
        if missing:
            self.add(
                "ldd",
                rel,
                f"ldd -r cannot find {_short_list(sorted(set(missing)))} with the wheel unpacked; "
                "ship it in the wheel (auditwheel repair) or fix the $ORIGIN RUNPATH.",
            )
        for owner, names in versions.items():
            self.add(
                "ldd",
                owner,
                f"ldd -r: this machine's libraries lack version(s) {_short_list(sorted(set(names)))}.",
            )
        for owner, names in undefined.items():
            self.add(
                "ldd",
                owner,
                f"ldd -r reports undefined symbol(s) {_short_list(sorted(set(names)))}; they are "
                "provided by no library the file loads.",
            )
        if proc.returncode != 0 and not (missing or versions or undefined):
            tail = " ".join(output.strip().splitlines()[-3:])[:300]
            self.add("ldd", rel, f"ldd -r failed (exit {proc.returncode}): {tail}")

    def _owner(self, reported: str, default: str) -> str:
        try:
            return Path(reported.strip()).resolve().relative_to(self.root).as_posix()
        except ValueError:
            return default


# --------------------------------------------------------------------------- API


def verify_wheel(path: str | os.PathLike[str], *, run_ldd: Optional[bool] = None) -> WheelReport:
    """Check every ELF file in the wheel at ``path``.

    ``run_ldd``: ``None`` runs ``ldd -r`` on files this machine can load (same arch, ldd
    present); ``True`` insists on ldd (error if missing); ``False`` never runs it.
    """
    wheel_path = Path(path)
    _check_wheel(wheel_path)
    platforms = wheel_platform_tags(wheel_path.name)
    policy = wheel_policy(wheel_path.name)
    report = WheelReport(
        wheel=wheel_path.name,
        tag_policy=policy.name if policy else "any",
        arch=policy.arch if policy else "any",
        platform_tags=platforms,
        path=str(wheel_path.resolve()),
    )
    with tempfile.TemporaryDirectory(prefix="geonox-verify-") as tmp:
        root = Path(tmp).resolve()
        try:
            _extract(wheel_path, root)
        except zipfile.BadZipFile as exc:
            raise UserError(f"{wheel_path} is not a readable wheel ({exc}); rebuild it.") from exc
        checker = _WheelChecker(wheel_path.name, root, policy, run_ldd)
        checker.collect()
        for rel, reason in checker.broken.items():
            checker.add("architecture", rel, f"starts with the ELF magic but cannot be parsed ({reason}), so no loader can load it.")
        for rel, info in checker.files.items():
            report.files.append(checker.check_file(rel, info))
    order = {rule: i for i, rule in enumerate(RULES)}
    report.violations = sorted(checker.violations, key=lambda v: (v.file, order.get(v.rule, 99)))
    return report


def _file_status(report: WheelReport, path: str) -> str:
    rules = sorted({v.rule for v in report.violations if v.file == path})
    return ",".join(rules) if rules else "ok"


def format_table(reports: Sequence[WheelReport]) -> str:
    """A plain-text table per wheel, for people."""
    blocks = []
    for report in reports:
        lines = [report.wheel]
        tags = ", ".join(report.platform_tags)
        if report.tag_policy == "any":
            lines.append(f"  policy: none (pure wheel, tags: {tags})")
        else:
            lines.append(f"  policy: {report.tag_policy}_{report.arch} (tags: {tags})")
        header = ("FILE", "MACHINE", "GLIBC", "GLIBCXX", "NEEDED", "EXPORTS", "STATUS")
        rows = [
            (
                f.path,
                f.machine,
                f.max_versions.get("GLIBC", "-"),
                f.max_versions.get("GLIBCXX", "-"),
                str(len(f.needed)),
                str(len(f.exported)),
                _file_status(report, f.path),
            )
            for f in report.files
        ]
        if rows:
            widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
            for row in [header, *rows]:
                lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        else:
            lines.append("  (no ELF files)")
        if report.violations:
            width = max(len(v.rule) for v in report.violations)
            for v in report.violations:
                lines.append(f"  {v.rule.ljust(width)}  {v.file}: {v.detail}")
            n = len(report.violations)
            lines.append(f"  {n} violation{'s' if n != 1 else ''}")
        else:
            lines.append("  OK")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def run_verify_command(wheels: Sequence[str], as_json: bool) -> int:
    """``python -m geonox verify``: print a table (or JSON); 0 if all wheels pass, else 1."""
    if not wheels:
        raise UserError("geonox verify needs at least one wheel path, e.g. wheelhouse/*.whl.")
    for wheel in wheels:
        _check_wheel(Path(wheel))
        wheel_platform_tags(Path(wheel).name)
    reports = [verify_wheel(w) for w in wheels]
    if as_json:
        print(json.dumps([r.to_dict() for r in reports], indent=2))
    else:
        print(format_table(reports))
    return 0 if all(r.ok for r in reports) else 1


__all__ = [
    "RULES",
    "FileReport",
    "Policy",
    "Violation",
    "WheelReport",
    "format_table",
    "resolve_policy",
    "run_verify_command",
    "verify_wheel",
    "version_allowed",
    "wheel_policy",
]
