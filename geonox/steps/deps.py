"""deps: the target's dependency prefix, each dependency its own cached artifact
(:mod:`geonox.prefix` does the work)."""

from __future__ import annotations

from geonox.config import Config
from geonox.prefix import PrefixEngine
from geonox.project import Run
from geonox.steps.base import TargetKey, TargetStep, say_where


class DepsStep(TargetStep):
    name = "deps"

    def doc(self, config: Config, key: TargetKey) -> str:
        names = ", ".join(f"{d.name} {d.source.version}" for d in config.deps)
        modes = sorted({d.link for d in config.deps})
        return (
            f"Build {'/'.join(modes)} {names} for {key.target.platform_tag}, cached per dependency."
        )

    def run(self, run: Run, key: TargetKey) -> None:
        with run.backend(key.target) as backend:
            say_where(run, backend, "build")
            backend.check_interpreters()
            engine = PrefixEngine(run, backend)
            engine.ensure()
            run.facts.update(where=backend.where("build"), artifacts=engine.outcomes)


DEPS = DepsStep()
