"""build: the extension's wheel with pypa/build and scikit-build-core, against the prefix."""
from __future__ import annotations

import shutil

from geonox.executors import Command
from geonox.steps import Pipeline, only_wheel
from geonox.steps.deps import DepPrefix
from geonox.targets import PythonVersion


def build_wheel(pipe: Pipeline, arch: str, py: PythonVersion | None, prefix: DepPrefix,
                *, session: str) -> None:
    executor = pipe.executor(arch)
    toolchain = pipe.toolchain(arch)
    dist = pipe.dist_dir(arch, py)
    if dist.exists():
        shutil.rmtree(dist)
    dist.mkdir(parents=True)
    env = toolchain.extension_env(None if pipe.config.abi3 else py)
    # The maintainer contract: find_package(PROJ/GEOS CONFIG) and find_package(SQLite3)
    # resolve in the prefix.
    env["CMAKE_PREFIX_PATH"] = str(prefix.path)
    log = pipe.logs_dir(arch) / f"build-{pipe.build_id(py)}.log"
    log.unlink(missing_ok=True)
    build_py = pipe.build_python(py)
    frontend = executor.build_frontend(build_py, log=log)
    what = f"abi3 ({pipe.config.abi3}, built with {build_py.version})" if pipe.config.abi3 \
        else f"CPython {py.version}"
    pipe.log(f"{session}: building {pipe.config.name} for {arch}, {what} (log: {log})")
    executor.sync_in(prefix.path)
    executor.sync_in(pipe.config.project)
    executor.run(Command("build", (*frontend, "--wheel", "--outdir", str(dist),
                                   str(pipe.config.project)), env=env), log=log)
    executor.sync_out(dist)
    wheel = only_wheel(dist, "the build step's output")
    pipe.log(f"{session}: built {wheel.name}")
