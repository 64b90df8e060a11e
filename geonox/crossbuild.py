"""pypa/build for a cross build (run as a script by the build tools' Python, which has
``build`` and nothing of geonox).

A cross build names its wheel from ``_PYTHON_HOST_PLATFORM`` (the target), but its build
requirements run here, on the build machine: numpy answers ``get_include()``, Cython
compiles, setuptools links.  pip and uv both pick wheels for ``_PYTHON_HOST_PLATFORM``, so
``python -m build`` would install an aarch64 numpy that cannot be imported on x86_64.  Here
the requirements are installed with the variable unset and the backend then builds with it
set.  Arguments as ``python -m build``'s: ``--wheel --outdir DIR SRCDIR``.
"""

from __future__ import annotations

import argparse
import os
import sys

from build import ProjectBuilder
from build.env import DefaultIsolatedEnv


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="geonox-crossbuild")
    parser.add_argument("--wheel", action="store_true", required=True)
    parser.add_argument("--outdir", required=True)
    parser.add_argument("srcdir")
    args = parser.parse_args(argv)
    target = os.environ.pop("_PYTHON_HOST_PLATFORM", None)
    with DefaultIsolatedEnv() as env:
        builder = ProjectBuilder.from_isolated_env(env, args.srcdir)
        print(
            f"* build requirements for this machine: {sorted(builder.build_system_requires)}",
            flush=True,
        )
        env.install(builder.build_system_requires)
        env.install(builder.get_requires_for_build("wheel"))
        if target is not None:
            os.environ["_PYTHON_HOST_PLATFORM"] = target
        print(f"* building the wheel for {target or 'this machine'}", flush=True)
        wheel = builder.build("wheel", args.outdir)
    print(f"Successfully built {os.path.basename(wheel)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
