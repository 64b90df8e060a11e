"""Steps: pin-images · images · deps · build · repair · ldd · test · wheels.

Each is one :class:`~geonox.steps.base.Step` object; :data:`STEPS` is the registry the
plan, the nox sessions and the CLI iterate (in this order).  Steps know nothing of nox.
"""

from __future__ import annotations

from typing import Any

from geonox.steps.base import Step, only_wheel
from geonox.steps.build import BUILD
from geonox.steps.deps import DEPS
from geonox.steps.images import IMAGES, PIN_IMAGES
from geonox.steps.ldd import LDD
from geonox.steps.repair import REPAIR
from geonox.steps.test import TEST
from geonox.steps.wheels import ALL_WHEELS, TARGET_WHEELS, WHEELS

STEPS: tuple[Step[Any], ...] = (PIN_IMAGES, IMAGES, DEPS, BUILD, REPAIR, LDD, TEST, WHEELS,
                                TARGET_WHEELS, ALL_WHEELS)  # fmt: skip

__all__ = ["STEPS", "Step", "only_wheel"]
