"""A command: an argument list (never a shell string), its working directory and the
variables it adds to the environment.  Recipes render them; executors run them."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Command:
    name: str  # short step name, used for the log file
    argv: tuple[str, ...]
    cwd: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)

    def display(self) -> str:
        return shlex.join(self.argv)
