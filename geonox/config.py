"""``[tool.geonox]`` in the extension project's pyproject.toml, validated into frozen
dataclasses.  ``geonox.register(**overrides)`` keywords override the table (``test_command``
for ``test-command``).  Every error names the key, the bad value and what is allowed."""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from geonox.errors import ConfigError
from geonox.recipes import build_order, registry
from geonox.sources import Source
from geonox.targets import (ARCHS, DEFAULT_POLICY, DEFAULT_PYTHONS, SUPPORTED_PYTHONS,
                            PythonVersion, canonical_policy, host_arch, policy_aliases)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10
    import tomli as tomllib

BACKENDS = ("auto", "host", "docker", "podman", "zig")
DEFAULT_EXCLUDE = ("libcurl.so.4", "libz.so.1")
TOP_KEYS = {
    "archs", "python", "backend", "policy", "deps", "test-command", "wheelhouse",
    "versions", "repair", "options", "sources", "mirrors", "offline",
    "images", "allow-unpinned", "container-env", "container-mode", "build-image", "dockerfile",
}
CONTAINER_MODES = ("auto", "bind", "copy")
REPAIR_KEYS = {"exclude", "lib-sdir"}
SOURCE_KEYS = {"version", "url", "sha256"}


@dataclass(frozen=True)
class RepairConfig:
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    lib_sdir: str = ".libs"


@dataclass(frozen=True)
class DepSpec:
    """One dependency as configured: its recipe, the source to build and its options."""

    name: str
    source: Source
    options: Mapping[str, bool]


@dataclass(frozen=True)
class Config:
    project: Path
    name: str
    archs: tuple[str, ...]
    pythons: tuple[PythonVersion, ...]
    backend: str
    policy: str
    deps: tuple[DepSpec, ...]  # in build order, dependencies first
    test_command: str | None
    wheelhouse: Path
    repair: RepairConfig = field(default_factory=RepairConfig)
    abi3: str | None = None  # e.g. "cp39" when [tool.scikit-build] wheel.py-api says so
    mirrors: tuple[str, ...] = ()
    offline: bool = False
    images: Mapping[str, str] = field(default_factory=dict)  # arch -> image reference
    allow_unpinned: bool = False
    container_env: tuple[str, ...] = ()
    container_mode: str = "auto"
    dockerfile: Path | None = None  # build image on top of the pinned one (build-image)


def _err(key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"[tool.geonox] {key} = {value!r} is not valid: {allowed}.")


def _str_list(key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise _err(key, value, "expected a list of strings")
    return list(value)


def _choose(key: str, values: list[str], allowed: "tuple[str, ...] | list[str]") -> list[str]:
    for v in values:
        if v not in allowed:
            raise _err(key, v, "allowed: " + ", ".join(allowed))
    return list(dict.fromkeys(values))


def _default_pythons(project_table: Mapping[str, Any]) -> list[str]:
    classifiers = project_table.get("classifiers", [])
    listed = [c.rsplit("::", 1)[1].strip() for c in classifiers
              if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)]
    listed = [v for v in listed if v in SUPPORTED_PYTHONS]
    if listed:
        return sorted(set(listed), key=lambda v: PythonVersion(v).sort_key())
    requires = project_table.get("requires-python")
    if requires:
        try:
            spec = SpecifierSet(requires)
        except InvalidSpecifier:
            return list(DEFAULT_PYTHONS)
        return [v for v in DEFAULT_PYTHONS if spec.contains(f"{v}.0") or spec.contains(f"{v}.99")]
    return list(DEFAULT_PYTHONS)


def _pythons(value: Any) -> list[PythonVersion]:
    versions = _str_list("python", value)
    for v in versions:
        if not re.fullmatch(r"3\.\d+", v) or v not in SUPPORTED_PYTHONS:
            raise _err("python", v, "expected CPython versions like \"3.12\"; supported: "
                       + ", ".join(SUPPORTED_PYTHONS))
    ordered = sorted(set(versions), key=lambda v: PythonVersion(v).sort_key())
    return [PythonVersion(v) for v in ordered]


def _custom_source(name: str, table: Any) -> Source:
    key = f"sources.{name}"
    if not isinstance(table, dict):
        raise _err(key, table, "expected a table with version, url and sha256")
    unknown = set(table) - SOURCE_KEYS
    if unknown:
        raise _err(f"{key}.{sorted(unknown)[0]}", table[sorted(unknown)[0]],
                   "allowed keys: version, url, sha256")
    sha = str(table.get("sha256", "")).lower()
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise ConfigError(
            f"[tool.geonox.sources.{name}] has no valid sha256 (got {table.get('sha256')!r}): "
            f"geonox never builds an unverified source. Add sha256 = \"<64 hex digits>\" as "
            f"published by upstream (or computed with `sha256sum` on a file you trust)."
        )
    for k in ("version", "url"):
        if not isinstance(table.get(k), str) or not table[k]:
            raise _err(f"{key}.{k}", table.get(k), "expected a non-empty string")
    return Source(name=name, version=table["version"], url=table["url"], sha256=sha)


def _deps(table: Mapping[str, Any]) -> list[DepSpec]:
    recipes = registry()
    names = _choose("deps", _str_list("deps", table.get("deps", ["sqlite", "geos", "proj"])),
                    tuple(recipes))
    versions = table.get("versions", {})
    if not isinstance(versions, dict):
        raise _err("versions", versions, "expected a table like { proj = \"9.1.1\" }")
    sources = table.get("sources", {})
    if not isinstance(sources, dict):
        raise _err("sources", sources, "expected tables like [tool.geonox.sources.proj]")
    for name in list(versions) + list(sources):
        if name not in recipes:
            raise _err(f"versions.{name}" if name in versions else f"sources.{name}", name,
                       "known recipes: " + ", ".join(recipes))
    options = table.get("options", {})
    if not isinstance(options, dict):
        raise _err("options", options, "expected tables like [tool.geonox.options.proj]")
    specs = []
    for name in build_order(names):
        recipe = recipes[name]
        if name in sources:
            source = _custom_source(name, sources[name])
        else:
            version = versions.get(name, recipe.default_version)
            if version not in recipe.releases:
                raise _err(f"versions.{name}", version,
                           "known releases: " + ", ".join(recipe.releases)
                           + f" (or pin any release with [tool.geonox.sources.{name}])")
            source = recipe.releases[version]
        opts = dict(recipe.options)
        given = options.get(name, {})
        for k, v in (given.items() if isinstance(given, dict) else [("", given)]):
            if k not in recipe.options or not isinstance(v, bool):
                raise _err(f"options.{name}.{k}" if k else f"options.{name}", v,
                           f"{name} options: " + (", ".join(f"{o} (true/false)" for o in
                                                            recipe.options) or "none"))
            opts[k] = v
        specs.append(DepSpec(name=name, source=source, options=opts))
    return specs


def _repair(value: Any) -> RepairConfig:
    if not isinstance(value, dict):
        raise _err("repair", value, "expected a table with exclude and lib-sdir")
    for k in value:
        if k not in REPAIR_KEYS:
            raise _err(f"repair.{k}", value[k], "allowed keys: exclude, lib-sdir")
    exclude = tuple(_str_list("repair.exclude", value.get("exclude", list(DEFAULT_EXCLUDE))))
    lib_sdir = value.get("lib-sdir", ".libs")
    if not isinstance(lib_sdir, str) or not lib_sdir or "/" in lib_sdir:
        raise _err("repair.lib-sdir", lib_sdir, "expected a directory name such as \".libs\"")
    return RepairConfig(exclude=exclude, lib_sdir=lib_sdir)


def _abi3(pyproject: Mapping[str, Any]) -> str | None:
    sk = pyproject.get("tool", {}).get("scikit-build", {})
    api = sk.get("wheel", {}).get("py-api") or sk.get("wheel.py-api")
    if isinstance(api, str) and re.fullmatch(r"cp3\d+", api):
        return api
    return None


def read_pyproject(project: Path) -> dict[str, Any]:
    path = project / "pyproject.toml"
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"no pyproject.toml in {project}: geonox needs the extension "
                          f"project's directory (register(project=...)).") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}.") from None


def load_config(project: "str | Path" = ".", **overrides: Any) -> Config:
    """Read and validate ``[tool.geonox]``; keyword overrides win over the file."""
    project = Path(project).resolve()
    pyproject = read_pyproject(project)
    table = dict(pyproject.get("tool", {}).get("geonox", {}))
    for key, value in overrides.items():
        table[key.replace("_", "-")] = value
    for key in table:
        if key not in TOP_KEYS:
            raise _err(key, table[key], "unknown key; known keys: " + ", ".join(sorted(TOP_KEYS)))
    project_table = pyproject.get("project", {})

    archs = _choose("archs", _str_list("archs", table.get("archs", [host_arch()])), ARCHS)
    pythons = _pythons(table["python"]) if "python" in table else \
        [PythonVersion(v) for v in _default_pythons(project_table)]
    if not pythons:
        raise _err("python", table.get("python", project_table.get("requires-python")),
                   "no supported CPython version left; supported: " + ", ".join(SUPPORTED_PYTHONS))
    backend = table.get("backend", "auto")
    if backend not in BACKENDS:
        raise _err("backend", backend, "allowed: " + ", ".join(BACKENDS))
    policy_name = table.get("policy", DEFAULT_POLICY)
    policy = canonical_policy(policy_name) if isinstance(policy_name, str) else None
    if policy is None:
        raise _err("policy", policy_name, "allowed: " + ", ".join(policy_aliases()))
    test_command = table.get("test-command")
    if test_command is not None and (not isinstance(test_command, str) or not test_command.strip()):
        raise _err("test-command", test_command, "expected a command line string")
    wheelhouse = table.get("wheelhouse", "wheelhouse")
    if not isinstance(wheelhouse, str) or not wheelhouse:
        raise _err("wheelhouse", wheelhouse, "expected a directory path")
    mirrors = tuple(_str_list("mirrors", table.get("mirrors", [])))
    offline = table.get("offline", False)
    if not isinstance(offline, bool):
        raise _err("offline", offline, "expected true or false")
    images = table.get("images", {})
    if not isinstance(images, dict):
        raise _err("images", images, "expected a table like { x86_64 = \"quay.io/…:tag\" }")
    for arch, ref in images.items():
        if arch not in ARCHS:
            raise _err(f"images.{arch}", arch, "allowed: " + ", ".join(ARCHS))
        if not isinstance(ref, str) or not ref:
            raise _err(f"images.{arch}", ref, "expected an image reference string")
    allow_unpinned = table.get("allow-unpinned", False)
    if not isinstance(allow_unpinned, bool):
        raise _err("allow-unpinned", allow_unpinned, "expected true or false")
    container_env = tuple(_str_list("container-env", table.get("container-env", [])))
    for var in container_env:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var):
            raise _err("container-env", var, "expected environment variable names")
    container_mode = table.get("container-mode", "auto")
    if container_mode not in CONTAINER_MODES:
        raise _err("container-mode", container_mode, "allowed: " + ", ".join(CONTAINER_MODES))
    build_image = table.get("build-image", False)
    if not isinstance(build_image, bool):
        raise _err("build-image", build_image, "expected true or false")
    dockerfile = table.get("dockerfile")
    if dockerfile is not None:
        if not isinstance(dockerfile, str) or not (project / dockerfile).is_file():
            raise _err("dockerfile", dockerfile, f"expected a Dockerfile path relative to {project}")
        dockerfile = (project / dockerfile).resolve()
    elif build_image:
        from geonox.containers import default_dockerfile

        dockerfile = default_dockerfile(policy)
    name = project_table.get("name")
    if not isinstance(name, str):
        raise ConfigError(f"{project / 'pyproject.toml'} has no [project] name.")
    return Config(
        project=project,
        name=name,
        archs=tuple(archs),
        pythons=tuple(pythons),
        backend=backend,
        policy=policy,
        deps=tuple(_deps(table)),
        test_command=test_command,
        wheelhouse=(project / wheelhouse).resolve(),
        repair=_repair(table.get("repair", {})),
        abi3=_abi3(pyproject),
        mirrors=mirrors,
        offline=offline,
        images=dict(images),
        allow_unpinned=allow_unpinned,
        container_env=container_env,
        container_mode=container_mode,
        dockerfile=dockerfile,
    )
