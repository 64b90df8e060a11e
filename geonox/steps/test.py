"""test: a clean venv of that Python, the repaired wheel installed (binary only, no build
tools), and the test command run from a directory outside the source tree."""

from __future__ import annotations

import contextlib
import shlex
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

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
            f"Install the repaired {key.target.platform_tag} wheel in a clean Python "
            f"{key.python.version} venv and run the test command."
        )

    def run(self, run: Run, key: PythonKey) -> None:
        project, config, label, py = run.project, run.config, key.target.label, key.python
        if not config.test_command:
            run.log("no test-command configured; nothing to run")
            return
        values = {"project": str(config.project), "package": str(config.project)}
        argv = [expand(a, values) for a in shlex.split(config.test_command)]
        if not argv:
            raise UserError("[tool.geonox] test-command is empty.")
        wheel = repaired_wheel(project, key)
        with run.backend(key.target) as backend:
            say_where(run, backend, "test")
            executor = backend.test_executor
            venv = project.workdir.test_venv(label, py.tag)
            log = project.workdir.log(label, f"test-{py.tag}")
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
            if argv[0] in ("python", "python3", f"python{py.minor}", py.host_exe):
                argv[0] = vpython
            env = {
                "VIRTUAL_ENV": str(venv),
                "PATH": f"{venv / 'bin'}:{executor.default_path()}",
                "PYTHONPATH": "",
                "PYTHONNOUSERSITE": "1",
            }
            run_log = project.workdir.log(label, f"test-{py.tag}-command")
            with _test_dir(project, executor, key) as cwd:
                run.log(f"{shlex.join(argv)} (in {cwd})")
                executor.run(Command("test-command", tuple(argv), cwd=cwd, env=env), log=run_log)
            gil = _gil_check(executor, vpython, wheel, env) if py.free_threaded else None
        run.facts.update(wheel=wheel.name, tested=True)
        output = "\n".join(log_tail(run_log, 15).splitlines()[1:])  # minus the "$ command" line
        run.log(f"passed on CPython {py.version}" + (f":\n{output}" if output else ""))
        if gil:
            run.log(gil)


# Imports each module (argv) until one turns the GIL on; prints that module, or nothing.
_GIL_PROBE = """\
import importlib, sys, warnings
warnings.simplefilter("ignore")
for name in sys.argv[1:]:
    importlib.import_module(name)
    if sys._is_gil_enabled():
        print(name)
        break
"""


def extension_modules(wheel: Path) -> list[str]:
    """The importable names of a wheel's extension modules (``pkg._mod``), grafted
    libraries left out."""
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    found = []
    for name in names:
        parts = name.split("/")
        stem, _, suffix = parts[-1].partition(".")
        if (
            not suffix.endswith("so")
            or ".dist-info" in name
            or any(p.endswith((".libs", ".data")) for p in parts[:-1])
        ):
            continue
        if suffix == "so" or suffix.startswith(("cpython-", "abi3.")):
            found.append(".".join([*parts[:-1], stem]))
    return sorted(found)


def _gil_check(executor: Executor, vpython: str, wheel: Path, env: dict[str, str]) -> str:
    """On free-threaded CPython: whether importing the wheel's extension modules turns the
    GIL back on (a module that does not declare ``Py_mod_gil``), said in one line."""
    modules = extension_modules(wheel)
    if not modules:
        return ""
    # -P: the directory it runs in is not searched, the installed wheel is what imports
    out = executor.capture([vpython, "-P", "-c", _GIL_PROBE, *modules], env=env).strip()
    if not out:
        return f"the GIL stays disabled with its {len(modules)} extension module(s) imported"
    return (
        f"warning: importing {out.splitlines()[-1]} enabled the GIL, so this free-threaded "
        "build runs with it: the module does not declare free-threading support (C: a "
        "Py_mod_gil slot of Py_MOD_GIL_NOT_USED; Cython: freethreading_compatible=True)"
    )


@contextlib.contextmanager
def _test_dir(project: Project, executor: Executor, key: PythonKey) -> Iterator[str]:
    """Where the test command runs: outside the source tree (so the installed wheel is
    what gets imported), holding copies of the project's ``test-sources``."""
    config = project.config
    if not config.test_sources:
        with executor.scratch_dir() as cwd:
            yield cwd
        return
    where = project.workdir.test_dir(key.target.label, key.python.tag)
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
