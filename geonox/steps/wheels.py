"""wheels: the complete path, for one Python (ldd + test) or for every configured one."""

from __future__ import annotations

from geonox.config import Config
from geonox.project import Project
from geonox.steps.base import Key, Step
from geonox.targets import PythonVersion


class WheelsStep(Step):
    name = "wheels"

    def pythons(self, config: Config) -> list[PythonVersion | None]:
        return [*config.pythons, None]

    def normalise(self, config: Config, py: PythonVersion | None) -> PythonVersion | None:
        return py

    def requires(self, config: Config, arch: str | None, py: PythonVersion | None) -> list[Key]:
        if py is None:
            return [("wheels", arch, p) for p in config.pythons]
        return [("ldd", arch, py), ("test", arch, py)]

    def doc(self, config: Config, arch: str | None, py: PythonVersion | None) -> str:
        if py is None:
            return (
                f"Complete path for {arch} and every configured Python "
                f"({', '.join(p.version for p in config.pythons)})."
            )
        return f"Complete path for {arch}, Python {py.version}: deps, build, repair, ldd, test."

    def run(
        self, project: Project, arch: str | None, py: PythonVersion | None, session: str
    ) -> None:
        project.log(f"{session}: done; wheels in {project.config.wheelhouse}")


WHEELS = WheelsStep()
