"""Targets: architectures and CPython versions, and the names derived from them.
Policies (what a platform tag allows) live in :mod:`geonox.policy`."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Arch = Literal["x86_64", "aarch64"]
ARCHS: tuple[Arch, ...] = ("x86_64", "aarch64")
# Debian/OCI spelling of each arch (docker --platform, debootstrap --arch).
OCI_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
SUPPORTED_PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14")
# free-threaded CPython (PEP 703): its own ABI (cp313t), from 3.13 on
FREE_THREADED_PYTHONS = ("3.13t", "3.14t")

_ARCH_ALIASES = {
    "amd64": "x86_64",
    "arm64": "aarch64",
    "i386": "i686",
    "i586": "i686",
    "armv8l": "armv7l",
}


def host_libc() -> str:
    """``glibc`` or ``musl``: the C library this machine's programs run on."""
    if platform.libc_ver()[0] == "glibc":
        return "glibc"
    return "musl" if any(Path("/lib").glob("ld-musl-*.so.1")) else "glibc"


def arch_name(machine: str) -> str:
    """geonox's name for what ``platform.machine()`` says (``arm64`` -> ``aarch64``)."""
    machine = machine.lower()
    return _ARCH_ALIASES.get(machine, machine)


def host_arch() -> str:
    return arch_name(platform.machine())


@dataclass(frozen=True)
class PythonVersion:
    """A CPython minor version such as 3.12, or a free-threaded build such as 3.13t
    (``--disable-gil``: its own ABI, ``cp313t``), and the names derived from it."""

    version: str  # as configured: "3.12", "3.13t"

    @property
    def free_threaded(self) -> bool:
        return self.version.endswith("t")

    @property
    def minor(self) -> str:
        """``3.13`` for both 3.13 and 3.13t."""
        return self.version.rstrip("t")

    @property
    def nodot(self) -> str:
        return self.minor.replace(".", "")

    @property
    def interpreter(self) -> str:
        """``cp313``: the wheel's Python tag (the same for 3.13 and 3.13t)."""
        return f"cp{self.nodot}"

    @property
    def tag(self) -> str:
        """``cp312``, ``cp313t``: the ABI tag, which tells the two builds of 3.13 apart; a
        nox session tag and the name of this version's build, venv and logs."""
        return self.interpreter + ("t" if self.free_threaded else "")

    @property
    def abi_dir(self) -> str:
        """``cp312-cp312``, ``cp313-cp313t``: the manylinux image's directory under /opt/python."""
        return f"{self.interpreter}-{self.tag}"

    @property
    def manylinux_exe(self) -> str:
        return f"/opt/python/{self.abi_dir}/bin/python"

    @property
    def host_exe(self) -> str:
        """``python3.12``, ``python3.13t``: the name on PATH (CPython installs both)."""
        return f"python{self.version}"

    def sort_key(self) -> tuple[int, ...]:
        """3.13 before 3.13t before 3.14."""
        return (*(int(x) for x in self.minor.split(".")), int(self.free_threaded))


@dataclass(frozen=True)
class Target:
    """What a dependency prefix and a wheel are built for: an arch under a policy (the
    policy names the libc: manylinux is glibc, musllinux is musl)."""

    arch: str
    policy: str  # canonical, e.g. manylinux_2_28, musllinux_1_2

    @property
    def platform_tag(self) -> str:
        return f"{self.policy}_{self.arch}"

    @property
    def libc(self) -> str:
        return "musl" if self.family == "musllinux" else "glibc"

    @property
    def family(self) -> str:
        """``manylinux`` or ``musllinux``: a nox session tag."""
        return policy_family(self.policy)

    @property
    def label(self) -> str:
        """How session names, image keys and work directories name this target: the arch
        for a manylinux policy (today's names), ``x86_64-musl`` for a musllinux one."""
        return self.arch if self.libc == "glibc" else f"{self.arch}-musl"


def target_labels() -> tuple[str, ...]:
    """Every label a target can have: ``x86_64``, ``x86_64-musl``, ``aarch64``, …"""
    return tuple(
        Target(arch, policy).label
        for arch in ARCHS
        for policy in ("manylinux_2_28", "musllinux_1_2")
    )


def policy_family(policy: str) -> str:
    """``manylinux`` (glibc) or ``musllinux`` (musl): what a policy's name says."""
    return "musllinux" if policy.startswith("musllinux") else "manylinux"
