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
    _engines: dict = field(default_factory=dict)
    _toolchains: dict = field(default_factory=dict)

    def target(self, arch: str) -> Target:
        return Target(arch=arch, policy=self.config.policy)

    def backend(self, arch: str) -> str:
        """The backend that builds ``arch``: as configured, or for ``auto`` a container
        engine when one answers, else this machine for its own arch."""
        backend = self.config.backend
        if backend != "auto":
            return backend
        engine = self._engine("auto", required=False)
        if engine is not None:
            return engine.kind
        if arch == host_arch():
            return "host"
        raise UserError(
            f"backend = \"auto\" found no way to build {arch} on this {host_arch()} machine: no "
            f"container engine answers. Start docker or podman (with QEMU binfmt for {arch}), "
            f"or drop {arch} from archs."
        )

    def _engine(self, kind: str, *, required: bool = True):  # noqa: ANN202 - Engine | None
        """The answering engine for ``kind`` (docker, podman, auto), looked up once."""
        from geonox.containers import Engine

        if self._engines.get(kind) is None:
            try:
                self._engines[kind] = Engine.find(kind)
            except UserError:
                if required:
                    raise
                self._engines[kind] = None
        return self._engines[kind]

    def executor(self, arch: str) -> Executor:
        if arch not in self._executors:
            backend = self.backend(arch)
            if backend == "host":
                self._executors[arch] = HostExecutor(arch)
            elif backend == "zig":
                # zig cross-compiles on this machine for any target arch.
                self._executors[arch] = HostExecutor(arch, cross=True)
            else:
                self._executors[arch] = self._container_executor(backend, arch)
        return self._executors[arch]

    def _container_executor(self, backend: str, arch: str) -> Executor:
        import geonox
        from geonox.containers import ContainerExecutor
        from geonox.images import ImageLock, default_image, pinned_image

        engine = self._engine(backend)
        config = self.config
        image = config.images.get(arch) or default_image(config.policy, arch)
        pinned = pinned_image(image, arch, ImageLock.load(config.project), config.allow_unpinned)
        mounts = [config.project, cache.cache_root(), Path(geonox.__file__).resolve().parent]
        if config.wheelhouse not in mounts and config.project not in config.wheelhouse.parents:
            mounts.append(config.wheelhouse)
        if config.dockerfile is not None:
            from geonox.containers import build_image

            self.log(f"images-{arch}: build image from {config.dockerfile.name} on {pinned.run_ref}")
            pinned = build_image(engine, pinned, arch, config.dockerfile,
                                 policy=config.policy, log=self.logs_dir(arch) / "image-build.log")
            self.log(f"images-{arch}: {pinned.run_ref} ({pinned.digest})")
        return ContainerExecutor(engine, pinned, arch, mounts=mounts,
                                 env_allow=config.container_env, mode=config.container_mode)

    def toolchain(self, arch: str):  # noqa: ANN201 - GccToolchain | ZigToolchain
        if arch not in self._toolchains:
            if self.backend(arch) == "zig":
                from geonox.zig import ZigToolchain

                tc = ZigToolchain(arch=arch, policy=self.config.policy, executor=self.executor(arch))
            else:
                tc = GccToolchain(arch=arch, executor=self.executor(arch))
            self._toolchains[arch] = tc
        return self._toolchains[arch]

    def image_archs(self) -> "tuple[str, ...]":
        """The configured archs whose builds or tests run in a container image."""
        return tuple(a for a in self.config.archs
                     if self.backend(a) in ("docker", "podman")
                     or (self.backend(a) == "zig" and a != host_arch()))

    def test_executor(self, arch: str) -> Executor:
        """Where wheels for ``arch`` are installed and tested: where they were built, or
        for a zig cross build of a foreign arch, a container of that arch's image (QEMU)."""
        if self.backend(arch) != "zig" or arch == host_arch():
            return self.executor(arch)
        key = f"test-{arch}"
        if key not in self._executors:
            self._executors[key] = self._container_executor(self._engine("auto").kind, arch)
        return self._executors[key]

    def prepare_image(self, arch: str):  # noqa: ANN201 - geonox.images.PinnedImage
        """Pull, check (and build, with a Dockerfile) the container image ``arch`` uses."""
        executor = self.test_executor(arch) if arch in self.image_archs() else None
        if executor is None:
            raise UserError(f"images-{arch}: backend {self.backend(arch)!r} runs {arch} in no "
                            f"container image; set backend = \"docker\" or \"podman\".")
        executor.prepare()
        return executor.image

    @property
    def work_dir(self) -> Path:
        """Per-project scratch in the cache: unrepaired wheels, stamps, reports, venvs."""
        digest = hashlib.sha256(str(self.config.project).encode()).hexdigest()[:12]
        return cache.cache_root() / "work" / f"{self.config.name}-{digest}"

    def build_python(self, py: PythonVersion | None) -> PythonVersion:
        """The interpreter that builds a wheel: its own, or for abi3 the oldest configured."""
        return py or self.config.pythons[0]

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
