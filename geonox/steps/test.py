"""test: a clean venv of that Python, the repaired wheel installed (binary only, no build
tools), and the test command run from a directory outside the source tree."""

from __future__ import annotations

import contextlib
import shlex
import shutil
from collections.abc import Iterator

from geonox.command import Command
from geonox.config import Config
from geonox.errors import UserError
from geonox.executors import Executor, log_tail
from geonox.project import Project, Run
from geonox.steps.base import Needed, PythonKey, PythonStep, expand, say_where
from geonox.steps.repair import REPAIR, repaired_wheel
from geonox.tools import new_venv, uv_bin


class TestStep(PythonStep):
    name = "test"
    __test__ = False  # not a pytest class

    def requires(self, config: Config, key: PythonKey) -> list[Needed]:
        return [(REPAIR, key)]

    def doc(self, config: Config, key: PythonKey) -> str:
        return (
            f"Install the repaired {key.arch} wheel in a clean Python {key.python.version} venv "
            "and run the test command."
        )

    def run(self, run: Run, key: PythonKey) -> None:
        project, config, arch, py = run.project, run.config, key.arch, key.python
        if not config.test_command:
            run.log("no test-command configured; nothing to run")
            return
        values = {"project": str(config.project), "package": str(config.project)}
        argv = [expand(a, values) for a in shlex.split(config.test_command)]
        if not argv:
            raise UserError("[tool.geonox] test-command is empty.")
        wheel = repaired_wheel(project, key)
        with run.backend(arch) as backend:
            say_where(run, backend, "test")
            executor = backend.test_executor
            venv = project.workdir.test_venv(arch, py.tag)
            log = project.workdir.log(arch, f"test-{py.tag}")
            interpreter = executor.python(py)
            uv = uv_bin(executor, config.env.uv)
            install = new_venv(executor, interpreter, venv, log=log, uv=uv)
            run.log(
                f"installing {wheel.name} into a clean CPython {py.version} venv "
                f"({'uv' if uv else 'pip'})"
            )
            vpython = str(venv / "bin" / "python")
            executor.sync_in(wheel)
            executor.run(Command("install", (*install, "--only-binary=:all:", str(wheel))), log=log)
            if config.test_requires:
                executor.run(Command("test-requires", (*install, *config.test_requires)), log=log)
            if "{project}" in config.test_command or "{package}" in config.test_command:
                executor.sync_in(config.project)
            if argv[0] in ("python", "python3", f"python{py.version}"):
                argv[0] = vpython
            env = {
                "VIRTUAL_ENV": str(venv),
                "PATH": f"{venv / 'bin'}:{executor.default_path()}",
                "PYTHONPATH": "",
                "PYTHONNOUSERSITE": "1",
            }
            run_log = project.workdir.log(arch, f"test-{py.tag}-command")
            with _test_dir(project, executor, key) as cwd:
                run.log(f"{shlex.join(argv)} (in {cwd})")
                executor.run(Command("test-command", tuple(argv), cwd=cwd, env=env), log=run_log)
        output = "\n".join(log_tail(run_log, 15).splitlines()[1:])  # minus the "$ command" line
        run.log(f"passed on CPython {py.version}" + (f":\n{output}" if output else ""))


@contextlib.contextmanager
def _test_dir(project: Project, executor: Executor, key: PythonKey) -> Iterator[str]:
    """Where the test command runs: outside the source tree (so the installed wheel is
    what gets imported), holding copies of the project's ``test-sources``."""
    config = project.config
    if not config.test_sources:
        with executor.scratch_dir() as cwd:
            yield cwd
        return
    where = project.workdir.test_dir(key.arch, key.python.tag)
    if where.exists():
        shutil.rmtree(where)
    where.mkdir(parents=True)
    for rel in config.test_sources:
        src, dest = config.project / rel, where / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest, symlinks=True)
        else:
            shutil.copy2(src, dest)
    executor.sync_in(where)
    yield str(where)


TEST = TestStep()
