"""Two modules, one library: each module links SQLite with the flags pkg-config gives.
A third uses nothing of it but is linked the same way, with the library directory as its
runtime search path, as pyproj links all of its modules (where the linker drops unused
libraries, auditwheel leaves that module's build-machine RUNPATH alone)."""
import os
import subprocess

from setuptools import Extension, setup


def pkg_config(*args):
    return subprocess.check_output(["pkg-config", *args, "sqlite3"], text=True).split()


built_for = os.environ.get("TWOMOD_BUILT_FOR", "unknown")
libdir = pkg_config("--variable=libdir")
modules = [
    Extension(f"twomod._{name}", [f"src/twomod/_{name}.c"],
              extra_compile_args=pkg_config("--cflags"),
              extra_link_args=pkg_config("--libs"),
              runtime_library_dirs=libdir,
              define_macros=[("TWOMOD_BUILT_FOR", f'"{built_for}"')])
    for name in ("a", "b", "c")
]
setup(ext_modules=modules, package_dir={"": "src"}, packages=["twomod"])
