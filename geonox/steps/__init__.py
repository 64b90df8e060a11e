"""Steps: deps · build · repair · verify · test.

The nox sessions and the CLI both call these; steps know nothing of nox.  A
:class:`Pipeline` holds what they share: the config, where to log, and which executor and
toolchain serve an arch.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from geonox import cache
from geonox.config import Config
from geonox.errors import UserError
from geonox.executors import Executor, HostExecutor
from geonox.targets import PythonVersion, Target, host_arch
from geonox.toolchains import GccToolchain


@dataclass
class Pipeline:
    config: Config
    log: Callable[[str], None] = print
    _executors: dict = field(default_factory=dict)

    def target(self, arch: str) -> Target:
        return Target(arch=arch, policy=self.config.policy)

    def backend(self, arch: str) -> str:
        backend = self.config.backend
        if backend == "auto":
            if arch == host_arch():
                return "host"
            raise UserError(
                f"backend = \"auto\" found no way to build {arch} on this {host_arch()} machine "
                f"yet. Set backend explicitly, or drop {arch} from archs."
            )
        if backend != "host":
            raise UserError(f"backend = \"{backend}\" is not available in this geonox version; "
                            f"use backend = \"host\".")
        return backend

    def executor(self, arch: str) -> Executor:
        if arch not in self._executors:
            self.backend(arch)
            self._executors[arch] = HostExecutor(arch)
        return self._executors[arch]

    def toolchain(self, arch: str) -> GccToolchain:
        return GccToolchain(arch=arch, executor=self.executor(arch))

    @property
    def work_dir(self) -> Path:
        """Per-project scratch in the cache: unrepaired wheels, stamps, reports, venvs."""
        digest = hashlib.sha256(str(self.config.project).encode()).hexdigest()[:12]
        return cache.cache_root() / "work" / f"{self.config.name}-{digest}"

    def build_id(self, py: PythonVersion | None) -> str:
        """Which build a Python version uses: 'abi3' once per arch, else its cpXY tag."""
        return "abi3" if self.config.abi3 else py.tag if py else "abi3"

    def dist_dir(self, arch: str, py: PythonVersion | None) -> Path:
        return self.work_dir / "dist" / arch / self.build_id(py)

    def logs_dir(self, arch: str) -> Path:
        return self.work_dir / "logs" / arch

    @property
    def jobs(self) -> int:
        return os.cpu_count() or 1


def only_wheel(directory: Path, what: str) -> Path:
    wheels = sorted(directory.glob("*.whl")) if directory.is_dir() else []
    if len(wheels) != 1:
        raise UserError(f"expected one wheel in {directory} ({what}), found {len(wheels)}: "
                        f"run the step before it first (nox requires chains them).")
    return wheels[0]
