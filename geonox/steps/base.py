"""What a step is.  Each step is one object: its name, which sessions it has (per project,
per arch, per wheel build, per Python), what each requires, its doc and how it runs.  The
plan and the nox sessions iterate :data:`geonox.steps.STEPS`; adding a step is one place."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal, Optional

from geonox.config import Config
from geonox.errors import UserError
from geonox.targets import PythonVersion

if TYPE_CHECKING:
    from geonox.backends import Backend
    from geonox.project import Project

Scope = Literal["project", "arch", "python"]
#: A session: (step name, arch or None, Python or None).
Key = tuple[str, Optional[str], Optional[PythonVersion]]  # a runtime alias: no "|" on 3.9


class Step:
    name: ClassVar[str]  # the step: a session tag, and the stem of its session names
    stem: ClassVar[str] = ""  # the session name's stem when it is not the step's name
    scope: ClassVar[Scope] = "python"

    def pythons(self, config: Config) -> list[PythonVersion | None]:
        """The Python part of this step's sessions for one arch (None: one for the arch)."""
        if self.scope == "python":
            return list(config.pythons)
        return [None]

    def normalise(self, config: Config, py: PythonVersion | None) -> PythonVersion | None:
        """The session that serves ``py`` (an abi3 build serves every Python)."""
        return py if self.scope == "python" else None

    def session_name(self, arch: str | None, py: PythonVersion | None) -> str:
        stem = self.stem or self.name
        if self.scope == "project" or arch is None:
            return stem
        return f"{stem}-{arch}" if py is None else f"{stem}-{arch}-{py.version}"

    def requires(self, config: Config, arch: str | None, py: PythonVersion | None) -> list[Key]:
        return []

    def doc(self, config: Config, arch: str | None, py: PythonVersion | None) -> str:
        raise NotImplementedError

    def run(
        self, project: Project, arch: str | None, py: PythonVersion | None, session: str
    ) -> None:
        raise NotImplementedError


def say_where(project: Project, backend: Backend, session: str, role: str) -> None:
    """The first line of a session that builds, repairs or tests: where it runs."""
    project.log(f"{session}: runs on {backend.where(role)}")


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
