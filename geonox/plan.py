"""The plan: targets × Python versions × steps, as session specs.

Both the nox registration (sessions.py) and ``python -m geonox plan`` read this, so the
session names, their ``requires`` chain and tags are decided in one place.
"""
from __future__ import annotations

from dataclasses import dataclass

from geonox.config import Config
from geonox.targets import PythonVersion

STEPS = ("pin", "images", "deps", "build", "repair", "ldd", "test", "wheels")


@dataclass(frozen=True)
class SessionSpec:
    name: str
    step: str
    arch: str
    python: PythonVersion | None
    requires: tuple[str, ...]
    tags: tuple[str, ...]
    doc: str


def session_specs(config: Config, prefix: str = "") -> list[SessionSpec]:
    specs: list[SessionSpec] = []
    abi3 = config.abi3

    def add(name: str, step: str, arch: str, py: PythonVersion | None,
            requires: "list[str]", doc: str) -> None:
        tags = ["geonox", step] + ([arch] if arch != "any" else []) + ([py.tag] if py else [])
        specs.append(SessionSpec(prefix + name, step, arch, py,
                                 tuple(prefix + r for r in requires), tuple(tags), doc))

    add("pin-images", "pin", "any", None, [],
        "Resolve each arch's build image tag to its digest and write geonox-images.lock.")
    for arch in config.archs:
        add(f"images-{arch}", "images", arch, None, [],
            f"Build (or find) the {arch} container build image"
            + (f" from {config.dockerfile.name}" if config.dockerfile else "") + ", pinned.")
        deps = f"deps-{arch}"
        names = ", ".join(f"{d.name} {d.source.version}" for d in config.deps)
        add(deps, "deps", arch, None, [],
            f"Build static {names} for {arch} ({config.policy}), cached by build key.")
        if abi3:
            add(f"build-{arch}", "build", arch, None, [deps],
                f"Build the {abi3}-abi3 wheel of {config.name} for {arch}.")
        for py in config.pythons:
            v = py.version
            build = f"build-{arch}" if abi3 else f"build-{arch}-{v}"
            if not abi3:
                add(build, "build", arch, py, [deps],
                    f"Build the {py.tag} wheel of {config.name} for {arch}.")
            add(f"repair-{arch}-{v}", "repair", arch, py, [build],
                f"auditwheel-repair the {arch} wheel for Python {v} into {config.wheelhouse.name}/.")
            add(f"ldd-{arch}-{v}", "ldd", arch, py, [f"repair-{arch}-{v}"],
                f"Check every ELF file of the repaired {arch} wheel (policy, symbols, exports, ldd -r).")
            add(f"test-{arch}-{v}", "test", arch, py, [f"repair-{arch}-{v}"],
                f"Install the repaired {arch} wheel in a clean Python {v} venv and run the test command.")
            add(f"wheels-{arch}-{v}", "wheels", arch, py, [f"ldd-{arch}-{v}", f"test-{arch}-{v}"],
                f"Complete path for {arch}, Python {v}: deps, build, repair, ldd, test.")
        add(f"wheels-{arch}", "wheels", arch, None,
            [f"wheels-{arch}-{py.version}" for py in config.pythons],
            f"Complete path for {arch} and every configured Python "
            f"({', '.join(p.version for p in config.pythons)}).")
    return specs
