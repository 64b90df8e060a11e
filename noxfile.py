"""geonox's own noxfile: registers the example extension's sessions.

    nox -s wheels-x86_64          # the main job: the example's repaired wheels
    nox --list -t geonox          # what was registered
"""
import nox

import geonox

nox.options.default_venv_backend = "none"

geonox.register(project="examples/geodemo")


@nox.session(python=False, default=True)
def tests(session: nox.Session) -> None:
    """Run geonox's test suite (the README's test command)."""
    session.run("python", "-m", "pytest", *session.posargs)
