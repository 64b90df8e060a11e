"""Steps: pin-images · images · deps · build · repair · ldd · test · wheels.

Each is one :class:`~geonox.steps.base.Step` object; :data:`STEPS` is the registry the
plan, the nox sessions and the CLI iterate.  Steps know nothing of nox.
"""

from __future__ import annotations

from geonox.steps.base import Key, Step, only_wheel
from geonox.steps.build import BUILD
from geonox.steps.deps import DEPS
from geonox.steps.images import IMAGES, PIN_IMAGES
from geonox.steps.ldd import LDD
from geonox.steps.repair import REPAIR
from geonox.steps.test import TEST
from geonox.steps.wheels import WHEELS

STEPS: tuple[Step, ...] = (PIN_IMAGES, IMAGES, DEPS, BUILD, REPAIR, LDD, TEST, WHEELS)
BY_NAME: dict[str, Step] = {step.name: step for step in STEPS}

__all__ = ["BY_NAME", "STEPS", "Key", "Step", "only_wheel"]
