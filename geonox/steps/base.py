"""What a step is.  Each step is one object: its name, which sessions it has, what each
requires, its doc and how it runs.  The plan and the nox sessions iterate
:data:`geonox.steps.STEPS`; adding a step is one place.

A session is a step and a key, and each kind of step has its own key type, so a step's
``run`` gets exactly what its sessions are made of (no ``None`` to assert away):

==================  ===========================  =========================================
key                 sessions                     steps
==================  ===========================  =========================================
:class:`ProjectKey` ``pin-images``               pin-images
:class:`ArchKey`    ``deps-x86_64``              images, deps, wheels (every Python)
:class:`BuildKey`   ``build-x86_64[-3.12]``      build (``python`` None: the abi3 build)
:class:`PythonKey`  ``repair-x86_64-3.12``       repair, ldd, test, wheels (one Python)
==================  ===========================  =========================================
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
from geonox.targets import PythonVersion


@dataclass(frozen=True)
class ProjectKey:
    """One session for the project."""

    suffix: ClassVar[str] = ""
    tags: ClassVar[tuple[str, ...]] = ()


@dataclass(frozen=True)
class ArchKey:
    """One session per arch."""

    arch: str

    @property
    def suffix(self) -> str:
        return f"-{self.arch}"

    @property
    def tags(self) -> tuple[str, ...]:
        return (self.arch,)


@dataclass(frozen=True)
class PythonKey:
    """One session per arch and Python version."""

    arch: str
    python: PythonVersion

    @property
    def suffix(self) -> str:
        return f"-{self.arch}-{self.python.version}"

    @property
    def tags(self) -> tuple[str, ...]:
        return (self.arch, self.python.tag)


@dataclass(frozen=True)
class BuildKey:
    """One wheel build: per arch and Python, or (``python`` None) one abi3 build per arch."""

    arch: str
    python: PythonVersion | None

    @property
    def suffix(self) -> str:
        return f"-{self.arch}" + (f"-{self.python.version}" if self.python else "")

    @property
    def tags(self) -> tuple[str, ...]:
        return (self.arch,) + ((self.python.tag,) if self.python else ())


SessionKey = Union[ProjectKey, ArchKey, BuildKey, PythonKey]  # a runtime alias: no "|" on 3.9
K = TypeVar("K", ProjectKey, ArchKey, BuildKey, PythonKey)


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


class PythonStep(Step[PythonKey]):
    def keys(self, config: Config, arch: str | None) -> list[PythonKey]:
        return [] if arch is None else [PythonKey(arch, py) for py in config.pythons]


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
