"""test: a clean venv of that Python, the repaired wheel installed (binary only, no build
tools), and the test command run from a directory outside the source tree."""
from __future__ import annotations

import shlex

from geonox.errors import UserError
from geonox.executors import Command, log_tail
from geonox.steps import Pipeline
from geonox.steps.repair import repaired_wheel
from geonox.targets import PythonVersion


def test_step(pipe: Pipeline, arch: str, py: PythonVersion, *, session: str) -> None:
    config = pipe.config
    if not config.test_command:
        pipe.log(f"{session}: no test-command configured; nothing to run")
        return
    executor = pipe.test_executor(arch)
    wheel = repaired_wheel(pipe, arch, py)
    venv = pipe.work_dir / "venvs" / f"test-{arch}-{py.tag}"
    log = pipe.logs_dir(arch) / f"test-{py.tag}.log"
    log.unlink(missing_ok=True)
    interpreter = executor.python(py)
    pipe.log(f"{session}: installing {wheel.name} into a clean CPython {py.version} venv")
    executor.run(Command("clean", ("rm", "-rf", str(venv))), log=log)
    executor.run(Command("venv", (interpreter, "-m", "venv", str(venv))), log=log)
    vpython = str(venv / "bin" / "python")
    executor.sync_in(wheel)
    executor.run(Command("install", (vpython, "-m", "pip", "install", "--only-binary=:all:",
                                     "--no-build-isolation", str(wheel))), log=log)
    argv = shlex.split(config.test_command)
    if not argv:
        raise UserError("[tool.geonox] test-command is empty.")
    if argv[0] in ("python", "python3", f"python{py.version}"):
        argv[0] = vpython
    env = {"VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}:{executor.default_path()}",
           "PYTHONPATH": "", "PYTHONNOUSERSITE": "1"}
    run_log = pipe.logs_dir(arch) / f"test-{py.tag}-command.log"
    run_log.unlink(missing_ok=True)
    with executor.scratch_dir() as cwd:
        pipe.log(f"{session}: {shlex.join(argv)} (in {cwd})")
        executor.run(Command("test-command", tuple(argv), cwd=cwd, env=env), log=run_log)
    output = "\n".join(log_tail(run_log, 15).splitlines()[1:])  # minus the "$ command" line
    pipe.log(f"{session}: passed on CPython {py.version}" + (f":\n{output}" if output else ""))
