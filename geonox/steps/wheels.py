"""wheels: the complete path, for one Python (ldd + test) or for every configured one."""

from __future__ import annotations

from geonox.config import Config
from geonox.project import Run
from geonox.steps.base import ArchKey, ArchStep, Needed, PythonKey, PythonStep
from geonox.steps.ldd import LDD
from geonox.steps.test import TEST


class WheelsStep(PythonStep):
    name = "wheels"

    def requires(self, config: Config, key: PythonKey) -> list[Needed]:
        return [(LDD, key), (TEST, key)]

    def doc(self, config: Config, key: PythonKey) -> str:
        return (
            f"Complete path for {key.arch}, Python {key.python.version}: deps, build, repair, "
            "ldd, test."
        )

    def run(self, run: Run, key: PythonKey) -> None:
        run.log(f"done; wheels in {run.config.wheelhouse}")


class AllWheelsStep(ArchStep):
    name = "wheels"

    def requires(self, config: Config, key: ArchKey) -> list[Needed]:
        return [(WHEELS, PythonKey(key.arch, py)) for py in config.pythons]

    def doc(self, config: Config, key: ArchKey) -> str:
        return (
            f"Complete path for {key.arch} and every configured Python "
            f"({', '.join(p.version for p in config.pythons)})."
        )

    def run(self, run: Run, key: ArchKey) -> None:
        run.log(f"done; wheels in {run.config.wheelhouse}")


WHEELS = WheelsStep()
ALL_WHEELS = AllWheelsStep()
