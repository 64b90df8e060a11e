"""build: the extension's wheel with pypa/build (and the project's own PEP 517 backend,
scikit-build-core for the example), against the dependency prefix."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Mapping
from pathlib import Path

from geonox.backends import Backend
from geonox.command import Command
from geonox.config import Config
from geonox.elf import replace_needed_in_wheel
from geonox.prefix import PrefixEngine, consumer_env
from geonox.project import Project, Run
from geonox.steps.base import BuildKey, Needed, Step, TargetKey, expand, only_wheel, say_where
from geonox.steps.deps import DEPS
from geonox.toolchains import Ccache
from geonox.tools import build_frontend, uv_bin

#: Beside the built wheel: the dependency prefix it was built against (read by repair).
PREFIX_RECORD = ".geonox-prefix"

#: Left out of the fresh copy a build starts from: what earlier builds leave in a project
#: tree (setuptools reuses build/ and would relink nothing after a link-mode change).
_NOT_COPIED_AT_TOP = frozenset({"build", "dist", ".nox", ".tox", ".eggs"})


def fresh_tree(project: Project, dest: Path) -> Path:
    """A fresh copy of the project (or the unpacked sdist) at ``dest`` for one build:
    nothing a previous build left behind is reused, and ``before-build`` changes the copy,
    not the maintainer's tree."""
    config = project.config
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


def build_env(
    config: Config,
    backend: Backend,
    key: BuildKey,
    prefix: Path,
    placeholders: Mapping[str, str],
    *,
    ccache_stats: Path,
    constraints: Path | None,
) -> dict[str, str]:
    """The environment of one wheel build, from (later wins): the toolchain's, the consumer
    contract of every dependency (CMake packages, pkg-config files, GEOS_CONFIG, PROJ_DIR
    ...), the prefix's programs first on PATH, SOURCE_DATE_EPOCH, ccache for CMake-driven
    builds, the project's own build-env, and the build constraints."""
    env = backend.toolchain.extension_env(key.python)
    env.update(consumer_env(config, str(prefix)))
    env["PATH"] = f"{prefix}/bin:{backend.executor.default_path()}"
    # reproducible wheels: backends stamp zip entries (and compilers __DATE__) with it
    env["SOURCE_DATE_EPOCH"] = str(config.source_date_epoch)
    # CMake-driven builds (scikit-build-core) compile through ccache: a warm build's
    # compiles are hits.  (A kept build directory would not survive: scikit-build-core
    # clears it whenever its isolated environment's path changes, i.e. every build.)
    if backend.ccache:
        env.update(backend.ccache.cmake_env(backend.toolchain, stats_log=ccache_stats))
    env.update({k: expand(v, placeholders) for k, v in config.build_env.items()})
    if constraints is not None:
        # pip (build isolation) and uv read these from the environment
        env["PIP_CONSTRAINT"] = env["UV_BUILD_CONSTRAINT"] = env["UV_CONSTRAINT"] = str(constraints)
    return env


class BuildStep(Step[BuildKey]):
    name = "build"

    def keys(self, config: Config, arch: str | None) -> list[BuildKey]:
        if arch is None:
            return []
        return [BuildKey(t, py) for t in config.targets(arch) for py in config.builds()]

    def key_for(self, config: Config, key: BuildKey) -> BuildKey:
        """The build that serves ``key``'s Python (an abi3 build serves every Python but
        the free-threaded ones)."""
        return BuildKey(key.target, config.build_for(key.python))

    def requires(self, config: Config, key: BuildKey) -> list[Needed]:
        return [(DEPS, TargetKey(key.target))]

    def doc(self, config: Config, key: BuildKey) -> str:
        where = key.target.platform_tag
        if key.python is None:
            return f"Build the {config.abi3}-abi3 wheel of {config.name} for {where}."
        return f"Build the {key.python.tag} wheel of {config.name} for {where}."

    def run(self, run: Run, key: BuildKey) -> None:
        project, config, arch = run.project, run.config, key.arch
        workdir, build = project.workdir, project.build_id(key.python)
        label = key.target.label
        with run.backend(key.target) as backend:
            say_where(run, backend, "build")
            prefix = PrefixEngine(run, backend).ensure()  # cached: a lookup
            executor, toolchain = backend.executor, backend.toolchain
            dist = workdir.dist(label, build)
            if dist.exists():
                shutil.rmtree(dist)
            dist.mkdir(parents=True)
            log = workdir.log(label, f"build-{build}")
            build_py = project.build_python(key.python)
            tree = fresh_tree(project, workdir.tree(label, build))
            placeholders = {
                "project": str(tree),
                "package": str(tree),
                "prefix": str(prefix.path),
                "arch": arch,
                "python": executor.python(build_py),
            }
            constraints = None
            if config.build_constraints:
                constraints = workdir.constraints(label, build)
                constraints.parent.mkdir(parents=True, exist_ok=True)
                constraints.write_text("\n".join(config.build_constraints) + "\n")
                executor.sync_in(constraints)
            stats = dist / ".ccache-stats.log"  # what each compile did (ccache >= 4.5 writes it)
            env = build_env(
                config,
                backend,
                key,
                prefix.path,
                placeholders,
                ccache_stats=stats,
                constraints=constraints,
            )
            # A cross build installs its build requirements for the build machine (numpy,
            # Cython run here) and names the wheel for the target: geonox.crossbuild.
            uv = None if toolchain.cross else uv_bin(executor, config.env.uv)
            frontend = build_frontend(
                executor, project.cache, build_py, log=log, uv=uv, cross=toolchain.cross
            )
            what = (
                f"abi3 ({config.abi3}, built with {build_py.version})"
                if key.python is None
                else f"CPython {build_py.version}"
            )
            run.log(f"building {config.name} for {key.target.platform_tag}, {what} (log: {log})")
            with prefix.artifact.reading():
                executor.sync_in(prefix.path)
                executor.sync_in(tree)
                if config.before_build:
                    script = expand(config.before_build, placeholders)
                    run.log(f"before-build: {script}")
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
            for old, new in toolchain.needed_renames.items():
                renamed = replace_needed_in_wheel(wheel, old, new, config.source_date_epoch)
                if renamed:
                    run.log(f"NEEDED {old} -> {new} in {', '.join(renamed)}")
            # which prefix it was built against: repair grafts that prefix's libraries, so a
            # rebuilt dependency must be repaired in again even when this wheel's bytes are
            # the same (its headers did not change: a GDAL with another driver set)
            (dist / PREFIX_RECORD).write_text(str(prefix.path) + "\n")
            run.facts.update(build=build, where=backend.where("build"), ccache=hits)
            run.log(
                f"built {wheel.name}"
                + (f" (ccache: {hits[0]} of {hits[1]} compiles were hits)" if hits else "")
            )


BUILD = BuildStep()
