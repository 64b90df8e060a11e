"""build: the extension's wheel with pypa/build (and the project's own PEP 517 backend,
scikit-build-core for the example), against the dependency prefix."""
from __future__ import annotations

import shutil

from geonox.command import Command
from geonox.config import Config
from geonox.project import Project
from geonox.steps.base import Key, Step, only_wheel, say_where
from geonox.steps.deps import build_deps
from geonox.targets import PythonVersion
from geonox.tools import build_frontend


class BuildStep(Step):
    name = "build"

    def pythons(self, config: Config) -> list[PythonVersion | None]:
        return [None] if config.abi3 else list(config.pythons)

    def normalise(self, config: Config, py: PythonVersion | None) -> PythonVersion | None:
        return None if config.abi3 else py

    def requires(self, config: Config, arch: str | None, py: PythonVersion | None) -> list[Key]:
        return [("deps", arch, None)]

    def doc(self, config: Config, arch: str | None, py: PythonVersion | None) -> str:
        if py is None:
            return f"Build the {config.abi3}-abi3 wheel of {config.name} for {arch}."
        return f"Build the {py.tag} wheel of {config.name} for {arch}."

    def run(self, project: Project, arch: str | None, py: PythonVersion | None, session: str) -> None:
        assert arch is not None
        config = project.config
        with project.backend(arch) as backend:
            say_where(project, backend, session, "build")
            prefix = build_deps(project, backend, session=session)  # cached: a lookup
            executor, toolchain = backend.executor, backend.toolchain
            dist = project.dist_dir(arch, py)
            if dist.exists():
                shutil.rmtree(dist)
            dist.mkdir(parents=True)
            env = toolchain.extension_env(None if config.abi3 else py)
            # The maintainer contract: find_package(PROJ/GEOS CONFIG) and find_package(SQLite3)
            # resolve in the prefix.
            env["CMAKE_PREFIX_PATH"] = str(prefix.path)
            log = project.logs_dir(arch) / f"build-{project.build_id(py)}.log"
            log.unlink(missing_ok=True)
            build_py = project.build_python(py)
            frontend = build_frontend(executor, project.cache, build_py, log=log)
            what = f"abi3 ({config.abi3}, built with {build_py.version})" if config.abi3 \
                else f"CPython {build_py.version}"
            project.log(f"{session}: building {config.name} for {arch}, {what} (log: {log})")
            with prefix.artifact.reading():
                executor.sync_in(prefix.path)
                executor.sync_in(config.project)
                executor.run(Command("build", (*frontend, "--wheel", "--outdir", str(dist),
                                               str(config.project)), env=env), log=log)
            executor.sync_out(dist)
            wheel = only_wheel(dist, "the build step's output")
            project.log(f"{session}: built {wheel.name}")


BUILD = BuildStep()
