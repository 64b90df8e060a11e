"""Two modules, one library: each module links SQLite with the flags pkg-config gives."""
import os
import subprocess

from setuptools import Extension, setup


def pkg_config(*args):
    return subprocess.check_output(["pkg-config", *args, "sqlite3"], text=True).split()


built_for = os.environ.get("TWOMOD_BUILT_FOR", "unknown")
modules = [
    Extension(f"twomod._{name}", [f"src/twomod/_{name}.c"],
              extra_compile_args=pkg_config("--cflags"),
              extra_link_args=pkg_config("--libs"),
              define_macros=[("TWOMOD_BUILT_FOR", f'"{built_for}"')])
    for name in ("a", "b")
]
setup(ext_modules=modules, package_dir={"": "src"}, packages=["twomod"])
