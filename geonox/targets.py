"""Targets: architectures, manylinux policies and CPython versions, and their names.

Policy names and aliases come from the policy data auditwheel ships
(``auditwheel/policy/manylinux-policy.json``); geonox keeps no copy of it.
"""
from __future__ import annotations

import functools
import json
import platform
import re
from dataclasses import dataclass
from importlib import resources

ARCHS = ("x86_64", "aarch64")
# Debian/OCI spelling of each arch (docker --platform, debootstrap --arch).
OCI_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
DEFAULT_POLICY = "manylinux_2_28"
SUPPORTED_PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14")
DEFAULT_PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13")


_ARCH_ALIASES = {"amd64": "x86_64", "arm64": "aarch64", "i386": "i686", "i586": "i686",
                 "armv8l": "armv7l"}
_POLICY_FILES = {"glibc": "manylinux-policy.json", "musl": "musllinux-policy.json"}


def host_arch() -> str:
    machine = platform.machine().lower()
    return _ARCH_ALIASES.get(machine, machine)


@functools.lru_cache(maxsize=None)
def policy_records(libc: str = "glibc") -> tuple[dict, ...]:
    """The policy records auditwheel ships for ``libc`` ("glibc" or "musl"), as it ships them."""
    text = (resources.files("auditwheel.policy") / _POLICY_FILES[libc]).read_text(encoding="utf-8")
    return tuple(json.loads(text))


def manylinux_policies() -> tuple[dict, ...]:
    """auditwheel's manylinux policy records, most compatible first."""
    records = [p for p in policy_records("glibc") if p["name"].startswith("manylinux")]
    return tuple(sorted(records, key=lambda p: -p["priority"]))


def policy_aliases() -> dict[str, str]:
    """Every accepted spelling -> canonical PEP 600 name (manylinux2014 -> manylinux_2_17)."""
    names: dict[str, str] = {}
    for p in manylinux_policies():
        names[p["name"]] = p["name"]
        for alias in p.get("aliases", []):
            names[alias] = p["name"]
    return names


def canonical_policy(name: str) -> str | None:
    return policy_aliases().get(name)


def policy_glibc(policy: str) -> tuple[int, int]:
    m = re.fullmatch(r"manylinux_(\d+)_(\d+)", policy)
    if not m:
        raise ValueError(policy)
    return int(m.group(1)), int(m.group(2))


@dataclass(frozen=True)
class PythonVersion:
    """A CPython minor version such as 3.12, and the names derived from it."""

    version: str

    @property
    def nodot(self) -> str:
        return self.version.replace(".", "")

    @property
    def tag(self) -> str:
        """``cp312``: the interpreter tag, also used as a nox session tag."""
        return f"cp{self.nodot}"

    @property
    def abi_dir(self) -> str:
        """``cp312-cp312``: the manylinux image's directory under /opt/python."""
        return f"{self.tag}-{self.tag}"

    @property
    def manylinux_exe(self) -> str:
        return f"/opt/python/{self.abi_dir}/bin/python"

    @property
    def host_exe(self) -> str:
        return f"python{self.version}"

    def sort_key(self) -> tuple[int, ...]:
        return tuple(int(x) for x in self.version.split("."))


@dataclass(frozen=True)
class Target:
    """What a dependency prefix and a wheel are built for: an arch under a policy."""

    arch: str
    policy: str  # canonical, e.g. manylinux_2_28

    @property
    def platform_tag(self) -> str:
        return f"{self.policy}_{self.arch}"

    @property
    def glibc(self) -> tuple[int, int]:
        return policy_glibc(self.policy)
