"""The plan: targets × Python versions × steps, as session specs.

Both the nox registration (sessions.py) and ``python -m geonox plan`` read this, so the
session names, their ``requires`` chain and tags are decided in one place, from the step
objects in :data:`geonox.steps.STEPS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from geonox.config import Config
from geonox.steps import BY_NAME, STEPS, Key, Step
from geonox.targets import PythonVersion


@dataclass(frozen=True)
class SessionSpec:
    name: str
    step: Step
    arch: str | None
    python: PythonVersion | None
    requires: tuple[str, ...]
    tags: tuple[str, ...]
    doc: str


def session_name(config: Config, key: Key, prefix: str = "") -> str:
    step_name, arch, py = key
    step = BY_NAME[step_name]
    return prefix + step.session_name(arch, step.normalise(config, py))


def session_specs(config: Config, prefix: str = "") -> list[SessionSpec]:
    specs: list[SessionSpec] = []
    for arch in (None, *config.archs):
        for step in STEPS:
            if (step.scope == "project") != (arch is None):
                continue
            for py in step.pythons(config):
                requires = tuple(
                    dict.fromkeys(
                        session_name(config, k, prefix) for k in step.requires(config, arch, py)
                    )
                )
                tags = ("geonox", step.name) + ((arch,) if arch else ()) + ((py.tag,) if py else ())
                specs.append(
                    SessionSpec(
                        prefix + step.session_name(arch, py),
                        step,
                        arch,
                        py,
                        requires,
                        tags,
                        step.doc(config, arch, py),
                    )
                )
    return specs
