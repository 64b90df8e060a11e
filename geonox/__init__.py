"""geonox: reusable nox sessions that build manylinux wheels of geospatial C/C++
extensions against verified PROJ, GEOS and SQLite.

Imports inside functions are kept for one reason: ``python -m geonox verify`` runs inside
build containers from a venv holding only auditwheel's packages (auditwheel, pyelftools,
packaging), and starts often, so importing ``geonox`` (and the modules verify uses) must
not pull in nox, requests, filelock or platformdirs.  Everything else imports at the top.
"""

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
    """See :func:`geonox.project.load_config`."""
    from geonox.project import load_config as _load

    return _load(project, **overrides)
