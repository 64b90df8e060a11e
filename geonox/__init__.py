"""geonox: reusable nox sessions that build manylinux wheels of geospatial C/C++
extensions against static, verified PROJ, GEOS and SQLite."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from geonox.config import Config

__version__ = "0.1.0"

__all__ = ["__version__", "load_config", "register"]


def register(prefix: str = "", project: str = ".", **overrides: Any) -> list[str]:
    """See :func:`geonox.sessions.register`."""
    from geonox.sessions import register as _register

    return _register(prefix=prefix, project=project, **overrides)


def load_config(project: str = ".", **overrides: Any) -> Config:
    """See :func:`geonox.config.load_config`."""
    from geonox.config import load_config as _load

    return _load(project, **overrides)
