"""What a step is.  Each step is one object: its name, which sessions it has, what each
requires, its doc and how it runs.  The plan and the nox sessions iterate
:data:`geonox.steps.STEPS`; adding a step is one place.

A session is a step and a key, and each kind of step has its own key type, so a step's
``run`` gets exactly what its sessions are made of (no ``None`` to assert away):

==================  ===========================  =========================================
key                 sessions                     steps
==================  ===========================  =========================================
:class:`ProjectKey` ``pin-images``               pin-images
:class:`ArchKey`    ``wheels-x86_64``            wheels (every target and Python of an arch)
:class:`TargetKey`  ``deps-x86_64[-musl]``       images, deps, wheels (a musllinux target's)
:class:`BuildKey`   ``build-x86_64[-musl][-3.12]`` build (``python`` None: the abi3 build)
:class:`PythonKey`  ``repair-x86_64-3.13t``      repair, ldd, test, wheels (one Python)
==================  ===========================  =========================================

A target is an arch under a policy (:class:`geonox.targets.Target`); its label names the
sessions: the arch alone for the manylinux policy (the names of a single-policy project),
``x86_64-musl`` for the musllinux one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar, Union

from geonox.backends import Backend
from geonox.config import Config
from geonox.errors import UserError
from geonox.project import Run
from geonox.targets import PythonVersion, Target


@dataclass(frozen=True)
class ProjectKey:
    """One session for the project."""

    suffix: ClassVar[str] = ""
    tags: ClassVar[tuple[str, ...]] = ()


@dataclass(frozen=True)
class ArchKey:
    """One session per arch: everything built for it."""

    arch: str

    @property
    def suffix(self) -> str:
        return f"-{self.arch}"

    @property
    def tags(self) -> tuple[str, ...]:
        return (self.arch,)


@dataclass(frozen=True)
class _OnTarget:
    """A key of one target: its arch, and the name and tags every such session starts with."""

    target: Target

    @property
    def arch(self) -> str:
        return self.target.arch

    @property
    def suffix(self) -> str:
        return f"-{self.target.label}"

    @property
    def tags(self) -> tuple[str, ...]:
        return (self.target.arch, self.target.family)


@dataclass(frozen=True)
class TargetKey(_OnTarget):
    """One session per target (arch and policy)."""


@dataclass(frozen=True)
class PythonKey(_OnTarget):
    """One session per target and Python version."""

    python: PythonVersion

    @property
    def suffix(self) -> str:
        return f"{super().suffix}-{self.python.version}"

    @property
    def tags(self) -> tuple[str, ...]:
        return (*super().tags, self.python.tag)


@dataclass(frozen=True)
class BuildKey(_OnTarget):
    """One wheel build: per target and Python, or (``python`` None) one abi3 build per
    target."""

    python: PythonVersion | None

    @property
    def suffix(self) -> str:
        return super().suffix + (f"-{self.python.version}" if self.python else "")

    @property
    def tags(self) -> tuple[str, ...]:
        return super().tags + ((self.python.tag,) if self.python else ())


SessionKey = Union[ProjectKey, ArchKey, TargetKey, BuildKey, PythonKey]  # no "|" on 3.9
K = TypeVar("K", ProjectKey, ArchKey, TargetKey, BuildKey, PythonKey)


class Step(Generic[K]):
    name: ClassVar[str]  # the step: a session tag, and the stem of its session names
    stem: ClassVar[str] = ""  # the session name's stem when it is not the step's name

    def keys(self, config: Config, arch: str | None) -> list[K]:
        """This step's sessions for ``arch`` (``None``: the project's own sessions)."""
        raise NotImplementedError

    def session_name(self, key: K) -> str:
        return (self.stem or self.name) + key.suffix

    def requires(self, config: Config, key: K) -> list[Needed]:
        return []

    def doc(self, config: Config, key: K) -> str:
        raise NotImplementedError

    def run(self, run: Run, key: K) -> None:
        raise NotImplementedError


#: A session another one requires: its step and key.
Needed = tuple[Step[Any], SessionKey]


class ProjectStep(Step[ProjectKey]):
    def keys(self, config: Config, arch: str | None) -> list[ProjectKey]:
        return [ProjectKey()] if arch is None else []


class ArchStep(Step[ArchKey]):
    def keys(self, config: Config, arch: str | None) -> list[ArchKey]:
        return [] if arch is None else [ArchKey(arch)]


class TargetStep(Step[TargetKey]):
    def keys(self, config: Config, arch: str | None) -> list[TargetKey]:
        return [] if arch is None else [TargetKey(t) for t in config.targets(arch)]


class PythonStep(Step[PythonKey]):
    def keys(self, config: Config, arch: str | None) -> list[PythonKey]:
        if arch is None:
            return []
        return [PythonKey(t, py) for t in config.targets(arch) for py in config.pythons]


def say_where(run: Run, backend: Backend, role: str) -> None:
    """The first line of a session that builds, repairs or tests: where it runs."""
    run.log(f"runs on {backend.where(role)}")


def only_wheel(directory: Path, what: str) -> Path:
    wheels = sorted(directory.glob("*.whl")) if directory.is_dir() else []
    if len(wheels) != 1:
        raise UserError(
            f"expected one wheel in {directory} ({what}), found {len(wheels)}: "
            f"run the step before it first (nox requires chains them)."
        )
    return wheels[0]


_PLACEHOLDER = re.compile(r"\{(project|package|prefix|arch|python)\}")


def expand(text: str, values: Mapping[str, str]) -> str:
    """Replace the ``{project}``, ``{prefix}``, ... placeholders geonox knows; any other
    brace (``${HOME}``, a Python dict in a command) is left alone."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)
