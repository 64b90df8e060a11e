"""The plan: targets × Python versions × steps, as session specs.

Both the nox registration (sessions.py) and ``python -m geonox plan`` read this, so the
session names, their ``requires`` chain and tags are decided in one place, from the step
objects in :data:`geonox.steps.STEPS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from geonox.config import Config
from geonox.project import Run
from geonox.steps import STEPS
from geonox.steps.base import SessionKey, Step


@dataclass(frozen=True)
class SessionSpec:
    name: str
    step: Step[Any]
    key: SessionKey
    requires: tuple[str, ...]
    tags: tuple[str, ...]
    doc: str

    def run(self, run: Run) -> None:
        self.step.run(run, self.key)


def session_specs(config: Config, prefix: str = "") -> list[SessionSpec]:
    specs: list[SessionSpec] = []
    for arch in (None, *config.archs):
        for step in STEPS:
            for key in step.keys(config, arch):
                requires = tuple(
                    dict.fromkeys(prefix + s.session_name(k) for s, k in step.requires(config, key))
                )
                specs.append(
                    SessionSpec(
                        name=prefix + step.session_name(key),
                        step=step,
                        key=key,
                        requires=requires,
                        tags=("geonox", step.name, *key.tags),
                        doc=step.doc(config, key),
                    )
                )
    return specs
