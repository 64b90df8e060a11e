"""The module map's layering: no module imports (even lazily, inside a function, or for
annotations only, under ``if TYPE_CHECKING:``) a module of a higher layer.
docs/architecture.md shows the same map (tests/test_project_files.py compares them)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "geonox"

#: Lowest first.  A module may import its own layer and the ones below.
LAYERS = (
    {"errors", "command", "targets", "environment", "signals", "zigcc", "crossbuild", "cores"},
    {"policy", "elf", "cache", "wheeldiff", "registry", "wheelfile"},
    {"sources", "verify", "recipes", "images", "sbom", "remote", "summary"},
    {"config"},
    {"executors", "containers"},
    {"toolchains", "zig"},
    {"tools"},
    {"backends"},
    {"project"},
    {"prefix"},
    {"steps"},
    {"plan", "ci"},
    {"sessions", "cli", "__init__", "__main__"},
)


def layer_of(module: str) -> int:
    top = module.split(".")[1] if module.count(".") else "__init__"
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"{module} is in no layer of the module map")


def imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("geonox"):
            names = (
                [node.module]
                if node.module != "geonox"
                else [f"geonox.{a.name}" for a in node.names]
            )
            found += [(node.lineno, n) for n in names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("geonox")]
    return found


def test_every_module_is_in_a_layer_and_imports_only_downwards():
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(rel.parts)
        if module.endswith(".__init__") and module != "geonox.__init__":
            module = module[: -len(".__init__")]
        mine = layer_of(module if module != "geonox.__init__" else "geonox")
        for line, imported in imports(path):
            if imported == "geonox":
                continue  # the package itself (its __file__, __version__)
            theirs = layer_of(imported)
            if theirs > mine:
                problems.append(
                    f"{path.relative_to(PACKAGE.parent)}:{line} imports {imported} "
                    f"(layer {theirs} > {mine})"
                )
    assert problems == [], "\n".join(problems)


def test_the_layer_check_catches_an_upward_import(tmp_path):
    bad = tmp_path / "config.py"
    bad.write_text("def f():\n    from geonox.containers import Engine\n")
    assert imports(bad) == [(2, "geonox.containers")]
    assert layer_of("geonox.containers") > layer_of("geonox.config")


def test_verify_runs_with_only_auditwheels_packages(tmp_path):
    """In a build container geonox verify runs from a venv with auditwheel, pyelftools and
    packaging only: ``python -m geonox verify`` must not import requests, filelock,
    platformdirs or nox on the way (the recipes it reads library facts from included)."""
    import subprocess
    import sys

    code = (
        "import sys, runpy\n"
        "for m in ('requests', 'urllib3', 'filelock', 'platformdirs', 'nox'):\n"
        "    sys.modules[m] = None  # importing any of them now raises ImportError\n"
        "sys.argv = ['geonox', 'verify', '--json', sys.argv[1]]\n"
        "runpy.run_module('geonox', run_name='__main__')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "x-1.0-py3-none-any.whl")],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
    )
    assert "ImportError" not in proc.stderr and "ModuleNotFoundError" not in proc.stderr, (
        proc.stderr
    )
    assert "does not exist" in proc.stdout + proc.stderr  # it got as far as looking at the wheel
