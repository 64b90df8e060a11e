"""deps: build each configured dependency (static archives or shared libraries, per
``link``) into its own content-addressed artifact, then assemble the target's prefix from
them.

**Artifacts** (``deps/<name>-<version>-<arch>-<key>``, :class:`DepBuild`): one dependency
installed into a prefix of its own.  Its key hashes what changes its contents: the recipe's
rendered commands, version, sha256, options, link mode and consumer files, the toolchain
identity (compiler versions, flags), where the commands run (host, image digest), the CMake
version, and the keys of the artifacts it is built against (PROJ's includes its SQLite's and
its build-machine ``sqlite3``'s).  Nothing about the project that asked for it is in the key,
so GEOS built for one project is reused by every project with the same toolchain.  Build
tools (``sqlite-shell``) are keyed by the build machine and its compiler only.

**Prefixes** (``prefixes/<arch>-<key>``, :class:`DepPrefix`): what the extension builds
against, keyed by the list of its artifacts' keys and assembled from them atomically (a
temporary sibling renamed into place): files hard-linked, symlinks kept, and text files that
name an artifact's path (CMake package files of a static PROJ name its SQLite) rewritten to
name the prefix.  Build tools are not part of it.

Each artifact is built in place (CMake records absolute paths) under its own lock and is
complete only when its marker is written last; an incomplete one is removed before a
rebuild or when its build fails or is interrupted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from geonox import sources
from geonox.backends import Backend
from geonox.cache import DEP_MARKER, PREFIX_MARKER, Artifact
from geonox.config import Config, DepSpec
from geonox.project import Project
from geonox.recipes import BuildContext, Recipe, registry
from geonox.remote import RemoteCache, RemoteError
from geonox.steps.base import Step, say_where
from geonox.targets import PythonVersion
from geonox.toolchains import Ccache
from geonox.tools import BUILD_TOOLS, build_tools_bin, pinned

STAMP = PREFIX_MARKER
#: part of every prefix key: bump when assembling writes something different
ASSEMBLY_REVISION = 1


@dataclass(frozen=True)
class DepBuild:
    """One dependency (or build tool) as its own cached artifact."""

    spec: DepSpec
    recipe: Recipe
    key: str
    artifact: Artifact
    manifest: dict
    inputs: tuple[str, ...]  # the recipes it is built against (dependencies, then tools)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def path(self) -> Path:
        return self.artifact.path

    @property
    def label(self) -> str:
        kind = "build tool" if self.recipe.build_tool else self.spec.link
        return f"{self.name} {self.spec.source.version} ({kind})"


@dataclass(frozen=True)
class DepPrefix:
    """A target's prefix: the libraries' artifacts assembled in one tree."""

    arch: str
    key: str
    artifact: Artifact
    manifest: dict
    builds: tuple[DepBuild, ...]  # every artifact it needs, in build order (tools included)

    @property
    def path(self) -> Path:
        return self.artifact.path

    @property
    def libraries(self) -> tuple[DepBuild, ...]:
        return tuple(b for b in self.builds if not b.recipe.build_tool)


def consumer_env(config: Config, prefix: str) -> dict[str, str]:
    """What every configured dependency publishes to the extension's build (its consumer
    contract), for a prefix at ``prefix`` as the executor sees it."""
    env = {"CMAKE_PREFIX_PATH": prefix, "PKG_CONFIG_PATH": f"{prefix}/lib/pkgconfig"}
    recipes = registry()
    for spec in config.deps:
        recipe = recipes[spec.name]
        if recipe.consumer:
            env.update(recipe.consumer.env(prefix, spec.source.version))
    return env


def content_key(manifest: dict) -> str:
    blob = json.dumps(manifest, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _context(
    config: Config,
    spec: DepSpec,
    backend: Backend,
    *,
    src: str,
    build: str,
    prefix: str,
    jobs: int,
    deps: dict[str, str],
    launcher: tuple[str, ...] = (),
) -> BuildContext:
    return BuildContext(
        src=src,
        build=build,
        prefix=prefix,
        jobs=jobs,
        options=spec.options,
        toolchain=backend.toolchain,
        link=spec.link,
        version=spec.source.version,
        links={d.name: d.link for d in config.deps},
        deps=deps,
        launcher=launcher,
    )


def _tool_spec(config: Config, recipe: Recipe) -> DepSpec:
    """A build tool's spec: the configured release of the recipe whose source it uses."""
    for spec in config.deps:
        if spec.name == recipe.source_of:
            return DepSpec(name=recipe.name, source=spec.source, options={}, link="static")
    return DepSpec(
        name=recipe.name, source=recipe.releases[recipe.default_version], options={}, link="static"
    )


def _portable(arg: str, cache_root: str) -> str:
    return re.sub(r"@CACHE@/toolchains/[^/\s]+", "@TOOLCHAIN@", arg.replace(cache_root, "@CACHE@"))


def plan_builds(project: Project, backend: Backend) -> list[DepBuild]:
    """Every artifact the backend's prefix needs, dependencies and tools before their users,
    with their keys (nothing is built)."""
    config, executor, toolchain = project.config, backend.executor, backend.toolchain
    recipes = registry()
    # The pinned CMake in every executor (geonox.tools.build_tools_bin), never an image's own.
    cmake = " ".join(pinned(BUILD_TOOLS, project.build_python(None)))
    target = {
        "arch": backend.arch,
        "executor": executor.identity(),
        "toolchain": toolchain.identity,
        "cmake": cmake,
    }
    builds: dict[str, DepBuild] = {}
    cache_root = str(project.cache.root)

    def build_machine() -> dict:
        cc = executor.capture([*toolchain.build_cc, "--version"]).splitlines()[0]
        return {"machine": executor.build_identity(), "build_cc": [*toolchain.build_cc, cc]}

    def add(spec: DepSpec) -> None:
        recipe = recipes[spec.name]
        for tool in recipe.tools:
            if tool not in builds:
                add(_tool_spec(config, recipes[tool]))
        inputs = (*recipe.depends, *recipe.tools)
        placeholder = _context(
            config,
            spec,
            backend,
            src="@SRC@",
            build="@BUILD@",
            prefix="@PREFIX@",
            jobs=0,
            deps={n: f"@{n.upper()}@" for n in inputs},
        )
        manifest = {
            "name": spec.name,
            "version": spec.source.version,
            "sha256": spec.source.sha256,
            "options": dict(spec.options),
            "link": spec.link,
            # never the cache's path, nor the name of a toolchain's directory in it (zig's
            # wrappers: named after the interpreter that wrote them), whose identity is
            # hashed below: one key on every machine, whatever Python runs geonox
            "commands": [
                [_portable(a, cache_root) for a in c.argv] for c in recipe.commands(placeholder)
            ],
            "consumer": recipe.consumer.revision if recipe.consumer else 0,
            "inputs": {n: builds[n].key for n in inputs},
            **(build_machine() if recipe.build_tool else target),
        }
        key = content_key(manifest)
        arch = executor.build_arch() if recipe.build_tool else backend.arch
        name = f"{spec.name}-{spec.source.version}-{arch}-{key}"
        builds[spec.name] = DepBuild(
            spec=spec,
            recipe=recipe,
            key=key,
            inputs=inputs,
            artifact=project.cache.dep(name),
            manifest=manifest,
        )

    for spec in config.deps:
        add(spec)
    return list(builds.values())


def planned_prefix(project: Project, backend: Backend) -> DepPrefix:
    """Where the prefix for the backend's arch is (or will be), without building anything."""
    builds = plan_builds(project, backend)
    libraries = [b for b in builds if not b.recipe.build_tool]
    key = content_key({"artifacts": [b.key for b in libraries], "assembly": ASSEMBLY_REVISION})
    manifest = {
        "arch": backend.arch,
        "key": key,
        "toolchain": backend.toolchain.identity,
        "executor": backend.executor.identity(),
        "policy": project.config.policy,
        "deps": [
            {
                "name": b.name,
                "version": b.spec.source.version,
                "link": b.spec.link,
                "sha256": b.spec.source.sha256,
                "key": b.key,
                "artifact": b.path.name,
            }
            for b in libraries
        ],
    }
    return DepPrefix(
        arch=backend.arch,
        key=key,
        manifest=manifest,
        builds=tuple(builds),
        artifact=project.cache.prefix(f"{backend.arch}-{key}"),
    )


def build_deps(project: Project, backend: Backend, *, session: str | None = None) -> DepPrefix:
    """The complete prefix for the backend's arch: its missing artifacts built, then
    assembled, unless it is in the cache already."""
    label = session or f"deps-{backend.arch}"
    backend.check_link_modes()
    prefix = planned_prefix(project, backend)
    if prefix.artifact.complete():
        prefix.artifact.touch()
        project.log(f"{label}: cached (key {prefix.key}) at {prefix.path}")
        return prefix
    remote = RemoteCache.of(project.config)
    pulled = _pull_missing(project, remote, prefix, label) if remote else []
    needed = _needed(prefix)
    missing = [b for b in needed if not b.artifact.complete()]
    # Verify every source before building anything.
    config = project.config
    archives = {
        b.name: sources.fetch(
            b.spec.source,
            mirrors=config.mirrors,
            offline=config.offline,
            cache_dir=project.cache.sources,
        )
        for b in missing
    }
    started = time.monotonic()
    reused, built = [], []
    by_name = {b.name: b for b in prefix.builds}
    for b in needed:
        made = b.artifact.ensure(
            lambda place, b=b: _build_one(
                project, backend, b, by_name, archives.get(b.name), label
            ),
            in_place=True,
            on_wait=lambda lock, b=b: project.log(
                f"{label}: waiting for another build of {b.label} ({lock})"
            ),
        )
        (built if made else reused).append(b)
    if remote is not None and remote.push_enabled:
        _push(project, remote, [b for b in built if not b.recipe.build_tool], label)
    reused = [b for b in reused if b not in pulled]
    with contextlib.ExitStack() as stack:
        for b in prefix.libraries:
            stack.enter_context(b.artifact.reading())
        prefix.artifact.ensure(lambda place: _assemble(prefix, place))
    parts = []
    if pulled:
        parts.append(f"pulled from {remote} " + ", ".join(f"{b.label} [{b.key}]" for b in pulled))
    if reused:
        parts.append("reused " + ", ".join(f"{b.label} [{b.key}]" for b in reused))
    if built:
        parts.append("built " + ", ".join(f"{b.label} [{b.key}]" for b in built))
    project.log(
        f"{label}: prefix (key {prefix.key}) assembled in {time.monotonic() - started:.0f} s "
        f"from {len(prefix.libraries)} artifacts: {'; '.join(parts)} -> {prefix.path}"
    )
    return prefix


def _pull_missing(
    project: Project, remote: RemoteCache, prefix: DepPrefix, label: str
) -> list[DepBuild]:
    """Every library artifact the cache lacks, from the remote store when it holds it (its
    tools are then not needed).  What it lacks, or holds wrong, is built here instead."""
    pulled = []
    for b in prefix.libraries:
        if b.artifact.complete():
            continue
        t0 = time.monotonic()
        try:
            got = remote.pull_into_cache(
                b,
                project.cache.root,
                on_wait=lambda lock, b=b: project.log(
                    f"{label}: waiting for another build of {b.label} ({lock})"
                ),
            )
        except RemoteError as exc:
            project.log(
                f"{label}: warning: not using {remote} for {b.label}: {exc}; building it here"
            )
            continue
        if got is None:
            project.log(f"{label}: {remote} has no {b.label} [{b.key}]; building it here")
        elif got:
            pulled.append(b)
            project.log(
                f"{label}: pulled {b.label} [{b.key}] from {remote} in "
                f"{time.monotonic() - t0:.1f} s"
            )
    return pulled


def _push(project: Project, remote: RemoteCache, built: list[DepBuild], label: str) -> None:
    """Upload what was built here; a refusal is a warning, never the build's failure."""
    for b in built:
        try:
            ref = remote.push(b, project.cache.root)
        except RemoteError as exc:
            project.log(f"{label}: warning: could not push {b.label} to {remote}: {exc}")
        else:
            project.log(f"{label}: pushed {b.label} [{b.key}] to {ref}")


def _needed(prefix: DepPrefix) -> list[DepBuild]:
    """The artifacts to have: every library, and the tools of those that must be built."""
    by_name = {b.name: b for b in prefix.builds}
    want: set[str] = set()

    def visit(b: DepBuild) -> None:
        want.add(b.name)
        if not b.artifact.complete():
            for n in b.inputs:
                visit(by_name[n])

    for b in prefix.libraries:
        visit(b)
    return [b for b in prefix.builds if b.name in want]


def _build_one(
    project: Project,
    backend: Backend,
    b: DepBuild,
    by_name: dict[str, DepBuild],
    archive: Path | None,
    label: str,
) -> dict:
    assert archive is not None, b.name
    executor = backend.executor
    logs = project.cache.dep_logs(b.path.name)
    if logs.exists():
        shutil.rmtree(logs)
    ccache = None if b.recipe.build_tool else backend.ccache
    project.log(
        f"{label}: building {b.label} (key {b.key}, "
        f"{'build machine' if b.recipe.build_tool else backend.toolchain.identity}"
        f"{', ccache' if ccache else ''}, logs in {logs})"
    )
    t0 = time.monotonic()
    with contextlib.ExitStack() as stack:
        for n in b.inputs:  # what it builds against stays while it does
            stack.enter_context(by_name[n].artifact.reading())
        work = stack.enter_context(project.cache.scratch(f"build-{b.path.name}"))
        src = sources.extract(archive, work / f"src-{b.name}")
        executor.sync_in(src)
        for n in b.inputs:
            executor.sync_in(by_name[n].path)
        ctx = _context(
            project.config,
            b.spec,
            backend,
            src=str(src),
            build=str(work / f"build-{b.name}"),
            prefix=str(b.path),
            jobs=project.jobs,
            deps={n: str(by_name[n].path) for n in b.inputs},
            launcher=(ccache.exe,) if ccache else (),
        )
        stats = work / "ccache-stats.log"  # what each compile did (read back where visible)
        env = ccache.env(backend.toolchain, stats_log=stats) if ccache else {}
        tools = build_tools_bin(
            executor, project.cache, project.build_python(None), log=logs / "build-tools.log"
        )
        env = {**env, "PATH": f"{tools}:{env.get('PATH', executor.default_path())}"}
        for cmd in b.recipe.commands(ctx):
            executor.run(
                dataclasses.replace(cmd, env={**env, **cmd.env}),
                log=logs / f"{b.name}-{cmd.name}.log",
            )
        executor.sync_out(b.path)
        hits = Ccache.hits(stats) if ccache else None
    consumer = b.recipe.consumer
    if consumer and consumer.finish:  # complete what consumers read (pkg-config, config scripts)
        consumer.finish(b.path, b.spec.source.version, b.spec.link)
    seconds = round(time.monotonic() - t0, 1)
    project.log(
        f"{label}: {b.label} built in {seconds} s"
        + (f" (ccache: {hits[0]} of {hits[1]} compiles were hits)" if hits else "")
    )
    return dict(b.manifest, key=b.key, seconds=seconds)


def _assemble(prefix: DepPrefix, place: Path) -> dict:
    """Fill ``place`` (renamed to ``prefix.path`` when complete) from the artifacts."""
    old = [str(b.path).encode() for b in prefix.libraries]
    new = str(prefix.path).encode()
    rewritten = []
    place.mkdir(parents=True)
    for b in prefix.libraries:
        for dirpath, dirnames, filenames in os.walk(b.path):
            rel = Path(dirpath).relative_to(b.path)
            for d in dirnames:
                src = Path(dirpath) / d
                if src.is_symlink():
                    _place_link(src, place / rel / d)
                else:
                    (place / rel / d).mkdir(exist_ok=True)
            for f in filenames:
                if rel == Path(".") and f == DEP_MARKER:
                    continue
                src, dest = Path(dirpath) / f, place / rel / f
                if dest.exists() or dest.is_symlink():
                    raise RuntimeError(f"{b.name} and an earlier artifact both install {rel / f}")
                if src.is_symlink():
                    _place_link(src, dest)
                elif _rewrite(src, dest, old, new):
                    rewritten.append(str(rel / f))
                else:
                    try:
                        os.link(src, dest)
                    except OSError:  # another file system, or links refused
                        shutil.copy2(src, dest)
    return dict(prefix.manifest, rewritten=sorted(rewritten))


def _place_link(src: Path, dest: Path) -> None:
    target = os.readlink(src)
    if os.path.isabs(target):
        raise RuntimeError(
            f"{src} is an absolute symlink ({target}): it would not follow the prefix"
        )
    os.symlink(target, dest)


def _rewrite(src: Path, dest: Path, old: list[bytes], new: bytes) -> bool:
    """Copy a text file that names an artifact with the prefix's path instead; False (and
    nothing written) for anything else."""
    if src.stat().st_size > 4 << 20:
        return False
    data = src.read_bytes()
    if data[:4] == b"\x7fELF" or data[:8] == b"!<arch>\n" or b"\0" in data[:8192]:
        return False
    if not any(o in data for o in old):
        return False
    for o in old:
        data = data.replace(o, new)
    dest.write_bytes(data)
    shutil.copymode(src, dest)
    return True


class DepsStep(Step):
    name = "deps"
    scope = "arch"

    def doc(self, config: Config, arch: str | None, py: PythonVersion | None) -> str:
        names = ", ".join(f"{d.name} {d.source.version}" for d in config.deps)
        modes = sorted({d.link for d in config.deps})
        return (
            f"Build {'/'.join(modes)} {names} for {arch} ({config.policy}), cached per dependency."
        )

    def run(
        self, project: Project, arch: str | None, py: PythonVersion | None, session: str
    ) -> None:
        assert arch is not None
        with project.backend(arch) as backend:
            say_where(project, backend, session, "build")
            build_deps(project, backend, session=session)


DEPS = DepsStep()
