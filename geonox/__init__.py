"""geonox: reusable nox sessions that build manylinux wheels of geospatial C/C++
extensions against static, verified PROJ, GEOS and SQLite."""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["register", "load_config", "__version__"]


def register(prefix: str = "", project: str = ".", **overrides):  # noqa: ANN201
    """See :func:`geonox.sessions.register`."""
    from geonox.sessions import register as _register

    return _register(prefix=prefix, project=project, **overrides)


def load_config(project: str = ".", **overrides):  # noqa: ANN201
    from geonox.config import load_config as _load

    return _load(project, **overrides)
