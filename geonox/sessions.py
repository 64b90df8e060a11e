"""nox sessions: one per :class:`geonox.plan.SessionSpec`, each a thin call into its step.

A broken ``[tool.geonox]`` does not take the maintainer's noxfile down: the error is
printed once, the maintainer's own sessions run as usual, and every geonox session (named
as the config would have named them, bad keys at their defaults) fails with that message.
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from typing import Any, Callable

import nox

from geonox import summary
from geonox.errors import UserError
from geonox.plan import SessionSpec, session_specs
from geonox.project import Project, load_config_lenient
from geonox.signals import stop_on_signals


def run_step(project: Project, spec: SessionSpec, log: Callable[[str], None]) -> None:
    """Run one session's step, its lines to ``log``; SIGTERM/SIGINT stop it cleanly (see
    geonox.signals)."""
    with stop_on_signals(), project.session():
        run = project.run(spec.name, log)
        t0 = time.monotonic()
        spec.run(run)
        key = spec.key
        target = getattr(key, "target", None)
        python = getattr(key, "python", None)
        summary.record(
            project.workdir.root,
            spec.name,
            {
                "step": spec.step.name,
                "arch": getattr(key, "arch", None),
                "target": target.label if target else None,
                "python": python.version if python else None,
                "seconds": round(time.monotonic() - t0, 1),
                **run.facts,
            },
        )


def _run(project: Project, spec: SessionSpec, session: Any) -> None:
    run_step(project, spec, session.log)


def _refuse(message: str, session: Any) -> None:
    raise UserError(message)


def _session_func(spec: SessionSpec, body: Callable[[Any], None]) -> Callable[[Any], None]:
    def session_func(session: Any) -> None:
        try:
            body(session)
        except UserError as exc:
            session.error(str(exc).rstrip("."))  # nox ends the line with its own period

    session_func.__name__ = spec.name.replace("-", "_").replace(".", "")
    session_func.__doc__ = spec.doc
    return session_func


def register(prefix: str = "", project: str = ".", **overrides: Any) -> list[str]:
    """Register geonox's sessions in the calling noxfile; returns their names.

    ``project`` is the extension's directory (its pyproject.toml holds ``[tool.geonox]``),
    relative to the noxfile.  Keyword overrides win over the environment and the table,
    e.g. ``register(archs=["x86_64"], python=["3.12"])``.  Sessions are not run by a bare
    ``nox`` (``default=False``); select them with ``-s`` or ``-t geonox``.
    """
    # nox logs at DEBUG; urllib3's connection chatter would bury geonox's own lines.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    config, error = load_config_lenient(project, **overrides)
    if error is not None:
        # The maintainer's to fix: one paragraph, no traceback, and their noxfile goes on.
        print(f"nox > geonox: {error}", file=sys.stderr)
    if config is None:
        return []
    proj = Project(config)
    names = []
    for spec in session_specs(config, prefix):
        body: Callable[[Any], None] = (
            functools.partial(_run, proj, spec)
            if error is None
            else functools.partial(_refuse, str(error))
        )
        nox.session(
            name=spec.name,
            python=False,
            tags=list(spec.tags),
            requires=list(spec.requires),
            default=False,
        )(_session_func(spec, body))
        names.append(spec.name)
    return names
