"""The one options layer: ``[tool.geonox]``, the ``GEONOX_*`` environment and the keywords
of ``geonox.register()``, validated into a frozen :class:`Config`.

Precedence, highest first: ``register()`` keywords (``test_command`` for
``test-command``) > environment (``GEONOX_OFFLINE``; ``GEONOX_MIRROR`` is tried *before*
the configured ``mirrors`` rather than replacing them) > ``[tool.geonox]`` > the
:data:`DEFAULTS` below, stated once.  Every error names the key, the bad value and what is
allowed; an unknown key suggests the nearest known one.
"""

from __future__ import annotations

import difflib
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from geonox import environment
from geonox.cache import CacheLayout, file_sha256
from geonox.environment import Environment
from geonox.errors import ConfigError
from geonox.images import default_dockerfile
from geonox.policy import canonical_policy, policy_aliases
from geonox.recipes import LINK_MODES, LinkMode, build_order, registry
from geonox.remote import RemoteSpec
from geonox.sources.archives import extract
from geonox.sources.model import Source
from geonox.targets import ARCHS, SUPPORTED_PYTHONS, PythonVersion, host_arch

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10
    import tomli as tomllib

BackendName = Literal["auto", "host", "docker", "podman", "zig"]
ContainerMode = Literal["auto", "bind", "copy"]
BACKENDS: tuple[BackendName, ...] = ("auto", "host", "docker", "podman", "zig")
CONTAINER_MODES: tuple[ContainerMode, ...] = ("auto", "bind", "copy")
DEFAULT_PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13")

#: 1980-01-01T00:00:00Z: the earliest time a zip entry can hold, and the last resort.
ZIP_EPOCH = 315532800

#: Every key of [tool.geonox] and its default.  ``None`` for archs and python means "derived":
#: the host's arch; the project's classifiers or requires-python, else DEFAULT_PYTHONS.
DEFAULTS: Mapping[str, Any] = {
    "archs": None,
    "python": None,
    "backend": "auto",
    "policy": "manylinux_2_28",
    "deps": ["sqlite", "geos", "proj"],
    "link": "static",
    "test-command": None,
    "wheelhouse": "wheelhouse",
    "versions": {},
    "options": {},
    "sources": {},
    "repair": {"exclude": ["libcurl.so.4", "libz.so.1"], "lib-sdir": ".libs"},
    "mirrors": [],
    "offline": False,
    "images": {},
    "allow-unpinned": False,
    "container-env": [],
    "container-mode": "auto",
    "build-image": False,
    "dockerfile": None,
    "verify-strict": False,
    "ccache": True,
    "source-date-epoch": None,  # None: the project's last commit, else the sdist's, else 1980
    "cache-remote": None,  # oci://registry/repository: dependency artifacts shared by machines
    "cache-push": False,  # upload what this machine builds there (CI's default branch only)
    # project hooks, as cibuildwheel users know them
    "build-env": {},
    "before-build": None,
    "build-constraints": [],
    "test-requires": [],
    "test-sources": [],
}
SDIST_SUFFIXES = (".tar.gz", ".tgz", ".zip")
_TABLE_KEYS = {"repair": ("exclude", "lib-sdir"), "sources.*": ("version", "url", "sha256")}


@dataclass(frozen=True)
class RepairConfig:
    exclude: tuple[str, ...] = tuple(DEFAULTS["repair"]["exclude"])
    lib_sdir: str = DEFAULTS["repair"]["lib-sdir"]


@dataclass(frozen=True)
class DepSpec:
    """One dependency as configured: its recipe, the source to build and its options."""

    name: str
    source: Source
    options: Mapping[str, bool]
    link: LinkMode = "static"


@dataclass(frozen=True)
class Config:
    project: Path
    name: str
    archs: tuple[str, ...]
    pythons: tuple[PythonVersion, ...]
    backend: BackendName
    policy: str
    deps: tuple[DepSpec, ...]  # in build order, dependencies first
    test_command: str | None
    wheelhouse: Path
    repair: RepairConfig = field(default_factory=RepairConfig)
    abi3: str | None = None  # e.g. "cp39" when [tool.scikit-build] wheel.py-api says so
    mirrors: tuple[str, ...] = ()  # GEONOX_MIRROR's first, then [tool.geonox] mirrors
    offline: bool = False
    images: Mapping[str, str] = field(default_factory=dict)  # arch -> image reference
    allow_unpinned: bool = False
    container_env: tuple[str, ...] = ()
    container_mode: ContainerMode = "auto"
    dockerfile: Path | None = None  # build image on top of the pinned one (build-image)
    verify_strict: bool = False  # the ldd session fails on verify's warnings too
    ccache: bool = True  # compile through ccache where one is available (GEONOX_CCACHE=0: off)
    source_date_epoch: int = ZIP_EPOCH  # the time stamped into wheels and SBOMs (reproducible)
    build_env: Mapping[str, str] = field(default_factory=dict)  # values may hold placeholders
    before_build: str | None = None
    build_constraints: tuple[str, ...] = ()  # pins for build isolation (PIP_CONSTRAINT)
    test_requires: tuple[str, ...] = ()
    test_sources: tuple[str, ...] = ()  # paths relative to the project, copied beside the test
    sdist: Path | None = None  # the sdist the project was unpacked from, if it came as one
    cache_remote: RemoteSpec | None = None  # dependency artifacts in an OCI registry
    cache_push: bool = False  # upload what is built here to cache_remote
    env: Environment = field(default_factory=Environment)

    @property
    def home(self) -> Path:
        """The maintainer's directory for this project: the project itself, or the
        directory of the sdist it came from (the image lock and the wheelhouse live there,
        never in the unpacked copy)."""
        return self.sdist.parent if self.sdist else self.project

    @property
    def cache_dir(self) -> Path:
        return self.env.cache_dir


# ------------------------------------------------------------------ validation helpers


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


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _err(key, value, "expected true or false")
    return value


def _table(key: str, value: Any, example: str) -> dict:
    if not isinstance(value, dict):
        raise _err(key, value, f"expected a table like {example}")
    return value


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


def _pythons(value: Any) -> list[PythonVersion]:
    versions = _str_list("python", value)
    for v in versions:
        if not re.fullmatch(r"3\.\d+", v) or v not in SUPPORTED_PYTHONS:
            raise _err(
                "python",
                v,
                'expected CPython versions like "3.12"; supported: ' + ", ".join(SUPPORTED_PYTHONS),
            )
    ordered = sorted(set(versions), key=lambda v: PythonVersion(v).sort_key())
    return [PythonVersion(v) for v in ordered]


def _custom_source(name: str, table: Any) -> Source:
    key = f"sources.{name}"
    if not isinstance(table, dict):
        raise _err(key, table, "expected a table with version, url and sha256")
    for k in table:
        if k not in _TABLE_KEYS["sources.*"]:
            raise _unknown(k, table[k], _TABLE_KEYS["sources.*"], where=key)
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


def _deps(values: Mapping[str, Any]) -> list[DepSpec]:
    recipes = {n: r for n, r in registry().items() if not r.build_tool}  # what a project configures
    names = _choose("deps", _str_list("deps", values["deps"]), tuple(recipes))
    versions = _table("versions", values["versions"], '{ proj = "9.1.1" }')
    sources = _table("sources", values["sources"], "[tool.geonox.sources.proj]")
    for name in list(versions) + list(sources):
        if name not in recipes:
            raise _err(
                f"versions.{name}" if name in versions else f"sources.{name}",
                name,
                "known recipes: " + ", ".join(recipes),
            )
    options = _table("options", values["options"], "[tool.geonox.options.proj]")
    link = values["link"]
    if link not in LINK_MODES:
        raise _err("link", link, "allowed: " + ", ".join(LINK_MODES))
    specs = []
    for name in build_order(names):
        recipe = recipes[name]
        if name in sources:
            source = _custom_source(name, sources[name])
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
        opts = dict(recipe.options)
        given = options.get(name, {})
        given = dict(given) if isinstance(given, dict) else {"": given}
        dep_link = given.pop("link", link)
        if dep_link not in LINK_MODES:
            raise _err(f"options.{name}.link", dep_link, "allowed: " + ", ".join(LINK_MODES))
        for k, v in given.items():
            if k not in recipe.options or not isinstance(v, bool):
                raise _err(
                    f"options.{name}.{k}" if k else f"options.{name}",
                    v,
                    f"{name} options: "
                    + (", ".join(f"{o} (true/false)" for o in recipe.options) or "none")
                    + '; link ("static"/"shared")',
                )
            opts[k] = v
        specs.append(DepSpec(name=name, source=source, options=opts, link=dep_link))
    return specs


def _repair(value: Any) -> RepairConfig:
    table = _table("repair", value, '{ exclude = [...], lib-sdir = ".libs" }')
    for k in table:
        if k not in _TABLE_KEYS["repair"]:
            raise _unknown(k, table[k], _TABLE_KEYS["repair"], where="repair")
    merged = {**DEFAULTS["repair"], **table}
    exclude = tuple(_str_list("repair.exclude", merged["exclude"]))
    lib_sdir = merged["lib-sdir"]
    if not isinstance(lib_sdir, str) or not lib_sdir or "/" in lib_sdir:
        raise _err("repair.lib-sdir", lib_sdir, 'expected a directory name such as ".libs"')
    return RepairConfig(exclude=exclude, lib_sdir=lib_sdir)


def _abi3(pyproject: Mapping[str, Any]) -> str | None:
    sk = pyproject.get("tool", {}).get("scikit-build", {})
    api = sk.get("wheel", {}).get("py-api") or sk.get("wheel.py-api")
    if isinstance(api, str) and re.fullmatch(r"cp3\d+", api):
        return api
    return None


# ------------------------------------------------------------------ reading


def read_pyproject(project: Path) -> dict[str, Any]:
    path = project / "pyproject.toml"
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        if (project / "PKG-INFO").is_file():
            return {}  # an sdist of a setup.py-only project: everything from register()
        raise ConfigError(
            f"no pyproject.toml in {project}: geonox needs the extension "
            f"project's directory (register(project=...))."
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}.") from None


def _layers(
    project: Path, overrides: Mapping[str, Any], env: Environment, drop: set[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pyproject, and every key's value after the cascade defaults -> [tool.geonox]
    -> environment -> keywords (the keys in ``drop`` fall back to their defaults)."""
    pyproject = read_pyproject(project)
    table = pyproject.get("tool", {}).get("geonox", {})
    if not isinstance(table, dict):
        raise ConfigError(f"[tool.geonox] in {project / 'pyproject.toml'} is not a table.")
    keywords = {key.replace("_", "-"): value for key, value in overrides.items()}
    for layer in (table, keywords):
        for key in layer:
            if key not in DEFAULTS and key not in drop:
                raise _unknown(key, layer[key], list(DEFAULTS))
    values = dict(DEFAULTS)
    values.update(table)
    if env.offline is not None:
        values["offline"] = env.offline
    if env.ccache is not None:
        values["ccache"] = env.ccache
    if env.source_date_epoch is not None:
        values["source-date-epoch"] = env.source_date_epoch
    if env.cache_remote is not None:
        values["cache-remote"] = env.cache_remote
    if env.cache_push is not None:
        values["cache-push"] = env.cache_push
    values.update(keywords)
    values["mirrors"] = [*env.mirrors, *_str_list("mirrors", values["mirrors"])]
    for key in drop:
        if key in DEFAULTS:
            values[key] = DEFAULTS[key]
    return pyproject, values


def _source_date_epoch(value: Any, project: Path, sdist: Path | None) -> int:
    """The time stamped into the wheels and SBOMs: the configured value, else the project's
    last commit (git, limited to the project's directory), else the time of the sdist's
    PKG-INFO, else 1980-01-01.  Never the clock: the same inputs give the same bytes."""
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, int) or value < ZIP_EPOCH:
            raise _err(
                "source-date-epoch",
                value,
                f"expected whole seconds since 1970, at least "
                f"{ZIP_EPOCH} (1980-01-01, the earliest a zip entry can hold)",
            )
        return value
    if sdist is None:
        try:
            out = subprocess.run(
                ["git", "log", "-1", "--format=%ct", "--", "."],
                cwd=project,
                capture_output=True,
                text=True,
                timeout=30,
            )
            if out.returncode == 0 and out.stdout.strip().isdigit():
                return max(int(out.stdout.strip()), ZIP_EPOCH)
        except (OSError, subprocess.SubprocessError):
            pass  # no git: the next source
    pkg_info = project / "PKG-INFO"
    if sdist is not None and pkg_info.is_file():
        return max(int(pkg_info.stat().st_mtime), ZIP_EPOCH)
    return ZIP_EPOCH


def is_sdist(path: Path) -> bool:
    return path.name.lower().endswith(SDIST_SUFFIXES)


def unpack_sdist(sdist: Path, env: Environment) -> Path:
    """The project directory of ``sdist``, unpacked (safely, once per content) in the cache:
    building from it proves the sdist is complete, as a release pipeline should."""
    if not sdist.is_file():
        raise ConfigError(
            f"project {str(sdist)!r} is named like an sdist but is not a file; "
            "pass an sdist (.tar.gz) or the project's directory."
        )
    sha256 = file_sha256(sdist)
    stem = sdist.name[: -len(next(s for s in SDIST_SUFFIXES if sdist.name.lower().endswith(s)))]
    artifact = CacheLayout(env.cache_dir).sdist(f"{stem}-{sha256[:16]}")

    def unpack(place: Path) -> dict:
        top = extract(sdist, place / "src")
        return {"sdist": str(sdist), "sha256": sha256, "top": top.name}

    artifact.ensure(unpack)
    top = artifact.path / "src" / artifact.read_marker()["top"]
    return top if top.is_dir() else artifact.path / "src"


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


def _resolve_project(project: str | Path, env: Environment) -> tuple[Path, Path | None]:
    path = Path(project).resolve()
    if is_sdist(path):
        return unpack_sdist(path, env), path
    return path, None


def load_config(
    project: str | Path = ".", *, environ: Mapping[str, str] | None = None, **overrides: Any
) -> Config:
    """Read and validate the configuration of ``project`` (a directory or an sdist; see the
    module docstring)."""
    return _load(project, overrides, environ, drop=set())


def load_config_lenient(
    project: str | Path = ".", **overrides: Any
) -> tuple[Config | None, ConfigError | None]:
    """The config, or the first error and a config with every bad key at its default (so
    the session names a broken config would have had can still be registered)."""
    path = project
    try:
        return _load(path, overrides, None, drop=set()), None
    except ConfigError as first:
        drop: set[str] = set()
        error: ConfigError = first
        while error.key and error.key not in drop and len(drop) < len(DEFAULTS):
            drop.add(error.key)
            try:
                return _load(path, overrides, None, drop=drop), first
            except ConfigError as exc:
                error = exc
        return None, first


def _str_table(key: str, value: Any) -> dict[str, str]:
    table = _table(key, value, '{ KEY = "value" }')
    for k, v in table.items():
        if not isinstance(v, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
            raise _err(f"{key}.{k}", v, 'expected NAME = "string" entries')
    return dict(table)


def _load(
    project_arg: str | Path,
    overrides: Mapping[str, Any],
    environ: Mapping[str, str] | None,
    drop: set[str],
) -> Config:
    env = environment.read(environ)
    project, sdist = _resolve_project(project_arg, env)
    pyproject, v = _layers(project, overrides, env, drop)
    project_table = pyproject.get("project", {})

    archs = _choose(
        "archs", _str_list("archs", v["archs"] if v["archs"] is not None else [host_arch()]), ARCHS
    )
    if v["python"] is not None:
        pythons = _pythons(v["python"])
    else:
        pythons = [PythonVersion(x) for x in _default_pythons(project_table)]
    if not pythons:
        raise _err(
            "python",
            v["python"] or project_table.get("requires-python"),
            "no supported CPython version left; supported: " + ", ".join(SUPPORTED_PYTHONS),
        )
    backend = v["backend"]
    if backend not in BACKENDS:
        raise _err("backend", backend, "allowed: " + ", ".join(BACKENDS))
    policy = canonical_policy(v["policy"]) if isinstance(v["policy"], str) else None
    if policy is None:
        raise _err("policy", v["policy"], "allowed: " + ", ".join(policy_aliases()))
    test_command = v["test-command"]
    if test_command is not None and (not isinstance(test_command, str) or not test_command.strip()):
        raise _err("test-command", test_command, "expected a command line string")
    wheelhouse = v["wheelhouse"]
    if not isinstance(wheelhouse, str) or not wheelhouse:
        raise _err("wheelhouse", wheelhouse, "expected a directory path")
    images = _table("images", v["images"], '{ x86_64 = "quay.io/…:tag" }')
    for arch, ref in images.items():
        if arch not in ARCHS:
            raise _err(f"images.{arch}", arch, "allowed: " + ", ".join(ARCHS))
        if not isinstance(ref, str) or not ref:
            raise _err(f"images.{arch}", ref, "expected an image reference string")
    container_env = tuple(_str_list("container-env", v["container-env"]))
    for var in container_env:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var):
            raise _err("container-env", var, "expected environment variable names")
    container_mode = v["container-mode"]
    if container_mode not in CONTAINER_MODES:
        raise _err("container-mode", container_mode, "allowed: " + ", ".join(CONTAINER_MODES))
    build_image = _bool("build-image", v["build-image"])
    dockerfile = v["dockerfile"]
    if dockerfile is not None:
        if not isinstance(dockerfile, str) or not (project / dockerfile).is_file():
            raise _err(
                "dockerfile", dockerfile, f"expected a Dockerfile path relative to {project}"
            )
        dockerfile = (project / dockerfile).resolve()
    elif build_image:
        dockerfile = default_dockerfile(policy)
    name = _project_name(project, project_table)
    if name is None:
        raise ConfigError(f"{project / 'pyproject.toml'} has no [project] name.")
    before_build = v["before-build"]
    if before_build is not None and (not isinstance(before_build, str) or not before_build.strip()):
        raise _err("before-build", before_build, "expected a shell command string")
    test_sources = _str_list("test-sources", v["test-sources"])
    for rel in test_sources:
        if Path(rel).is_absolute() or ".." in Path(rel).parts or not (project / rel).exists():
            raise _err("test-sources", rel, f"expected paths inside {project} that exist")
    # the wheelhouse of an sdist's build lives beside the sdist, not in the unpacked tree
    base = sdist.parent if sdist else project
    return Config(
        project=project,
        name=name,
        archs=tuple(archs),
        pythons=tuple(pythons),
        backend=backend,
        policy=policy,
        deps=tuple(_deps(v)),
        test_command=test_command,
        wheelhouse=(base / wheelhouse).resolve(),
        repair=_repair(v["repair"]),
        abi3=_abi3(pyproject),
        mirrors=tuple(v["mirrors"]),
        offline=_bool("offline", v["offline"]),
        images=dict(images),
        allow_unpinned=_bool("allow-unpinned", v["allow-unpinned"]),
        container_env=container_env,
        container_mode=container_mode,
        dockerfile=dockerfile,
        verify_strict=_bool("verify-strict", v["verify-strict"]),
        ccache=_bool("ccache", v["ccache"]),
        source_date_epoch=_source_date_epoch(v["source-date-epoch"], project, sdist),
        build_env=_str_table("build-env", v["build-env"]),
        before_build=before_build,
        build_constraints=tuple(_str_list("build-constraints", v["build-constraints"])),
        test_requires=tuple(_str_list("test-requires", v["test-requires"])),
        test_sources=tuple(test_sources),
        sdist=sdist,
        cache_remote=_remote(v["cache-remote"]),
        cache_push=_bool("cache-push", v["cache-push"]),
        env=env,
    )


def _remote(value: Any) -> RemoteSpec | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _err("cache-remote", value, "expected oci://<registry>/<repository>")
    return RemoteSpec.parse(value)
