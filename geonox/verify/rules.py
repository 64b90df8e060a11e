"""The verify rules: a table of small functions over one ELF file's facts.

Each rule function takes the wheel's facts, the file's path in the wheel and its
:class:`~geonox.elf.ElfInfo`, and yields ``(rule, detail)`` findings.  ``FIXES`` is the
advice each version rule appends.  :data:`RULE_TABLE` says which file kinds a rule looks at.

``architecture``        e_machine differs from the arch in the platform tag.
``needed-library``      a DT_NEEDED library is neither in the policy's whitelist nor shipped
                        in the wheel (also: a policy-versioned library such as zlib asked for a
                        too-new version or a blacklisted symbol).
``glibc-version``       a GLIBC_x.y version newer than the policy allows (or GLIBC_PRIVATE).
``cxx-runtime-version`` the same for GLIBCXX_, CXXABI_, GCC_ (and LIBATOMIC_).
``unversioned-libc``    a non-weak undefined symbol with no version, in a file that links only
                        against glibc and the GCC runtime (so it can only come from glibc).
``rpath``               a DT_RPATH/DT_RUNPATH entry that is not ``$ORIGIN``-relative: an
                        error where the loader would search it (DT_RPATH; a DT_RUNPATH of a
                        file that needs a library the interpreter has not loaded), else a
                        warning (pyproj 3.8.0's musllinux ``_compat`` needs only libc).
``musl-relr``           a musllinux file uses DT_RELR relocations, which musl loads from 1.2.4
                        on (musllinux_1_2 admits 1.2.0 to 1.2.3): a warning.
``exported-library-api`` an extension module exports a bundled library's API (``proj_*``,
                        ``GEOS*``, ``sqlite3_*``): another module or library loaded
                        RTLD_GLOBAL could bind to that copy.
``exported-symbols``    an extension module exports more than its ``PyInit_*`` function
                        (Cython's ``__pyx_module_is_main_*``, helpers): harmless under
                        Python's RTLD_LOCAL loading, so a warning.
``duplicate-library``   one library (PROJ, GEOS, libgeos_c, SQLite) is carried by more than one
                        ELF file of the wheel: two copies, two states.
``undeclared-bundle``   a file carries a known library (PROJ, GEOS, SQLite) that no SBOM of the
                        wheel names (``.dist-info/sboms/``): scanners cannot see it.  An error
                        where an SBOM is required (geonox's own gate, ``--require-sbom``), a
                        warning elsewhere (most wheels on PyPI carry none yet).
``record``              RECORD does not list a file, or its hash or size is wrong.
``ldd``                 ``ldd -r`` reports a missing library, version or symbol (:mod:`.ldd`),
                        run on each module with the libraries it loads, as the loader sees them.

Each finding is an **error** (the wheel fails or misbehaves on a system its tag admits) or a
**warning** (house style; shown, fails only with ``--strict``): :data:`SEVERITY` gives each
rule's, and a rule may yield a third element to say otherwise for one finding.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath

from geonox.elf import ElfInfo
from geonox.policy import max_version, musl_libc_soname, version_allowed, version_sort_key
from geonox.recipes import known_libraries, registry
from geonox.verify.facts import (
    GLIBC_LIBS,
    LINKER_SYMBOLS,
    LOADER_RE,
    VERSIONED_RUNTIME_LIBS,
    WheelFacts,
    short_list,
)
from geonox.verify.glibc import INTERPRETER_LIBS, glibc_has

#: (rule, detail) or (rule, detail, severity)
Finding = tuple[str, ...]

#: The severity of each rule's findings unless a finding says otherwise.
SEVERITY = {
    "architecture": "error",
    "needed-library": "error",
    "glibc-version": "error",
    "cxx-runtime-version": "error",
    "unversioned-libc": "error",  # a warning where the policy's glibc has the symbol
    "rpath": "error",
    "exported-library-api": "error",
    "exported-symbols": "warning",
    "duplicate-library": "error",
    "undeclared-bundle": "error",  # a warning unless the caller requires an SBOM
    "record": "error",
    "ldd": "error",
    # PyPI's musllinux wheels (numpy's, shapely's libgcc_s) use DT_RELR: a fact to know, not
    # a gate every real musllinux wheel would fail
    "musl-relr": "warning",
}
RuleFunction = Callable[[WheelFacts, str, ElfInfo], Iterator[Finding]]

# Version namespaces (the part before the first "_") and the rule that judges them.
_GLIBC_PREFIXES = frozenset({"GLIBC"})
_CXX_PREFIXES = frozenset({"GLIBCXX", "CXXABI", "GCC", "LIBATOMIC"})
# Vague-linkage C++ symbols from namespace std / __gnu_cxx: libstdc++'s headers give them
# default visibility, so -fvisibility=hidden cannot hide the weak instantiations.
_STD_MANGLED_PREFIXES = (
    "_ZNSt",
    "_ZNKSt",
    "_ZSt",
    "_ZTISt",
    "_ZTSSt",
    "_ZTVSt",
    "_ZTINSt",
    "_ZTSNSt",
    "_ZTVNSt",
    "_ZZNSt",
    "_ZZNKSt",
    "_ZZSt",
    "_ZGVZNSt",
    "_ZGVZNKSt",
    "_ZN9__gnu_cxx",
    "_ZNK9__gnu_cxx",
    "_ZTIN9__gnu_cxx",
    "_ZTSN9__gnu_cxx",
    "_ZTVN9__gnu_cxx",
)
PYTHON_SYMBOL_RE = re.compile(r"^_?Py")
_LIBPYTHON_RE = re.compile(r"^libpython\d+\.\d+[a-z]*\.so(\.\d+)*$")
_ORIGIN_RE = re.compile(r"^(\$ORIGIN|\$\{ORIGIN\})(/.*)?$")

FIXES = {
    "glibc-version": "build in the matching manylinux image (or zig cc -target ARCH-linux-gnu.X.Y) "
    "or claim a newer policy",
    "cxx-runtime-version": "build with the manylinux image's devtoolset/gcc-toolset "
    "(it links new C++ features statically) or claim a newer policy",
    "needed-library": "ship the library in the wheel (auditwheel repair) or build against an "
    "older one",
}


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeio" else "a"


def architecture(facts: WheelFacts, rel: str, info: ElfInfo) -> Iterator[Finding]:
    found = info.arch or f"{info.machine} ({info.elf_class}-bit)"
    policy = facts.policy
    if policy is None:
        yield (
            "architecture",
            f"is a compiled {found} ELF file, but the wheel is tagged 'any' "
            "(pure Python); tag it with the platform it was built for.",
        )
    elif info.arch != policy.arch:
        yield (
            "architecture",
            f"is {_article(found)} {found} ELF file, but the wheel's platform "
            f"tag {policy.tag} says {policy.arch}; build it for {policy.arch} "
            "or fix the tag.",
        )


def needed_libraries(facts: WheelFacts, rel: str, info: ElfInfo) -> Iterator[Finding]:
    policy = facts.policy
    assert policy is not None
    bad = []
    for lib in info.needed:
        name = PurePosixPath(lib).name
        if LOADER_RE.match(name) or facts.in_wheel(lib):
            continue
        if _LIBPYTHON_RE.match(name) and policy.whitelist is not None:
            yield (
                "needed-library",
                f"NEEDS {lib}; an extension must not link libpython (the "
                "manylinux interpreters are statically linked), drop "
                "-lpython from the link.",
            )
            continue
        if policy.libc == "musl" and name == "libc.so":
            yield (
                "needed-library",
                f"NEEDS libc.so, musl's libc as zig and musl-gcc name it: musl's loader "
                f"answers it itself, so it loads, but musllinux wheels (and auditwheel, which "
                f"cannot repair it) name it {musl_libc_soname(policy.arch)}: patchelf "
                f"--replace-needed libc.so {musl_libc_soname(policy.arch)}.",
                "warning",
            )
            continue
        if policy.whitelist is not None and lib not in policy.whitelist:
            bad.append(lib)
    if bad:
        yield (
            "needed-library",
            f"NEEDS {short_list(bad)}, which {'is' if len(bad) == 1 else 'are'} "
            f"neither in the {policy.tag} library whitelist nor shipped in the "
            "wheel; run auditwheel repair to graft it, or link it statically.",
        )


def _version_rule(prefix: str) -> str:
    if prefix in _GLIBC_PREFIXES:
        return "glibc-version"
    if prefix in _CXX_PREFIXES:
        return "cxx-runtime-version"
    return "needed-library"  # ZLIB_ and other versioned whitelisted libraries


def symbol_versions(facts: WheelFacts, rel: str, info: ElfInfo) -> Iterator[Finding]:
    policy = facts.policy
    assert policy is not None
    offending: dict[tuple[str, str], list[str]] = {}  # (rule, prefix) -> full names, in order
    for versions in facts.external_requirements(info).values():
        for full in versions:
            prefix, sep, rest = full.partition("_")
            if not sep or prefix not in policy.symbol_versions:
                continue
            if version_allowed(rest, policy.symbol_versions[prefix]):
                continue
            names = offending.setdefault((_version_rule(prefix), prefix), [])
            if full not in names:
                names.append(full)
    for (rule, prefix), names in offending.items():
        names.sort(key=lambda n: version_sort_key(n.partition("_")[2]))
        users = sorted({s.name for s in info.undefined if s.version in names})
        limit = max_version(policy.symbol_versions[prefix])
        limit_text = f"{prefix} up to {limit}" if limit else f"no {prefix} versions"
        used_by = f" (used by {short_list(users, 4)})" if users else ""
        yield (
            rule,
            f"requires {short_list(names)}{used_by}, but {policy.tag} allows "
            f"{limit_text}; {FIXES[rule]}.",
        )


def blacklisted_symbols(facts: WheelFacts, rel: str, info: ElfInfo) -> Iterator[Finding]:
    policy = facts.policy
    assert policy is not None
    for lib in info.needed:
        if lib not in policy.blacklist or facts.in_wheel(lib):
            continue
        used = sorted(
            {s.name for s in info.undefined if s.binding != "WEAK"} & set(policy.blacklist[lib])
        )
        if used:
            yield (
                "glibc-version" if lib in GLIBC_LIBS else "needed-library",
                f"uses {short_list(used)} from {lib}, which {policy.tag} does not allow "
                "(auditwheel's policy blacklist); avoid these symbols.",
            )


def unversioned_libc(facts: WheelFacts, rel: str, info: ElfInfo) -> Iterator[Finding]:
    policy = facts.policy
    assert policy is not None
    if policy.libc != "glibc" or not (set(info.needed) & GLIBC_LIBS):
        return
    external = [
        lib
        for lib in info.needed
        if lib not in VERSIONED_RUNTIME_LIBS
        and not facts.in_wheel(lib)
        and not LOADER_RE.match(PurePosixPath(lib).name)
    ]
    if external:
        return  # an unversioned symbol could come from one of those; we cannot tell which
    names = sorted(
        {
            s.name
            for s in info.undefined
            if s.version is None
            and s.binding != "WEAK"
            and not PYTHON_SYMBOL_RE.match(s.name)
            and s.name not in facts.exports
        }
    )
    if not names:
        return
    libs = ", ".join(sorted(set(info.needed) & GLIBC_LIBS))
    present = {n for n in names if glibc_has(n, policy.arch, policy.glibc)}
    missing = [n for n in names if n not in present]
    if missing:
        yield (
            "unversioned-libc",
            f"imports {short_list(missing)} from glibc ({libs}) without a "
            f"symbol version, and glibc {policy.glibc[0]}.{policy.glibc[1]} "
            f"({policy.tag}) has no such symbol: the module fails to load "
            "on systems the tag admits. Link against a real glibc (not a "
            "stub or a sysroot without version info).",
        )
    if present:
        yield (
            "unversioned-libc",
            f"imports {short_list(sorted(present))} from glibc ({libs}) "
            "without a symbol version; glibc "
            f"{policy.glibc[0]}.{policy.glibc[1]} has "
            f"{'it' if len(present) == 1 else 'them'}, so it loads, but the "
            "binding is to whatever version the user's glibc makes default.",
            "warning",
        )


def musl_relr(facts: WheelFacts, rel: str, info: ElfInfo) -> Iterator[Finding]:
    policy = facts.policy
    assert policy is not None
    if policy.libc == "musl" and info.relr:
        yield (
            "musl-relr",
            f"uses DT_RELR relocations, which musl loads from 1.2.4 on; {policy.tag} admits "
            "musl 1.2.0 to 1.2.3 too (Alpine 3.13 to 3.17), whose loader crashes on it at "
            "import. Link without -z pack-relative-relocs to load everywhere the tag admits.",
        )


def rpath(facts: WheelFacts, rel: str, info: ElfInfo) -> Iterator[Finding]:
    bad_rpath = [p for p in info.rpath if not _ORIGIN_RE.match(p)]
    bad_runpath = [p for p in info.runpath if not _ORIGIN_RE.match(p)]
    if not (bad_rpath or bad_runpath):
        return
    bad = [f"DT_RPATH {p}" for p in bad_rpath] + [f"DT_RUNPATH {p}" for p in bad_runpath]
    # What the loader would look for there: DT_RPATH serves the libraries this file loads
    # and theirs, DT_RUNPATH only this file's own NEEDED entries, minus what every Python
    # process has loaded already (libc, libm, musl's libc: matched by name, never searched).
    searched = [
        lib
        for lib in info.needed
        if lib not in INTERPRETER_LIBS
        and not lib.startswith("libc.musl-")
        and not facts.in_wheel(lib)
        and not LOADER_RE.match(PurePosixPath(lib).name)
    ]
    if bad_rpath or searched:
        what = f"searched for {short_list(searched)} there first" if searched else "inherited"
        yield (
            "rpath",
            f"has {short_list(bad)} ({what}); only $ORIGIN-relative entries may ship in a "
            "wheel (other paths are searched on the user's machine). Remove it "
            "(patchelf --remove-rpath) or let auditwheel repair set $ORIGIN/...",
        )
    else:
        yield (
            "rpath",
            f"has {short_list(bad)}, a path of the build machine; this file needs nothing the "
            "loader would look for there (only libraries every Python process has loaded), "
            "so it loads the same everywhere, but remove it (patchelf --remove-rpath): a "
            "library this file comes to need would be looked for there first.",
            "warning",
        )


def exported_symbols(facts: WheelFacts, rel: str, info: ElfInfo) -> Iterator[Finding]:
    extra = [
        s.name
        for s in info.exported
        if not s.name.startswith("PyInit_")
        and s.name not in LINKER_SYMBOLS
        and not (s.binding in ("WEAK", "UNIQUE") and s.name.startswith(_STD_MANGLED_PREFIXES))
    ]
    if not extra:
        return
    inits = ", ".join(sorted(s.name for s in info.exported if s.name.startswith("PyInit_")))
    api = {lib.name: sorted(n for n in extra if lib.owns(n)) for lib in known_libraries()}
    api = {name: names for name, names in api.items() if names}
    for name, names in api.items():
        yield (
            "exported-library-api",
            f"exports {len(names)} symbol{'s' if len(names) != 1 else ''} "
            f"of {name}'s API ({short_list(names, 3)}); a module "
            "must not re-export a library it carries (link it with "
            "-Wl,--exclude-libs,ALL, or bundle it as a shared library).",
        )
    rest = sorted(set(extra) - {n for names in api.values() for n in names})
    if rest:
        yield (
            "exported-symbols",
            f"exports {len(rest)} symbol{'s' if len(rest) != 1 else ''} "
            f"besides {inits}: {short_list(rest)}; harmless under Python's "
            "RTLD_LOCAL loading, but an extension module should export only "
            "its PyInit_ function (-fvisibility=hidden).",
        )


def duplicate_libraries(facts: WheelFacts) -> Iterator[tuple[str, str, str]]:
    """``(rel, rule, detail)`` for every library more than one file carries."""
    holders: dict[str, list[str]] = {}
    for rel in sorted(facts.files):
        for name in facts.contains.get(rel, {}):
            holders.setdefault(name, []).append(rel)
    for name, rels in holders.items():
        if len(rels) < 2:
            continue
        evidence = "; ".join(f"{r} {facts.contains[r][name]}" for r in rels)
        yield (
            rels[0],
            "duplicate-library",
            f"{name} is in {len(rels)} files of the wheel ({evidence}): two copies of one "
            "library mean two states (objects from one crash or misbehave in the other). "
            "Link it into one place: one grafted shared library every module uses, or one "
            "module.",
        )


def unreachable_libraries(facts: WheelFacts) -> Iterator[tuple[str, str, str]]:
    for rel, lib, where in facts.unreachable:
        info = facts.files[rel]
        paths = (
            ", ".join(
                [*(f"RPATH {p}" for p in info.rpath), *(f"RUNPATH {p}" for p in info.runpath)]
            )
            or "no RPATH/RUNPATH"
        )
        yield (
            rel,
            "needed-library",
            f"NEEDS {lib}, which the wheel ships at {where}, but the loader will not find "
            f"it from here ({paths}); set an $ORIGIN-relative RUNPATH to its directory "
            "(auditwheel repair does).",
        )


def undeclared_bundles(facts: WheelFacts) -> Iterator[tuple[str, ...]]:
    """A known library inside the wheel that no SBOM component names (by recipe name, or
    the library's own name as auditwheel's SBOM spells a grafted file)."""
    owner = {lib.name: recipe.name for recipe in registry().values() for lib in recipe.libraries}
    declared = {n.lower() for n in facts.declared}
    reported: set[str] = set()
    for rel in sorted(facts.files):
        for lib in facts.contains.get(rel, {}):
            recipe = owner.get(lib, lib)
            if (
                recipe in reported
                or recipe in declared
                or lib in declared
                or f"lib{lib}" in declared
            ):
                continue
            reported.add(recipe)
            where = (
                "no SBOM"
                if not facts.sboms
                else f"its SBOM ({', '.join(facts.sboms)}) does not name it"
            )
            yield (
                rel,
                "undeclared-bundle",
                f"carries {recipe} ({facts.contains[rel][lib]}), but the wheel has {where}: a "
                "vulnerability scanner cannot see it. Repair the wheel with geonox (it writes "
                ".dist-info/sboms/geonox.cdx.json) or add a CycloneDX component for it.",
                "error" if facts.require_sbom else "warning",
            )


def record_mismatches(facts: WheelFacts) -> Iterator[tuple[str, str, str]]:
    for name, why in facts.record_problems:
        yield (
            name,
            "record",
            f"{why}; pip and auditwheel trust RECORD: rebuild or re-pack the "
            "wheel with a tool that rewrites it (wheel pack, auditwheel).",
        )


ANY_KIND = frozenset({"extension", "shared-library", "executable", "object"})
#: (rule function, the file kinds it applies to, whether it needs a policy), in report order.
RULE_TABLE: tuple[tuple[RuleFunction, frozenset[str], bool], ...] = (
    (architecture, ANY_KIND, False),
    (needed_libraries, ANY_KIND, True),
    (symbol_versions, ANY_KIND, True),
    (blacklisted_symbols, ANY_KIND, True),
    (unversioned_libc, ANY_KIND, True),
    (rpath, ANY_KIND, True),
    (musl_relr, ANY_KIND, True),
    (exported_symbols, frozenset({"extension"}), True),
)
#: Rules over the whole wheel, yielding ``(file, rule, detail)``.
WHEEL_RULES = (duplicate_libraries, unreachable_libraries, undeclared_bundles, record_mismatches)
