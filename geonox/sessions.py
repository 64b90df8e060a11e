"""nox sessions: one per :class:`geonox.plan.SessionSpec`, each a thin call into a step."""
from __future__ import annotations

import sys
from typing import Any

from geonox.config import load_config
from geonox.errors import UserError
from geonox.plan import SessionSpec, session_specs
from geonox.steps import Pipeline


def _run_step(pipe: Pipeline, spec: SessionSpec) -> None:
    from geonox.steps.build import build_wheel
    from geonox.steps.deps import build_deps
    from geonox.steps.repair import repair_wheel
    from geonox.steps.test import test_step
    from geonox.steps.verify import verify_step

    arch, py, name = spec.arch, spec.python, spec.name
    if spec.step == "pin":
        from geonox.images import pin_images

        config = pipe.config
        pin_images(config.project, config.policy, pipe.image_archs(), dict(config.images),
                   log=pipe.log)
    elif spec.step == "images":
        image = pipe.prepare_image(arch)
        pipe.log(f"{name}: {image.run_ref} ({image.digest or 'unpinned'}) is ready")
    elif spec.step == "deps":
        build_deps(pipe, arch, session=name)
    elif spec.step == "build":
        prefix = build_deps(pipe, arch, session=name)  # cached: a lookup, not a rebuild
        build_wheel(pipe, arch, py, prefix, session=name)
    elif spec.step == "repair":
        repair_wheel(pipe, arch, py, session=name)
    elif spec.step == "ldd":
        verify_step(pipe, arch, py, session=name)
    elif spec.step == "test":
        test_step(pipe, arch, py, session=name)
    elif spec.step == "wheels":
        pipe.log(f"{name}: done; wheels in {pipe.config.wheelhouse}")


def _make_session(pipe: Pipeline, spec: SessionSpec):
    def session_func(session: Any) -> None:
        pipe.log = session.log
        try:
            _run_step(pipe, spec)
        except UserError as exc:
            session.error(str(exc).rstrip("."))  # nox ends the line with its own period

    session_func.__name__ = spec.name.replace("-", "_").replace(".", "")
    session_func.__doc__ = spec.doc
    return session_func


def register(prefix: str = "", project: str = ".", **overrides: Any) -> list[str]:
    """Register geonox's sessions in the calling noxfile; returns their names.

    ``project`` is the extension's directory (its pyproject.toml holds ``[tool.geonox]``),
    relative to the noxfile.  Keyword overrides win over the table, e.g.
    ``register(archs=["x86_64"], python=["3.12"])``.  Sessions are not run by a bare
    ``nox`` (``default=False``); select them with ``-s`` or ``-t geonox``.
    """
    import logging

    import nox

    # nox logs at DEBUG; urllib3's connection chatter would bury geonox's own lines.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    try:
        config = load_config(project, **overrides)
    except UserError as exc:
        # A config error is the maintainer's to fix: one paragraph, no traceback.
        print(f"nox > geonox: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    pipe = Pipeline(config)
    names = []
    for spec in session_specs(config, prefix):
        nox.session(name=spec.name, python=False, tags=list(spec.tags),
                    requires=list(spec.requires), default=False)(_make_session(pipe, spec))
        names.append(spec.name)
    return names
