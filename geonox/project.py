"""A configured project: its config, one backend per arch, its work dir and its log.

Steps receive a :class:`Project`; the nox sessions and the CLI make one from the config.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from geonox.backends import BACKENDS, Backend, Engines, backend_name
from geonox.cache import Artifact, CacheLayout
from geonox.config import Config
from geonox.targets import PythonVersion, Target


class Project:
    def __init__(self, config: Config, log: Callable[[str], None] = print) -> None:
        self.config = config
        self.log = log
        self.cache = CacheLayout(config.cache_dir)
        self.engines = Engines(dict(config.env.engines))
        self._backends: dict[str, Backend] = {}

    def backend(self, arch: str) -> Backend:
        """The backend that builds ``arch`` (resolved once; use it in a ``with``)."""
        if arch not in self._backends:
            cls = BACKENDS[backend_name(self.config, arch, self.engines)]
            self._backends[arch] = cls(
                self.config,
                arch,
                self.cache,
                self.engines,
                lambda: self.log,
                lambda: self.logs_dir(arch),
            )
        return self._backends[arch]

    def image_archs(self) -> tuple[str, ...]:
        """The configured archs whose builds or tests run in a container image."""
        return tuple(a for a in self.config.archs if self.backend(a).runs_in_image)

    def target(self, arch: str) -> Target:
        return Target(arch=arch, policy=self.config.policy)

    # -- the work dir: per project, in the cache

    @functools.cached_property
    def work(self) -> Artifact:
        config = self.config
        digest = hashlib.sha256(str(config.project).encode()).hexdigest()[:12]
        artifact = self.cache.work_dir(f"{config.name}-{digest}")
        artifact.ensure(
            lambda place: (
                place.mkdir(parents=True, exist_ok=True),
                {"project": str(config.project), "name": config.name},
            )[1],
            in_place=True,
        )
        return artifact

    @property
    def work_dir(self) -> Path:
        """Unrepaired wheels, repair stamps, verify reports, test venvs and step logs."""
        return self.work.path

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Hold the work dir (``cache prune`` leaves it alone) for as long as a step runs."""
        with self.work.reading():
            yield

    def build_python(self, py: PythonVersion | None) -> PythonVersion:
        """The interpreter that builds a wheel: its own, or for abi3 the oldest configured."""
        return py or self.config.pythons[0]

    def build_id(self, py: PythonVersion | None) -> str:
        """Which build a Python version uses: 'abi3' once per arch, else its cpXY tag."""
        return "abi3" if self.config.abi3 or py is None else py.tag

    def dist_dir(self, arch: str, py: PythonVersion | None) -> Path:
        return self.work_dir / "dist" / arch / self.build_id(py)

    def logs_dir(self, arch: str) -> Path:
        return self.work_dir / "logs" / arch

    @property
    def jobs(self) -> int:
        return os.cpu_count() or 1
