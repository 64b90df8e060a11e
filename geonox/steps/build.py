"""build: the extension's wheel with pypa/build (and the project's own PEP 517 backend,
scikit-build-core for the example), against the dependency prefix."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from geonox.command import Command
from geonox.config import Config
from geonox.project import Project
from geonox.steps.base import Key, Step, expand, only_wheel, say_where
from geonox.steps.deps import build_deps, consumer_env
from geonox.targets import PythonVersion
from geonox.toolchains import Ccache
from geonox.tools import build_frontend, uv_bin

#: Left out of the fresh copy a build starts from: what earlier builds leave in a project
#: tree (setuptools reuses build/ and would relink nothing after a link-mode change).
_NOT_COPIED_AT_TOP = frozenset({"build", "dist", ".nox", ".tox", ".eggs"})


def fresh_tree(project: Project, arch: str, py: PythonVersion | None) -> Path:
    """A fresh copy of the project (or the unpacked sdist) for one build, in the work dir:
    nothing a previous build left behind is reused, and ``before-build`` changes the copy,
    not the maintainer's tree."""
    config = project.config
    dest = project.work_dir / "src" / f"{arch}-{project.build_id(py)}"
    if dest.exists():
        shutil.rmtree(dest)
    skip = set(_NOT_COPIED_AT_TOP)
    with contextlib.suppress(ValueError):
        skip.add(config.wheelhouse.relative_to(config.project).parts[0])

    def ignore(directory: str, names: list[str]) -> set[str]:
        at_top = Path(directory) == config.project
        return {
            n
            for n in names
            if n == "__pycache__" or n.endswith(".egg-info") or (at_top and n in skip)
        }

    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(config.project, dest, symlinks=True, ignore=ignore)
    return dest


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

    def run(
        self, project: Project, arch: str | None, py: PythonVersion | None, session: str
    ) -> None:
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
            log = project.logs_dir(arch) / f"build-{project.build_id(py)}.log"
            log.unlink(missing_ok=True)
            build_py = project.build_python(py)
            tree = fresh_tree(project, arch, py)
            env = toolchain.extension_env(None if config.abi3 else py)
            # The consumer contract: what each dependency publishes (CMake packages,
            # pkg-config files, GEOS_CONFIG, PROJ_DIR + PROJ_VERSION, ...), the prefix's
            # programs first on PATH, then the project's own build-env.
            env.update(consumer_env(config, str(prefix.path)))
            env["PATH"] = f"{prefix.path}/bin:{executor.default_path()}"
            # reproducible wheels: backends stamp zip entries (and compilers __DATE__) with it
            env["SOURCE_DATE_EPOCH"] = str(config.source_date_epoch)
            values = {
                "project": str(tree),
                "package": str(tree),
                "prefix": str(prefix.path),
                "arch": arch,
                "python": executor.python(build_py),
            }
            # CMake-driven builds (scikit-build-core) compile through ccache: a warm build's
            # compiles are hits.  (A kept build directory would not survive: scikit-build-core
            # clears it whenever its isolated environment's path changes, i.e. every build.)
            stats = dist / ".ccache-stats.log"  # what each compile did (ccache >= 4.5 writes it)
            if backend.ccache:
                env.update(backend.ccache.cmake_env(toolchain, stats_log=stats))
            env.update({k: expand(v, values) for k, v in config.build_env.items()})
            if config.build_constraints:
                constraints = (
                    project.work_dir / "constraints" / f"{arch}-{project.build_id(py)}.txt"
                )
                constraints.parent.mkdir(parents=True, exist_ok=True)
                constraints.write_text("\n".join(config.build_constraints) + "\n")
                executor.sync_in(constraints)
                # pip (build isolation) and uv read these from the environment
                env["PIP_CONSTRAINT"] = env["UV_BUILD_CONSTRAINT"] = str(constraints)
                env["UV_CONSTRAINT"] = str(constraints)
            # A cross build installs its build requirements for the build machine (numpy,
            # Cython run here) and names the wheel for the target: geonox.crossbuild.
            uv = None if toolchain.cross else uv_bin(executor, config.env.uv)
            frontend = build_frontend(
                executor, project.cache, build_py, log=log, uv=uv, cross=toolchain.cross
            )
            what = (
                f"abi3 ({config.abi3}, built with {build_py.version})"
                if config.abi3
                else f"CPython {build_py.version}"
            )
            project.log(f"{session}: building {config.name} for {arch}, {what} (log: {log})")
            with prefix.artifact.reading():
                executor.sync_in(prefix.path)
                executor.sync_in(tree)
                if config.before_build:
                    script = expand(config.before_build, values)
                    project.log(f"{session}: before-build: {script}")
                    executor.run(
                        Command("before-build", ("sh", "-c", script), env=env, cwd=str(tree)),
                        log=log,
                    )
                executor.run(
                    Command(
                        "build", (*frontend, "--wheel", "--outdir", str(dist), str(tree)), env=env
                    ),
                    log=log,
                )
            executor.sync_out(dist)
            hits = Ccache.hits(stats) if backend.ccache else None
            stats.unlink(missing_ok=True)
            wheel = only_wheel(dist, "the build step's output")
            project.log(
                f"{session}: built {wheel.name}"
                + (f" (ccache: {hits[0]} of {hits[1]} compiles were hits)" if hits else "")
            )


BUILD = BuildStep()
