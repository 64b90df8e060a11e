"""wheels: the complete path, for one Python (ldd + test), for every Python of a musllinux
target (``wheels-x86_64-musl``), or for everything an arch is built for (``wheels-x86_64``)."""

from __future__ import annotations

from geonox import summary
from geonox.config import Config
from geonox.project import Run
from geonox.steps.base import (
    ArchKey,
    ArchStep,
    Needed,
    PythonKey,
    PythonStep,
    TargetKey,
    TargetStep,
)
from geonox.steps.ldd import LDD
from geonox.steps.test import TEST


class WheelsStep(PythonStep):
    name = "wheels"

    def requires(self, config: Config, key: PythonKey) -> list[Needed]:
        return [(LDD, key), (TEST, key)]

    def doc(self, config: Config, key: PythonKey) -> str:
        return (
            f"Complete path for {key.target.platform_tag}, Python {key.python.version}: deps, "
            "build, repair, ldd, test."
        )

    def run(self, run: Run, key: PythonKey) -> None:
        _done(run)


class TargetWheelsStep(TargetStep):
    """Every Python of one target, where the target's label is not the arch itself (the
    manylinux target's is ``wheels-{arch}``, below)."""

    name = "wheels"

    def keys(self, config: Config, arch: str | None) -> list[TargetKey]:
        return [k for k in super().keys(config, arch) if k.target.label != k.target.arch]

    def requires(self, config: Config, key: TargetKey) -> list[Needed]:
        return [(WHEELS, PythonKey(key.target, py)) for py in config.pythons]

    def doc(self, config: Config, key: TargetKey) -> str:
        return f"Complete path for {key.target.platform_tag} and {_every_python(config)}."

    def run(self, run: Run, key: TargetKey) -> None:
        _done(run, key.arch, key.target.label)


class AllWheelsStep(ArchStep):
    name = "wheels"

    def requires(self, config: Config, key: ArchKey) -> list[Needed]:
        return [
            (WHEELS, PythonKey(target, py))
            for target in config.targets(key.arch)
            for py in config.pythons
        ]

    def doc(self, config: Config, key: ArchKey) -> str:
        policies = ", ".join(config.policies)
        return f"Complete path for {key.arch} ({policies}) and {_every_python(config)}."

    def run(self, run: Run, key: ArchKey) -> None:
        _done(run, key.arch)


def _every_python(config: Config) -> str:
    return f"every configured Python ({', '.join(p.version for p in config.pythons)})"


def _done(run: Run, arch: str | None = None, target: str | None = None) -> None:
    """The end of a wheels session; the arch's (or a target's) sessions end with the
    summary of what this run built, reused and shipped (one wheel's Python does not)."""
    if arch:
        summary.publish(run.project.workdir.root, arch, run.name or "wheels", run.out, target)
    run.log(f"done; wheels in {run.config.wheelhouse}")


WHEELS = WheelsStep()
TARGET_WHEELS = TargetWheelsStep()
ALL_WHEELS = AllWheelsStep()
