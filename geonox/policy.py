"""Platform policies, from the policy data auditwheel ships
(``auditwheel/policy/manylinux-policy.json`` and the musllinux one); geonox keeps no copy.

One :class:`Policy` object per (policy, arch), looked up by name (``Policy.named``) or by a
wheel's platform tag (:func:`resolve_policy`).  Config validation, the repair step, verify
and the zig toolchain all read policies and platform tags through this module.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from geonox.errors import UserError

_POLICY_FILES = {"glibc": "manylinux-policy.json", "musl": "musllinux-policy.json"}
_MUSL_LIBC_ARCH = {"i686": "x86", "armv7l": "armv7"}
_PLATFORM_RE = re.compile(
    r"^(?P<policy>manylinux_\d+_\d+|manylinux1|manylinux2010|manylinux2014|musllinux_\d+_\d+|linux)"
    r"_(?P<arch>[a-z0-9_]+)$"
)
_VERSION_RE = re.compile(r"^(?P<sub>[A-Za-z_]*?)(?P<num>\d+(?:\.\d+)*)$")
_NUMBERED_RE = re.compile(r"^(manylinux|musllinux)_(\d+)_(\d+)$")


# ------------------------------------------------------------------ auditwheel's data


@functools.cache
def policy_records(libc: str = "glibc") -> tuple[dict[str, Any], ...]:
    """The policy records auditwheel ships for ``libc`` ("glibc" or "musl"), as shipped."""
    return tuple(json.loads(_policy_data(_POLICY_FILES[libc])))


def _policy_data(name: str) -> str:
    """A data file of the ``auditwheel.policy`` package, found without importing that
    package (its ``__init__`` pulls in most of auditwheel: a third of verify's start-up)."""
    spec = importlib.util.find_spec("auditwheel.policy")
    places = list(spec.submodule_search_locations or ()) if spec else []
    for place in places:
        candidate = Path(place) / name
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    return (resources.files("auditwheel.policy") / name).read_text(encoding="utf-8")


def policy_aliases() -> dict[str, str]:
    """Every accepted policy spelling -> canonical name, manylinux (PEP 600) then musllinux
    (PEP 656), most compatible first (manylinux2014 -> manylinux_2_17)."""
    names: dict[str, str] = {}
    records = [
        p
        for libc in ("glibc", "musl")
        for p in sorted(policy_records(libc), key=lambda p: -p["priority"])
        if p["name"].startswith(("manylinux", "musllinux"))
    ]
    for p in records:
        names[p["name"]] = p["name"]
        for alias in p.get("aliases", []):
            names[alias] = p["name"]
    return names


def canonical_policy(name: str) -> str | None:
    return policy_aliases().get(name)


def glibc_of(name: str) -> tuple[int, int]:
    """``manylinux_2_28`` (or a platform tag ``manylinux_2_28_x86_64``) -> (2, 28)."""
    m = re.match(r"^manylinux_(\d+)_(\d+)(?:_|$)", name)
    if not m:
        raise ValueError(name)
    return int(m.group(1)), int(m.group(2))


def most_compatible_manylinux(platform_tags: Iterable[str]) -> str | None:
    """The ``manylinux_X_Y_arch`` tag with the oldest glibc among ``platform_tags``."""
    numbered = [t for t in platform_tags if t.startswith("manylinux_")]
    return min(numbered, key=glibc_of) if numbered else None


# ------------------------------------------------------------------ symbol versions


def _version_key(version: str) -> tuple[str, tuple[int, ...]] | None:
    """``"2.17"`` -> ``("", (2, 17))``; ``"LDBL_3.4.7"`` -> ``("LDBL_", (3, 4, 7))``; else None."""
    m = _VERSION_RE.match(version)
    if not m:
        return None
    return m.group("sub"), tuple(int(p) for p in m.group("num").split("."))


def version_sort_key(version: str) -> tuple[str, tuple[int, ...]]:
    return _version_key(version) or ("~", ())


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


def max_version(versions: Iterable[str]) -> str | None:
    versions = list(versions)
    plain = [(k[1], v) for v in versions for k in [_version_key(v)] if k is not None and k[0] == ""]
    if plain:
        return max(plain)[1]
    return max(versions) if versions else None


# ------------------------------------------------------------------ the policy object


@dataclass(frozen=True)
class Policy:
    """One auditwheel policy for one arch (``manylinux_2_17`` + ``x86_64``)."""

    name: str  # canonical: "manylinux_2_17", "musllinux_1_2", "linux"
    arch: str
    libc: str  # "glibc" or "musl"
    priority: int  # auditwheel's: higher is more restrictive
    whitelist: frozenset[str] | None = field(repr=False)  # None: any library ("linux")
    symbol_versions: Mapping[str, frozenset[str]] = field(repr=False)
    blacklist: Mapping[str, frozenset[str]] = field(repr=False)

    @property
    def tag(self) -> str:
        return f"{self.name}_{self.arch}"

    @property
    def glibc(self) -> tuple[int, int]:
        return glibc_of(self.name)

    @classmethod
    def named(cls, name: str, arch: str) -> Policy:
        """The policy called ``name`` (any alias) for ``arch``."""
        return resolve_policy(f"{name}_{arch}")

    @classmethod
    def _from_record(cls, entry: Mapping[str, Any], arch: str, libc: str) -> Policy:
        whitelist = []
        for lib in entry["lib_whitelist"]:
            if libc == "musl" and lib == "libc.so":
                lib = musl_libc_soname(arch)
            whitelist.append(lib)
        return cls(
            name=entry["name"],
            arch=arch,
            libc=libc,
            priority=int(entry["priority"]),
            whitelist=frozenset(whitelist),
            symbol_versions={k: frozenset(v) for k, v in entry["symbol_versions"][arch].items()},
            blacklist={k: frozenset(v) for k, v in entry.get("blacklist", {}).items()},
        )


def musl_libc_soname(arch: str) -> str:
    """musl's libc as musllinux wheels NEED it: ``libc.musl-x86_64.so.1``."""
    return f"libc.musl-{_MUSL_LIBC_ARCH.get(arch, arch)}.so.1"


def _numbered(name: str) -> tuple[str, int, int] | None:
    m = _NUMBERED_RE.match(name)
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
    entries = policy_records(libc)
    for entry in entries:
        if entry["name"] == name or name in entry.get("aliases", ()):
            if arch not in entry["symbol_versions"]:
                known = ", ".join(sorted(entry["symbol_versions"]))
                raise UserError(
                    f"The platform tag {platform_tag!r} names policy {entry['name']}, which "
                    f"auditwheel does not define for {arch} (it covers: {known}); retag the "
                    f"wheel with a policy that exists for {arch}."
                )
            return Policy._from_record(entry, arch, libc)
    # A policy newer than this auditwheel knows (e.g. manylinux_2_45): use the newest known
    # one below it for the library and C++ limits, and the tag's own glibc version.
    wanted = _numbered(name)
    older = [
        (num, entry)
        for entry in entries
        for num in [_numbered(entry["name"])]
        if num is not None
        and wanted is not None
        and num[1:] <= wanted[1:]
        and arch in entry["symbol_versions"]
    ]
    if not older:
        raise UserError(
            f"The platform tag {platform_tag!r} names a policy that auditwheel's policy data does "
            "not know and that is older than every known one; check the tag."
        )
    _, entry = max(older, key=lambda item: item[0][1:])
    base = Policy._from_record(entry, arch, libc)
    versions = dict(base.symbol_versions)
    if libc == "glibc" and wanted is not None:
        versions["GLIBC"] = versions.get("GLIBC", frozenset()) | {f"{wanted[1]}.{wanted[2]}"}
    return Policy(name, arch, libc, base.priority - 1, base.whitelist, versions, base.blacklist)


# ------------------------------------------------------------------ wheels


def wheel_platform_tags(filename: str) -> list[str]:
    try:
        _, _, _, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        raise UserError(
            f"{filename!r} is not a wheel file name ({exc}); geonox verify expects "
            "{dist}-{version}(-{build})?-{python}-{abi}-{platform}.whl."
        ) from exc
    return sorted({t.platform for t in tags})


def wheel_policy(filename: str) -> Policy | None:
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
