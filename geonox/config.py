"""The one options layer: ``[tool.geonox]``, the environment and the keywords of
``geonox.register()``, validated into a frozen :class:`Config`.

Every option is one row of :data:`OPTIONS` (cibuildwheel's ``options.py`` is the model):
its key, default, parser (which validates and converts) and one line of documentation.
The defaults, the cascade, the validation and the options table in ``docs/options.md``
(:func:`options_markdown`) all come from that table; the environment variables that
override an option are rows of :data:`geonox.environment.VARIABLES` naming it.

Precedence, highest first: ``register()`` keywords (``test_command`` for
``test-command``) > environment (``GEONOX_OFFLINE``; ``GEONOX_MIRROR`` is tried *before*
the configured ``mirrors`` rather than replacing them) > ``[tool.geonox]`` > the default.
Every error names the key, the bad value and what is allowed; an unknown key suggests the
nearest known one.

This module reads the project's ``pyproject.toml`` (and an sdist's ``PKG-INFO``) and does
no other I/O: unpacking an sdist and asking git for the last commit's time are
:mod:`geonox.project`'s (its :func:`~geonox.project.load_config` is the public entry).
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from geonox import environment
from geonox.environment import Environment
from geonox.errors import ConfigError
from geonox.images import default_dockerfile
from geonox.policy import canonical_policy, policy_aliases
from geonox.recipes import (
    LINK_MODES,
    LinkMode,
    OptionValue,
    Recipe,
    build_order,
    registry,
    release_numbers,
)
from geonox.remote import RemoteSpec
from geonox.sources.model import Source
from geonox.targets import (
    ARCHS,
    FREE_THREADED_PYTHONS,
    SUPPORTED_PYTHONS,
    PythonVersion,
    Target,
    host_arch,
    policy_family,
    target_labels,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10
    import tomli as tomllib

BackendName = Literal["auto", "host", "docker", "podman", "zig"]
ContainerMode = Literal["auto", "bind", "copy"]
BACKENDS: tuple[BackendName, ...] = ("auto", "host", "docker", "podman", "zig")
CONTAINER_MODES: tuple[ContainerMode, ...] = ("auto", "bind", "copy")
DEFAULT_PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13")
REPAIR_DEFAULTS: Mapping[str, Any] = {"exclude": ["libcurl.so.4", "libz.so.1"], "lib-sdir": ".libs"}
SOURCE_KEYS = ("version", "url", "sha256")

#: 1980-01-01T00:00:00Z: the earliest time a zip entry can hold, and the last resort.
ZIP_EPOCH = 315532800


@dataclass(frozen=True)
class RepairConfig:
    exclude: tuple[str, ...] = tuple(REPAIR_DEFAULTS["exclude"])
    lib_sdir: str = REPAIR_DEFAULTS["lib-sdir"]


@dataclass(frozen=True)
class DepSpec:
    """One dependency as configured: its recipe, the source to build and its options."""

    name: str
    source: Source
    options: Mapping[str, OptionValue]
    link: LinkMode = "static"


@dataclass(frozen=True)
class Config:
    # what the project is (not options)
    project: Path
    name: str
    abi3: str | None  # e.g. "cp39" when [tool.scikit-build] wheel.py-api says so
    sdist: Path | None  # the sdist the project was unpacked from, if it came as one
    env: Environment
    # one field per option of OPTIONS (in its order; test_config checks they agree)
    archs: tuple[str, ...]
    pythons: tuple[PythonVersion, ...]
    backend: BackendName
    policies: tuple[str, ...]  # canonical; at most one per libc family
    deps: tuple[DepSpec, ...]  # in build order, dependencies first
    test_command: str | None
    wheelhouse: Path
    repair: RepairConfig
    mirrors: tuple[str, ...]  # GEONOX_MIRROR's first, then [tool.geonox] mirrors
    offline: bool
    images: Mapping[str, str]  # arch -> image reference
    allow_unpinned: bool
    container_env: tuple[str, ...]
    container_mode: ContainerMode
    dockerfile: Mapping[str, Path]  # per policy: built on its pinned image (build-image)
    verify_strict: bool  # the ldd session fails on verify's warnings too
    ccache: bool
    source_date_epoch: int  # the time stamped into wheels and SBOMs (reproducible)
    cache_remote: RemoteSpec | None  # dependency artifacts in an OCI registry
    cache_push: bool  # upload what is built here to cache_remote
    build_env: Mapping[str, str]  # values may hold placeholders
    before_build: str | None
    build_constraints: tuple[str, ...]  # pins for build isolation (PIP_CONSTRAINT)
    test_requires: tuple[str, ...]
    test_sources: tuple[str, ...]  # paths relative to the project, copied beside the test
    interpreters: Mapping[str, tuple[str, ...]]  # target label -> dirs with its python3.X

    @property
    def home(self) -> Path:
        """The maintainer's directory for this project: the project itself, or the
        directory of the sdist it came from (the image lock and the wheelhouse live there,
        never in the unpacked copy)."""
        return self.sdist.parent if self.sdist else self.project

    @property
    def cache_dir(self) -> Path:
        return self.env.cache_dir

    def targets(self, arch: str) -> tuple[Target, ...]:
        """What ``arch`` is built for: one target per configured policy."""
        return tuple(Target(arch, policy) for policy in self.policies)

    def build_for(self, py: PythonVersion | None) -> PythonVersion | None:
        """The build that serves ``py``: the abi3 build (``None``) in an abi3 project, except
        for a free-threaded version, which abi3 does not cover; else ``py``'s own."""
        return None if self.abi3 and not (py and py.free_threaded) else py

    def builds(self) -> tuple[PythonVersion | None, ...]:
        """Every build a target makes, once each, in the configured order."""
        return tuple(dict.fromkeys(self.build_for(py) for py in self.pythons))


# ------------------------------------------------------------------ errors


def _err(key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(
        f"[tool.geonox] {key} = {value!r} is not valid: {allowed}.", key=key.split(".")[0]
    )


def _unknown(key: str, value: Any, known: Sequence[str], where: str = "") -> ConfigError:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    prefix = f"{where}." if where else ""
    return ConfigError(
        f"[tool.geonox] {prefix}{key} = {value!r} is not valid: unknown key; "
        f"{hint}known keys: {', '.join(sorted(known))}.",
        key=(where or key).split(".")[0],
    )


# ------------------------------------------------------------------ value checks


def _str_list(key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise _err(key, value, "expected a list of strings")
    return list(value)


def _choose(key: str, values: list[str], allowed: Sequence[str]) -> list[str]:
    for v in values:
        if v not in allowed:
            raise _err(key, v, "allowed: " + ", ".join(allowed))
    return list(dict.fromkeys(values))


def _table(key: str, value: Any, example: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _err(key, value, f"expected a table like {example}")
    return value


def _one_line(key: str, value: Any, what: str) -> str | None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise _err(key, value, f"expected a {what} string")
    return value


# ------------------------------------------------------------------ the parsers


@dataclass(frozen=True)
class Reading:
    """What a parser may look at besides its own value."""

    values: Mapping[str, Any]  # every key's value after the cascade
    project: Path
    sdist: Path | None
    pyproject: Mapping[str, Any]
    last_commit: int | None  # the project's last commit time (or the sdist's), from project

    @property
    def project_table(self) -> Mapping[str, Any]:
        table = self.pyproject.get("project", {})
        return table if isinstance(table, dict) else {}


Parser = Callable[[str, Any, Reading], Any]


def _bool(key: str, value: Any, r: Reading) -> bool:
    if not isinstance(value, bool):
        raise _err(key, value, "expected true or false")
    return value


def _strings(key: str, value: Any, r: Reading) -> tuple[str, ...]:
    return tuple(_str_list(key, value))


def _archs(key: str, value: Any, r: Reading) -> tuple[str, ...]:
    return tuple(_choose(key, _str_list(key, [host_arch()] if value is None else value), ARCHS))


def _default_pythons(project_table: Mapping[str, Any]) -> list[str]:
    classifiers = project_table.get("classifiers", [])
    listed = [
        c.rsplit("::", 1)[1].strip()
        for c in classifiers
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ]
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


def _pythons(key: str, value: Any, r: Reading) -> tuple[PythonVersion, ...]:
    if value is None:
        versions = _default_pythons(r.project_table)
    else:
        versions = _str_list(key, value)
        for v in versions:
            if v not in SUPPORTED_PYTHONS + FREE_THREADED_PYTHONS:
                raise _err(
                    key,
                    v,
                    'expected CPython versions like "3.12", or "3.13t" for free-threaded '
                    "CPython; supported: " + ", ".join(SUPPORTED_PYTHONS + FREE_THREADED_PYTHONS),
                )
    if not versions:
        raise _err(
            key,
            value or r.project_table.get("requires-python"),
            "no supported CPython version left; supported: " + ", ".join(SUPPORTED_PYTHONS),
        )
    ordered = sorted(set(versions), key=lambda v: PythonVersion(v).sort_key())
    return tuple(PythonVersion(v) for v in ordered)


def _choice(*allowed: str) -> Parser:
    def parse(key: str, value: Any, r: Reading) -> Any:
        if value not in allowed:
            raise _err(key, value, "allowed: " + ", ".join(allowed))
        return value

    return parse


def _policy(key: str, value: Any, r: Reading) -> str:
    policy = canonical_policy(value) if isinstance(value, str) else None
    if policy is None:
        raise _err(key, value, "allowed: " + ", ".join(policy_aliases()))
    return policy


def _policies(key: str, value: Any, r: Reading) -> tuple[str, ...]:
    """One policy, or one per libc family: ``["manylinux_2_28", "musllinux_1_2"]``."""
    policies = tuple(dict.fromkeys(_policy(key, v, r) for v in _str_list(key, value)))
    if not policies:
        raise _err(key, value, "expected at least one policy")
    families: dict[str, str] = {}
    for policy in policies:
        family = policy_family(policy)
        if family in families:
            raise _err(
                key,
                value,
                f"one {family} policy at a time ({families[family]} and {policy}): a wheel "
                f"that fits the older one installs wherever the newer one does, so keep the "
                f"older",
            )
        families[family] = policy
    return policies


def _custom_source(name: str, table: Any) -> Source:
    key = f"sources.{name}"
    if not isinstance(table, dict):
        raise _err(key, table, "expected a table with version, url and sha256")
    for k in table:
        if k not in SOURCE_KEYS:
            raise _unknown(k, table[k], SOURCE_KEYS, where=key)
    sha = str(table.get("sha256", "")).lower()
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise ConfigError(
            f"[tool.geonox.sources.{name}] has no valid sha256 (got {table.get('sha256')!r}): "
            f'geonox never builds an unverified source. Add sha256 = "<64 hex digits>" as '
            f"published by upstream (or computed with `sha256sum` on a file you trust).",
            key="sources",
        )
    for k in ("version", "url"):
        if not isinstance(table.get(k), str) or not table[k]:
            raise _err(f"{key}.{k}", table.get(k), "expected a non-empty string")
    return Source(name=name, version=table["version"], url=table["url"], sha256=sha)


def _supported(recipe: Recipe, source: Source) -> None:
    """A custom source's release is one the recipe can build."""
    if recipe.oldest is None:
        return
    if release_numbers(source.version, len(recipe.oldest)) < recipe.oldest:
        oldest = ".".join(map(str, recipe.oldest))
        raise _err(
            f"sources.{recipe.name}.version",
            source.version,
            f"geonox builds {recipe.name} {oldest} or newer (known releases: "
            f"{', '.join(recipe.releases)})",
        )


def _deps(key: str, value: Any, r: Reading) -> tuple[DepSpec, ...]:
    """``deps`` with ``versions``, ``sources``, ``options`` and ``link``: the specs."""
    recipes = {n: rc for n, rc in registry().items() if not rc.build_tool}  # what one configures
    names = _choose(key, _str_list(key, value), tuple(recipes))
    versions = _table("versions", r.values["versions"], '{ proj = "9.1.1" }')
    sources = _table("sources", r.values["sources"], "[tool.geonox.sources.proj]")
    for name in list(versions) + list(sources):
        if name not in recipes:
            raise _err(
                f"versions.{name}" if name in versions else f"sources.{name}",
                name,
                "known recipes: " + ", ".join(recipes),
            )
    options = _table("options", r.values["options"], "[tool.geonox.options.proj]")
    ordered = build_order(names)
    link = r.values["link"]
    if link is None:  # GDAL's bindings have several modules: one shared copy of each library
        link = "shared" if "gdal" in ordered else "static"
    if link not in LINK_MODES:
        raise _err("link", link, "allowed: " + ", ".join(LINK_MODES))
    specs = []
    for name in ordered:
        recipe = recipes[name]
        if name in sources:
            source = _custom_source(name, sources[name])
            _supported(recipe, source)
        else:
            version = versions.get(name, recipe.default_version)
            if version not in recipe.releases:
                raise _err(
                    f"versions.{name}",
                    version,
                    "known releases: "
                    + ", ".join(recipe.releases)
                    + f" (or pin any release with [tool.geonox.sources.{name}])",
                )
            source = recipe.releases[version]
        given = options.get(name, {})
        given = dict(given) if isinstance(given, dict) else {"": given}
        dep_link = given.pop("link", recipe.default_link or link)
        if dep_link not in LINK_MODES:
            raise _err(f"options.{name}.link", dep_link, "allowed: " + ", ".join(LINK_MODES))
        opts = {k: _option(recipe, k, v) for k, v in given.items()}
        specs.append(
            DepSpec(name=name, source=source, options={**recipe.options, **opts}, link=dep_link)
        )
    return tuple(specs)


def _option(recipe: Recipe, key: str, value: Any) -> OptionValue:
    """One ``[tool.geonox.options.<recipe>]`` value, checked against the recipe's option."""
    where = f"options.{recipe.name}.{key}" if key else f"options.{recipe.name}"
    default = recipe.options.get(key)
    if isinstance(default, bool) and isinstance(value, bool):
        return value
    if isinstance(default, tuple) and isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise _err(where, value, "expected a list of names")
        names = tuple(sorted(dict.fromkeys(v.lower() for v in value)))
        known = recipe.choices.get(key)
        for n in names:
            if known is not None and n not in known:
                close = difflib.get_close_matches(n, sorted(known), n=3, cutoff=0.6)
                hint = f"did you mean {', '.join(close)}? " if close else ""
                raise _err(
                    where,
                    n,
                    f"{recipe.name} has no such {key[:-1] if key.endswith('s') else key}; {hint}"
                    f"known: {', '.join(sorted(known))}",
                )
        return names
    kinds = {bool: "true/false", tuple: "a list of names"}
    described = ", ".join(f"{o} ({kinds[type(d)]})" for o, d in recipe.options.items())
    raise _err(
        where, value, f'{recipe.name} options: {described or "none"}; link ("static"/"shared")'
    )


def _test_command(key: str, value: Any, r: Reading) -> str | None:
    return _one_line(key, value, "command line")


def _wheelhouse(key: str, value: Any, r: Reading) -> Path:
    if not isinstance(value, str) or not value:
        raise _err(key, value, "expected a directory path")
    # the wheelhouse of an sdist's build lives beside the sdist, not in the unpacked tree
    base = r.sdist.parent if r.sdist else r.project
    return (base / value).resolve()


def _repair(key: str, value: Any, r: Reading) -> RepairConfig:
    table = _table(key, value, '{ exclude = [...], lib-sdir = ".libs" }')
    for k in table:
        if k not in REPAIR_DEFAULTS:
            raise _unknown(k, table[k], tuple(REPAIR_DEFAULTS), where=key)
    merged = {**REPAIR_DEFAULTS, **table}
    exclude = tuple(_str_list("repair.exclude", merged["exclude"]))
    lib_sdir = merged["lib-sdir"]
    if not isinstance(lib_sdir, str) or not lib_sdir or "/" in lib_sdir:
        raise _err("repair.lib-sdir", lib_sdir, 'expected a directory name such as ".libs"')
    return RepairConfig(exclude=exclude, lib_sdir=lib_sdir)


def _images(key: str, value: Any, r: Reading) -> dict[str, str]:
    """Per target label (``x86_64``, or ``x86_64-musl`` for a musllinux policy)."""
    images = _table(key, value, '{ x86_64 = "quay.io/…:tag" }')
    labels = target_labels()
    for arch, ref in images.items():
        if arch not in labels:
            raise _err(f"images.{arch}", arch, "allowed: " + ", ".join(labels))
        if not isinstance(ref, str) or not ref:
            raise _err(f"images.{arch}", ref, "expected an image reference string")
    return dict(images)


def _names(key: str, value: Any, r: Reading) -> tuple[str, ...]:
    names = tuple(_str_list(key, value))
    for var in names:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var):
            raise _err(key, var, "expected environment variable names")
    return names


def _dockerfile(key: str, value: Any, r: Reading) -> Mapping[str, Path]:
    """Per policy, the Dockerfile built on its pinned image: the project's own for every
    policy, or with build-image geonox's for each; none without either."""
    build_image = _bool("build-image", r.values["build-image"], r)
    policies = _policies("policy", r.values["policy"], r)
    if value is not None:
        if not isinstance(value, str) or not (r.project / value).is_file():
            raise _err(key, value, f"expected a Dockerfile path relative to {r.project}")
        return {policy: (r.project / value).resolve() for policy in policies}
    if build_image:
        return {policy: default_dockerfile(policy) for policy in policies}
    return {}


def _source_date_epoch(key: str, value: Any, r: Reading) -> int:
    """The configured time, else the project's last commit (or its sdist's), else 1980.
    Never the clock: the same inputs give the same bytes."""
    if value is None:
        return max(r.last_commit, ZIP_EPOCH) if r.last_commit is not None else ZIP_EPOCH
    if isinstance(value, bool) or not isinstance(value, int) or value < ZIP_EPOCH:
        raise _err(
            key,
            value,
            f"expected whole seconds since 1970, at least "
            f"{ZIP_EPOCH} (1980-01-01, the earliest a zip entry can hold)",
        )
    return value


def _remote(key: str, value: Any, r: Reading) -> RemoteSpec | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _err(key, value, "expected oci://<registry>/<repository>")
    return RemoteSpec.parse(value)


def _str_table(key: str, value: Any, r: Reading) -> dict[str, str]:
    table = _table(key, value, '{ KEY = "value" }')
    for k, v in table.items():
        if not isinstance(v, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
            raise _err(f"{key}.{k}", v, 'expected NAME = "string" entries')
    return dict(table)


def _before_build(key: str, value: Any, r: Reading) -> str | None:
    return _one_line(key, value, "shell command")


def _interpreters(key: str, value: Any, r: Reading) -> Mapping[str, tuple[str, ...]]:
    """Per target label, the directories this machine's ``python3.X`` for it are found in."""
    table = _table(key, value, '{ "x86_64-musl" = "/opt/musl-python/bin" }')
    labels = target_labels()
    found: dict[str, tuple[str, ...]] = {}
    for label, dirs in table.items():
        if label not in labels:
            raise _err(f"interpreters.{label}", label, "allowed: " + ", ".join(labels))
        paths = _str_list(f"interpreters.{label}", dirs)
        for path in paths:
            if not Path(path).is_absolute():
                raise _err(f"interpreters.{label}", path, "expected absolute directories")
        found[label] = tuple(paths)
    return found


def _test_sources(key: str, value: Any, r: Reading) -> tuple[str, ...]:
    paths = tuple(_str_list(key, value))
    for rel in paths:
        if Path(rel).is_absolute() or ".." in Path(rel).parts or not (r.project / rel).exists():
            raise _err(key, rel, f"expected paths inside {r.project} that exist")
    return paths


# ------------------------------------------------------------------ the table


@dataclass(frozen=True)
class Option:
    key: str  # in [tool.geonox]; register() takes it with "_" for "-"
    default: Any
    doc: str  # one line, for docs/options.md
    parse: Parser | None  # None: read by another option's parser (named in doc)
    default_doc: str | None = None  # how a derived default reads in the docs

    @property
    def field(self) -> str:
        return {"python": "pythons", "policy": "policies"}.get(self.key) or self.key.replace(
            "-", "_"
        )


#: Every key of ``[tool.geonox]``, parsed in this order.
OPTIONS: tuple[Option, ...] = (
    Option("archs", None, "architectures to build: `x86_64`, `aarch64`", _archs,
           default_doc="this machine's"),
    Option("python", None, "CPython versions (`\"3.9\"` … `\"3.14\"`)", _pythons,
           default_doc="the project's classifiers, else its requires-python, else 3.9–3.13"),
    Option("backend", "auto", "`auto`, `host`, `docker`, `podman` or `zig`: see backends.md",
           _choice(*BACKENDS)),
    Option("policy", "manylinux_2_28", "the platform tag's policy (`manylinux2014` is "
           "`manylinux_2_17`), or one manylinux and one musllinux: "
           "`[\"manylinux_2_28\", \"musllinux_1_2\"]`", _policies),
    Option("versions", {}, "release of a recipe: `{ proj = \"9.1.1\" }` (read with deps)", None),
    Option("sources", {}, "any release: `[tool.geonox.sources.proj]` version, url, sha256 "
           "(read with deps)", None),
    Option("options", {}, "recipe options and a per-dependency `link`: "
           "`[tool.geonox.options.proj]` (read with deps)", None),
    Option("link", None, "`static` or `shared` (grafted by auditwheel; read with deps)", None,
           default_doc="`\"static\"`; `\"shared\"` when deps include gdal"),
    Option("deps", ["sqlite", "geos", "proj"], "recipes to build, in any order (proj pulls in "
           "sqlite)", _deps),
    Option("test-command", None, "run in a clean venv with the wheel installed", _test_command),
    Option("wheelhouse", "wheelhouse", "where repaired wheels go, relative to the project (to "
           "an sdist's directory)", _wheelhouse),
    Option("repair", dict(REPAIR_DEFAULTS), "auditwheel's `exclude` (libraries left out) and "
           "`lib-sdir`", _repair),
    Option("mirrors", [], "base URLs or directories tried before upstream for every source",
           _strings),
    Option("offline", False, "never download: every source from the cache or a directory "
           "mirror", _bool),
    Option("images", {}, "container image per arch: `{ x86_64 = \"…:tag\" }` (default: the "
           "policy's manylinux image)", _images),
    Option("allow-unpinned", False, "build with an image no lock file pins", _bool),
    Option("container-env", [], "host variables passed into containers (a value naming a "
           "file mounts it)", _names),
    Option("container-mode", "auto", "`bind` mounts, `copy` copies (`auto`: copy for a remote "
           "engine)", _choice(*CONTAINER_MODES)),
    Option("build-image", False, "build geonox's Dockerfile for the policy on the pinned image "
           "(read with dockerfile)", None),
    Option("dockerfile", None, "a Dockerfile of your own built on the pinned image",
           _dockerfile),
    Option("verify-strict", False, "the ldd session fails on verify's warnings too", _bool),
    Option("ccache", True, "compile through ccache where one is available", _bool),
    Option("source-date-epoch", None, "the time stamped into wheels and SBOMs",
           _source_date_epoch,
           default_doc="the project's last commit, else the sdist's PKG-INFO time, else 1980"),
    Option("cache-remote", None, "`oci://<registry>/<repository>`: dependency artifacts shared "
           "by machines", _remote),
    Option("cache-push", False, "upload what this machine builds to cache-remote", _bool),
    Option("build-env", {}, "extra environment of each build (placeholders allowed)",
           _str_table),
    Option("before-build", None, "shell command run in the build's copy of the tree first",
           _before_build),
    Option("build-constraints", [], "pins for build isolation (`PIP_CONSTRAINT`, uv)",
           _strings),
    Option("test-requires", [], "installed next to the wheel in the test venv", _strings),
    Option("test-sources", [], "paths copied beside the test, outside the source tree",
           _test_sources),
    Option("interpreters", {}, "per target, directories holding its `python3.X` on this "
           "machine: `{ \"x86_64-musl\" = \"/opt/musl/bin\" }` (default: PATH); a foreign "
           "target's wheels are then tested here (QEMU), not in a container",
           _interpreters),
)  # fmt: skip
BY_KEY: Mapping[str, Option] = {o.key: o for o in OPTIONS}


def options_markdown() -> str:
    """The options tables of ``docs/configuration.md`` (a test compares the two)."""

    def shown(option: Option) -> str:
        if option.default_doc:
            return option.default_doc
        return "—" if option.default is None else f"`{json.dumps(option.default)}`"

    overriding = {v.option: v.name for v in environment.VARIABLES if v.option}
    rows = ["| key | default | environment | what it is |", "|---|---|---|---|"]
    for o in OPTIONS:
        var = f"`{overriding[o.key]}`" if o.key in overriding else ""
        rows.append(f"| `{o.key}` | {shown(o)} | {var} | {o.doc} |")
    rows += ["", "| variable | overrides | what it is |", "|---|---|---|"]
    rows += [
        f"| `{v.name}` | {f'`{v.option}`' if v.option else ''} | {v.doc} |"
        for v in environment.VARIABLES
    ]
    return "\n".join(rows) + "\n"


# ------------------------------------------------------------------ reading


def read_pyproject(project: Path) -> dict[str, Any]:
    path = project / "pyproject.toml"
    try:
        with open(path, "rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)
            return data
    except FileNotFoundError:
        if (project / "PKG-INFO").is_file():
            return {}  # an sdist of a setup.py-only project: everything from register()
        raise ConfigError(
            f"no pyproject.toml in {project}: geonox needs the extension "
            f"project's directory (register(project=...))."
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}.") from None


def _cascade(
    table: Mapping[str, Any], overrides: Mapping[str, Any], env: Environment, drop: set[str]
) -> dict[str, Any]:
    """Every key's value after defaults -> [tool.geonox] -> environment -> keywords (the keys
    in ``drop`` fall back to their defaults)."""
    keywords = {key.replace("_", "-"): value for key, value in overrides.items()}
    for layer in (table, keywords):
        for key in layer:
            if key not in BY_KEY and key not in drop:
                raise _unknown(key, layer[key], list(BY_KEY))
    values = {o.key: o.default for o in OPTIONS}
    values.update(table)
    for var in environment.VARIABLES:
        if var.option and var.option != "mirrors":
            value = getattr(env, var.field)
            if value is not None:
                values[var.option] = value
    values.update(keywords)
    values["mirrors"] = [*env.mirrors, *_str_list("mirrors", values["mirrors"])]
    for key in drop:
        if key in BY_KEY:
            values[key] = BY_KEY[key].default
    return values


def _abi3(pyproject: Mapping[str, Any]) -> str | None:
    sk = pyproject.get("tool", {}).get("scikit-build", {})
    api = sk.get("wheel", {}).get("py-api") or sk.get("wheel.py-api")
    if isinstance(api, str) and re.fullmatch(r"cp3\d+", api):
        return api
    return None


def _project_name(project: Path, project_table: Mapping[str, Any]) -> str | None:
    name = project_table.get("name")
    if isinstance(name, str):
        return name
    pkg_info = project / "PKG-INFO"  # an sdist of a project without [project] metadata
    if pkg_info.is_file():
        match = re.search(r"^Name: *(\S+)", pkg_info.read_text(errors="replace"), flags=re.M)
        if match:
            return match.group(1)
    return None


def read_config(
    project: Path,
    *,
    sdist: Path | None = None,
    last_commit: int | None = None,
    env: Environment | None = None,
    overrides: Mapping[str, Any] | None = None,
    drop: set[str] | None = None,
) -> Config:
    """The validated config of the project directory ``project`` (unpacked from ``sdist``
    when it came as one); ``last_commit`` is the time ``source-date-epoch`` defaults to,
    ``env`` the environment's settings (default: this process's)."""
    env = environment.read() if env is None else env
    pyproject = read_pyproject(project)
    table = pyproject.get("tool", {}).get("geonox", {})
    if not isinstance(table, dict):
        raise ConfigError(f"[tool.geonox] in {project / 'pyproject.toml'} is not a table.")
    values = _cascade(table, overrides or {}, env, drop or set())
    reading = Reading(values, project, sdist, pyproject, last_commit)
    parsed = {o.field: o.parse(o.key, values[o.key], reading) for o in OPTIONS if o.parse}
    name = _project_name(project, reading.project_table)
    if name is None:
        raise ConfigError(f"{project / 'pyproject.toml'} has no [project] name.")
    return Config(project=project, name=name, abi3=_abi3(pyproject), sdist=sdist, env=env, **parsed)
