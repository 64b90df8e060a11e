"""Targets: architectures and CPython versions, and the names derived from them.
Policies (what a platform tag allows) live in :mod:`geonox.policy`."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Literal

Arch = Literal["x86_64", "aarch64"]
ARCHS: tuple[Arch, ...] = ("x86_64", "aarch64")
# Debian/OCI spelling of each arch (docker --platform, debootstrap --arch).
OCI_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
SUPPORTED_PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14")

_ARCH_ALIASES = {
    "amd64": "x86_64",
    "arm64": "aarch64",
    "i386": "i686",
    "i586": "i686",
    "armv8l": "armv7l",
}


def host_arch() -> str:
    machine = platform.machine().lower()
    return _ARCH_ALIASES.get(machine, machine)


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
