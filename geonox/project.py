"""A configured project and the runs made on it.

:func:`load_config` is the public way to a :class:`~geonox.config.Config`: it does the I/O
the options layer does not (unpacking an sdist into the cache, asking git when the project
last changed) and hands the rest to :func:`geonox.config.read_config`.

A :class:`Project` is what every session of one registration shares: its config, its
cache, the container engines found, its work dir.  A :class:`Run` is one session's (or one
CLI command's) context, made for it and passed explicitly, as pypa/build passes its
``_ctx``: the name its lines start with and where they go.  Backends are made per run and
log to it; nothing shared is rebound from session to session.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from geonox import environment
from geonox.backends import Backend, Engines, backend_class
from geonox.cache import Artifact, CacheLayout, WorkDir, file_sha256
from geonox.config import Config, read_config
from geonox.cores import usable_cores
from geonox.errors import ConfigError
from geonox.sources.archives import extract
from geonox.targets import PythonVersion, Target

Log = Callable[[str], None]
SDIST_SUFFIXES = (".tar.gz", ".tgz", ".zip")


# ------------------------------------------------------------------ loading


def is_sdist(path: Path) -> bool:
    return path.name.lower().endswith(SDIST_SUFFIXES)


def unpack_sdist(sdist: Path, cache: CacheLayout) -> Path:
    """The project directory of ``sdist``, unpacked (safely, once per content) in the cache:
    building from it proves the sdist is complete, as a release pipeline should."""
    if not sdist.is_file():
        raise ConfigError(
            f"project {str(sdist)!r} is named like an sdist but is not a file; "
            "pass an sdist (.tar.gz) or the project's directory."
        )
    sha256 = file_sha256(sdist)
    stem = sdist.name[: -len(next(s for s in SDIST_SUFFIXES if sdist.name.lower().endswith(s)))]
    artifact = cache.sdist(f"{stem}-{sha256[:16]}")

    def unpack(place: Path) -> dict[str, str]:
        top = extract(sdist, place / "src")
        return {"sdist": str(sdist), "sha256": sha256, "top": top.name}

    artifact.ensure(unpack)
    top = artifact.path / "src" / artifact.read_marker()["top"]
    return top if top.is_dir() else artifact.path / "src"


def last_commit(project: Path, sdist: Path | None) -> int | None:
    """When the project last changed: its last commit touching its directory (git), or
    for an unpacked sdist the time of its PKG-INFO; None when neither says."""
    if sdist is not None:
        pkg_info = project / "PKG-INFO"
        return int(pkg_info.stat().st_mtime) if pkg_info.is_file() else None
    try:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%ct", "--", "."],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None  # no git
    text = out.stdout.strip()
    return int(text) if out.returncode == 0 and text.isdigit() else None


def _load(
    project: str | Path,
    overrides: Mapping[str, Any],
    environ: Mapping[str, str] | None,
    drop: set[str],
) -> Config:
    env = environment.read(environ)
    path, sdist = Path(project).resolve(), None
    if is_sdist(path):
        path, sdist = unpack_sdist(path, CacheLayout(env.cache_dir)), path
    return read_config(
        path,
        sdist=sdist,
        last_commit=last_commit(path, sdist),
        env=env,
        overrides=overrides,
        drop=drop,
    )


def load_config(
    project: str | Path = ".", *, environ: Mapping[str, str] | None = None, **overrides: Any
) -> Config:
    """Read and validate the configuration of ``project`` (a directory or an sdist, which is
    unpacked into the cache first); ``overrides`` are register()'s keywords."""
    return _load(project, overrides, environ, drop=set())


def load_config_lenient(
    project: str | Path = ".", **overrides: Any
) -> tuple[Config | None, ConfigError | None]:
    """The config, or the first error and a config with every bad key at its default (so
    the session names a broken config would have had can still be registered)."""
    try:
        return _load(project, overrides, None, drop=set()), None
    except ConfigError as first:
        drop: set[str] = set()
        error: ConfigError = first
        while error.key and error.key not in drop and len(drop) < 100:
            drop.add(error.key)
            try:
                return _load(project, overrides, None, drop=drop), first
            except ConfigError as exc:
                error = exc
        return None, first


# ------------------------------------------------------------------ the project


class Project:
    """One registered project: shared by every session of a registration."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.cache = CacheLayout(config.cache_dir)
        self.engines = Engines(dict(config.env.engines))

    def backend(self, target: Target, log: Log) -> Backend:
        """A new backend for ``target`` that logs to ``log`` (use it in a ``with``)."""
        cls = backend_class(self.config, target, self.engines)
        return cls(
            self.config,
            target,
            self.cache,
            self.engines,
            log=log,
            logs=self.workdir.logs(target.label),
        )

    def targets(self) -> tuple[Target, ...]:
        """Every configured target: each arch under each policy."""
        return tuple(t for arch in self.config.archs for t in self.config.targets(arch))

    def image_targets(self) -> tuple[Target, ...]:
        """The configured targets whose builds or tests run in a container image."""
        return tuple(t for t in self.targets() if self.backend(t, lambda text: None).runs_in_image)

    def run(self, name: str, log: Log = print) -> Run:
        return Run(self, name, log)

    # -- the work dir: per project, in the cache

    @functools.cached_property
    def work(self) -> Artifact:
        config = self.config
        digest = hashlib.sha256(str(config.project).encode()).hexdigest()[:12]
        artifact = self.cache.work_dir(f"{config.name}-{digest}")

        def make(place: Path) -> dict[str, str]:
            place.mkdir(parents=True, exist_ok=True)
            return {"project": str(config.project), "name": config.name}

        artifact.ensure(make, in_place=True)
        return artifact

    @property
    def workdir(self) -> WorkDir:
        """Unrepaired wheels, repair stamps, verify reports, test venvs and step logs."""
        return WorkDir(self.work.path)

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Hold the work dir (``cache prune`` leaves it alone) for as long as a step runs."""
        with self.work.reading():
            yield

    def build_python(self, py: PythonVersion | None) -> PythonVersion:
        """The interpreter that builds a wheel: its own, or for abi3 (and the build tools)
        the oldest configured one with a GIL (abi3 does not cover free-threaded CPython),
        else the oldest configured."""
        if py is not None:
            return py
        pythons = self.config.pythons
        return next((p for p in pythons if not p.free_threaded), pythons[0])

    def build_id(self, py: PythonVersion | None) -> str:
        """Which build a Python version uses: 'abi3' once per target, else its tag (cp312,
        cp313t: a free-threaded version has its own build even in an abi3 project)."""
        build = self.config.build_for(py)
        return "abi3" if build is None else build.tag

    @property
    def jobs(self) -> int:
        """Parallel compiles: the cores this process may use (affinity, cgroup quota)."""
        return usable_cores()


class Run:
    """One session's (or CLI command's) context: the project, the name its lines start with
    (``build-x86_64-3.12``; empty for none), and where they go (nox's ``session.log``,
    ``print``).  Made for the run, passed to what it runs, never rebound."""

    def __init__(self, project: Project, name: str, out: Log = print) -> None:
        self.project = project
        self.name = name
        self.out = out
        self._backends: dict[Target, Backend] = {}
        #: what the step did, for the summary (geonox.summary): set by the step, recorded
        #: by the session runner when the step succeeds
        self.facts: dict[str, Any] = {}

    @property
    def config(self) -> Config:
        return self.project.config

    def log(self, text: str) -> None:
        self.out(f"{self.name}: {text}" if self.name else text)

    def backend(self, target: Target) -> Backend:
        """This run's backend for ``target`` (one per target; use it in a ``with``)."""
        if target not in self._backends:
            # its own lines (images-x86_64: …) go out as they are
            self._backends[target] = self.project.backend(target, self.out)
        return self._backends[target]
