"""The prefix engine: planning, building, pulling, pushing and assembling a target's
dependency prefix.  Steps (deps, build, repair), the CLI (``plan``, ``cache push|pull``)
and, through :class:`~geonox.remote.StoredArtifact`, the remote cache use it; it knows
nothing of steps.

**Artifacts** (``deps/<name>-<version>-<arch>-<key>``, :class:`DepBuild`): one dependency
installed into a prefix of its own.  Its key hashes what changes its contents: the recipe's
rendered commands, version, sha256, options, link mode and consumer files, the toolchain
identity (compiler versions, flags), where the commands run (host, image digest), the CMake
version, and the keys of the artifacts it is built against (PROJ's includes its SQLite's and
its build-machine ``sqlite3``'s).  Nothing about the project that asked for it is in the key,
so GEOS built for one project is reused by every project with the same toolchain.  Build
tools (``sqlite-shell``) are keyed by the build machine and its compiler only.

**Prefixes** (``prefixes/<target label>-<key>``, :class:`DepPrefix`): what the extension builds
against, keyed by the list of its artifacts' keys and assembled from them atomically (a
temporary sibling renamed into place): files hard-linked, symlinks kept, and text files that
name an artifact's path (CMake package files of a static PROJ name its SQLite) rewritten to
name the prefix.  Build tools are not part of it.

Each artifact is built in place (CMake records absolute paths) under its own lock and is
complete only when its marker is written last; an incomplete one is removed before a
rebuild or when its build fails or is interrupted.

:class:`PrefixEngine` works for one backend in one run: its plan (every artifact and key,
which asks the toolchain and the build machine's compiler for their versions) is made once.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from geonox import sources
from geonox.backends import Backend
from geonox.cache import (
    DEP_MARKER,
    Artifact,
    CacheLayout,
    file_sha256,
    rewrite_bytes,
    text_bytes,
    tree_changes,
    tree_digests,
)
from geonox.config import Config, DepSpec
from geonox.elf import replace_needed
from geonox.executors import stop_children
from geonox.project import Run
from geonox.recipes import BuildContext, Recipe, registry
from geonox.remote import CACHE_TIMEOUT, RemoteCache, RemoteError, StoredArtifact
from geonox.toolchains import Ccache
from geonox.tools import BUILD_TOOLS, build_tools_bin, pinned

#: part of every prefix key: bump when assembling writes something different
ASSEMBLY_REVISION = 1


@dataclass(frozen=True)
class DepBuild:
    """One dependency (or build tool) as its own cached artifact."""

    spec: DepSpec
    recipe: Recipe
    key: str
    artifact: Artifact
    manifest: Mapping[str, Any]
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

    @property
    def stored(self) -> StoredArtifact:
        """What the remote store knows it by."""
        return StoredArtifact(self.path.name, self.key, self.manifest, self.artifact)


@dataclass(frozen=True)
class DepPrefix:
    """A target's prefix: the libraries' artifacts assembled in one tree."""

    arch: str
    key: str
    artifact: Artifact
    manifest: Mapping[str, Any]
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


def content_key(manifest: Mapping[str, Any]) -> str:
    blob = json.dumps(manifest, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def remote_for(config: Config, *, push: bool | None = None) -> RemoteCache | None:
    """The project's remote store (None when none is configured); ``push`` overrides
    ``cache-push``."""
    if config.cache_remote is None:
        return None
    return RemoteCache(
        config.cache_remote,
        push=config.cache_push if push is None else push,
        timeout=(CACHE_TIMEOUT[0], config.env.timeout) if config.env.timeout else CACHE_TIMEOUT,
    )


def _tool_spec(config: Config, recipe: Recipe) -> DepSpec:
    """A build tool's spec: the configured release of the recipe whose source it uses."""
    for spec in config.deps:
        if spec.name == recipe.source_of:
            return DepSpec(name=recipe.name, source=spec.source, options={}, link="static")
    return DepSpec(
        name=recipe.name, source=recipe.releases[recipe.default_version], options={}, link="static"
    )


#: Where geonox's own files are (a recipe's version script): named @GEONOX@ in keys, which
#: hold their content instead, so the key does not depend on where geonox is installed.
PACKAGE = Path(__file__).resolve().parent


def _portable(arg: str, cache_root: str) -> str:
    arg = arg.replace(str(PACKAGE), "@GEONOX@").replace(cache_root, "@CACHE@")
    return re.sub(r"@CACHE@/toolchains/[^/\s]+", "@TOOLCHAIN@", arg)


def _package_files(commands: list[list[str]]) -> dict[str, str]:
    """The sha256 of each of geonox's files the commands name (``@GEONOX@/...``)."""
    names = sorted(
        set(re.findall(r"@GEONOX@/([\w./-]+)", " ".join(a for c in commands for a in c)))
    )
    return {n: file_sha256(PACKAGE / n) for n in names}


class _Stopped(Exception):
    """A build not finished because another one failed (that one's error is raised)."""


@dataclass(frozen=True)
class Checked:
    """One library artifact of the remote store against a build of it here
    (:meth:`PrefixEngine.check`): ``same``, ``differs`` (``changes``: how the store's copy
    differs, first file first), ``absent`` from the store, or ``failed`` to read (``detail``)."""

    build: DepBuild
    outcome: Literal["same", "differs", "absent", "failed"]
    changes: tuple[str, ...] = ()
    detail: str = ""
    pulled_here: bool = False  # the local cache holds what it pulled from the store


@dataclass(frozen=True)
class Transfer:
    """What happened to one artifact on its way to or from the remote store."""

    build: DepBuild
    # skipped: not tried, the registry having not answered (or refused a push) before
    outcome: Literal["pulled", "pushed", "here", "absent", "failed", "skipped"]
    detail: str = ""  # the reference pushed, how long a pull took, or why it failed
    push: bool = False  # the direction: to the store, or from it
    seconds: float | None = None  # how long a pull took


class PrefixEngine:
    """The dependency prefix of one backend in one run (see the module docstring)."""

    def __init__(self, run: Run, backend: Backend) -> None:
        self.run = run
        self.backend = backend
        self.config = run.config
        self.cache = run.project.cache
        #: what ensure() did with each library artifact, for the summary
        self.outcomes: list[dict[str, Any]] = []
        self._pull_seconds: dict[str, float | None] = {}

    # ---------------------------------------------------------------- the plan

    def _context(
        self,
        spec: DepSpec,
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
            toolchain=self.backend.toolchain,
            link=spec.link,
            version=spec.source.version,
            links={d.name: d.link for d in self.config.deps},
            deps=deps,
            launcher=launcher,
        )

    @functools.cached_property
    def builds(self) -> tuple[DepBuild, ...]:
        """Every artifact the backend's prefix needs, dependencies and tools before their
        users, with their keys (nothing is built)."""
        config, backend = self.config, self.backend
        executor, toolchain = backend.executor, backend.toolchain
        recipes = registry()
        # The pinned CMake in every executor (geonox.tools.build_tools_bin), never an image's.
        cmake = " ".join(pinned(BUILD_TOOLS, self.run.project.build_python(None)))
        target = {
            "arch": backend.arch,
            "executor": executor.identity(),
            "toolchain": toolchain.identity,
            "cmake": cmake,
        }
        builds: dict[str, DepBuild] = {}
        cache_root = str(self.cache.root)

        @functools.lru_cache(maxsize=1)
        def build_machine() -> tuple[tuple[str, Any], ...]:
            cc = executor.capture([*toolchain.build_cc, "--version"]).splitlines()[0]
            return (("machine", executor.build_identity()), ("build_cc", [*toolchain.build_cc, cc]))

        def add(spec: DepSpec) -> None:
            recipe = recipes[spec.name]
            for tool in recipe.tools:
                if tool not in builds:
                    add(_tool_spec(config, recipes[tool]))
            inputs = (*recipe.depends, *recipe.tools)
            placeholder = self._context(
                spec,
                src="@SRC@",
                build="@BUILD@",
                prefix="@PREFIX@",
                jobs=0,
                deps={n: f"@{n.upper()}@" for n in inputs},
            )
            commands = [
                [_portable(a, cache_root) for a in c.argv] for c in recipe.commands(placeholder)
            ]
            files = _package_files(commands)
            manifest = {
                "name": spec.name,
                "version": spec.source.version,
                "sha256": spec.source.sha256,
                "options": dict(spec.options),
                "link": spec.link,
                # never the cache's path, nor the name of a toolchain's directory in it (zig's
                # wrappers: named after the interpreter that wrote them), whose identity is
                # hashed below, nor where geonox is (its files' content instead): one key on
                # every machine, whatever Python runs geonox
                "commands": commands,
                **({"files": files} if files else {}),
                "consumer": recipe.consumer.revision if recipe.consumer else 0,
                "inputs": {n: builds[n].key for n in inputs},
                **(dict(build_machine()) if recipe.build_tool else target),
            }
            key = content_key(manifest)
            where = executor.build_arch() if recipe.build_tool else backend.target.label
            name = f"{spec.name}-{spec.source.version}-{where}-{key}"
            builds[spec.name] = DepBuild(
                spec=spec,
                recipe=recipe,
                key=key,
                inputs=inputs,
                artifact=self.cache.dep(name),
                manifest=manifest,
            )

        for spec in config.deps:
            add(spec)
        return tuple(builds.values())

    @functools.cached_property
    def plan(self) -> DepPrefix:
        """Where the prefix for the backend's arch is (or will be), without building."""
        backend = self.backend
        libraries = [b for b in self.builds if not b.recipe.build_tool]
        key = content_key({"artifacts": [b.key for b in libraries], "assembly": ASSEMBLY_REVISION})
        manifest = {
            "arch": backend.arch,
            "key": key,
            "toolchain": backend.toolchain.identity,
            "executor": backend.executor.identity(),
            "policy": backend.target.policy,
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
            builds=self.builds,
            artifact=self.cache.prefix(f"{backend.target.label}-{key}"),
        )

    # ---------------------------------------------------------------- making it

    def ensure(self) -> DepPrefix:
        """The complete prefix: its missing artifacts pulled or built, then assembled,
        unless it is in the cache already."""
        run, backend = self.run, self.backend
        backend.check_link_modes()
        prefix = self.plan
        for b in prefix.libraries:
            if b.spec.link == "static" and b.recipe.static_note:
                run.log(f"warning: {b.recipe.static_note}")
        self._warn_changed(prefix.artifact, f"prefix (key {prefix.key})")
        if prefix.artifact.complete():
            prefix.artifact.touch()
            run.log(f"cached (key {prefix.key}) at {prefix.path}")
            self.outcomes = [_outcome(b, "reused") for b in prefix.libraries]
            return prefix
        for b in prefix.builds:
            self._warn_changed(b.artifact, f"{b.label} [{b.key}]")
        remote = remote_for(self.config)
        pulled = self._pull_missing(remote) if remote else []
        needed = self._needed()
        missing = [b for b in needed if not b.artifact.complete()]
        # Verify every source before building anything.
        archives = {b.name: self._fetch(b) for b in missing}
        started = time.monotonic()
        by_name = {b.name: b for b in prefix.builds}
        made = self._ensure_all(needed, by_name, archives)
        built = [b for b in needed if made[b.name]]
        took = {b.name: b.artifact.read_marker().get("seconds") for b in built}
        reused = [b for b in needed if not made[b.name]]
        if remote is not None and remote.push_enabled:
            for t in self.push(remote, [b for b in built if not b.recipe.build_tool]):
                self._say(t, remote)
        reused = [b for b in reused if b not in pulled]
        with contextlib.ExitStack() as stack:
            for b in prefix.libraries:
                stack.enter_context(b.artifact.reading())
            prefix.artifact.ensure(functools.partial(_assemble, prefix))
        self.outcomes = [
            _outcome(b, "pulled", self._pull_seconds.get(b.name))
            if b in pulled
            else _outcome(b, "built", took.get(b.name))
            if b in built
            else _outcome(b, "reused")
            for b in prefix.libraries
        ]
        parts = []
        if pulled:
            parts.append(
                f"pulled from {remote} " + ", ".join(f"{b.label} [{b.key}]" for b in pulled)
            )
        if reused:
            parts.append("reused " + ", ".join(f"{b.label} [{b.key}]" for b in reused))
        if built:
            parts.append("built " + ", ".join(f"{b.label} [{b.key}]" for b in built))
        run.log(
            f"prefix (key {prefix.key}) assembled in {time.monotonic() - started:.0f} s "
            f"from {len(prefix.libraries)} artifacts: {'; '.join(parts)} -> {prefix.path}"
        )
        return prefix

    def _warn_changed(self, artifact: Artifact, label: str) -> None:
        """One line when a complete artifact's files are not what it recorded: it is not
        used (not complete), and made again."""
        if not artifact.marker_path.is_file():
            return
        changed = artifact.changes()
        if changed:
            more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
            self.run.log(
                f"warning: {label} changed in the cache since it was made "
                f"({', '.join(changed[:3])}{more}): not used, made again"
            )

    def _ensure_all(
        self, needed: list[DepBuild], by_name: dict[str, DepBuild], archives: dict[str, Path]
    ) -> dict[str, bool]:
        """Every needed artifact complete (name -> built now?), each started as soon as
        what it is built against is complete, beside the others: a build's one-core
        phases (configure, SQLite's one big file, PROJ's proj.db, the link) then overlap
        another's compiles.  Each still compiles with -j (cores): the overlap is short.
        The first failure stops the others before their next command; an interruption
        stops their running commands too (only this thread receives the signal)."""
        stop = threading.Event()

        def one(b: DepBuild, inputs: list[concurrent.futures.Future[bool]]) -> bool:
            for f in inputs:
                f.result()  # an input that failed fails this one (its error is reported)
            if stop.is_set():
                raise _Stopped()
            return b.artifact.ensure(
                functools.partial(self._build_one, b, by_name, archives.get(b.name), stop),
                in_place=True,
                on_wait=functools.partial(self._waiting, b),
            )

        futures: dict[str, concurrent.futures.Future[bool]] = {}
        # one thread per artifact: a thread waiting for its inputs never holds up another
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(needed))) as pool:
            try:
                for b in needed:  # dependencies first, so their futures exist
                    inputs = [futures[n] for n in b.inputs if n in futures]
                    futures[b.name] = pool.submit(one, b, inputs)
                # all done, or one failed: then the others stop before their next command
                concurrent.futures.wait(
                    futures.values(), return_when=concurrent.futures.FIRST_EXCEPTION
                )
                stop.set()
                concurrent.futures.wait(futures.values())
            except BaseException:
                stop.set()
                stop_children()
                raise
        errors = (f.exception() for f in futures.values())
        first = next((e for e in errors if e and not isinstance(e, _Stopped)), None)
        if first is not None:
            raise first
        return {name: f.result() for name, f in futures.items()}

    def _fetch(self, b: DepBuild) -> Path:
        config = self.config
        return Path(
            sources.fetch(
                b.spec.source,
                mirrors=config.mirrors,
                offline=config.offline,
                cache_dir=self.cache.sources,
            )
        )

    def _waiting(self, b: DepBuild, lock: str) -> None:
        self.run.log(f"waiting for another build of {b.label} ({lock})")

    def _needed(self) -> list[DepBuild]:
        """The artifacts to have: every library, and the tools of those that must be built."""
        prefix = self.plan
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
        self,
        b: DepBuild,
        by_name: dict[str, DepBuild],
        archive: Path | None,
        stop: threading.Event,
        place: Path,
    ) -> dict[str, Any]:
        assert archive is not None, b.name
        run, backend = self.run, self.backend
        executor = backend.executor
        logs = self.cache.dep_logs(b.path.name)
        if logs.exists():
            shutil.rmtree(logs)
        ccache = None if b.recipe.build_tool else backend.ccache
        run.log(
            f"building {b.label} (key {b.key}, "
            f"{'build machine' if b.recipe.build_tool else backend.toolchain.identity}"
            f"{', ccache' if ccache else ''}, logs in {logs})"
        )
        t0 = time.monotonic()
        with contextlib.ExitStack() as stack:
            for n in b.inputs:  # what it builds against stays while it does
                stack.enter_context(by_name[n].artifact.reading())
            work = stack.enter_context(self.cache.scratch(f"build-{b.path.name}"))
            src = sources.extract(archive, work / f"src-{b.name}")
            executor.sync_in(src)
            views = _views({n: by_name[n].path for n in b.inputs}, work / "deps")
            for n in b.inputs:
                executor.sync_in(by_name[n].path)
            if views:  # a build with no inputs has none (docker cp needs the path)
                executor.sync_in(work / "deps")
            ctx = self._context(
                b.spec,
                src=str(src),
                build=str(work / f"build-{b.name}"),
                prefix=str(b.path),
                jobs=run.project.jobs,
                deps={n: str(view) for n, view in views.items()},
                launcher=(ccache.exe,) if ccache else (),
            )
            stats = work / "ccache-stats.log"  # what each compile did (read back where visible)
            env = ccache.env(backend.toolchain, stats_log=stats, depend=True) if ccache else {}
            tools = build_tools_bin(
                executor,
                self.cache,
                run.project.build_python(None),
                log=logs / "build-tools.log",
            )
            env = {**env, "PATH": f"{tools}:{env.get('PATH', executor.default_path())}"}
            for cmd in b.recipe.commands(ctx):
                if stop.is_set():  # another artifact's build failed
                    raise _Stopped()
                executor.run(
                    dataclasses.replace(cmd, env={**env, **cmd.env}),
                    log=logs / f"{b.name}-{cmd.name}.log",
                )
            executor.sync_out(b.path)
            _unview(b.path, {str(views[n]): str(by_name[n].path) for n in b.inputs})
            hits = Ccache.hits(stats) if ccache else None
        if not b.recipe.build_tool:
            for old, new in backend.toolchain.needed_renames.items():
                replace_needed(sorted(b.path.rglob("*")), old, new)
        consumer = b.recipe.consumer
        if consumer and consumer.finish:  # complete what consumers read (pkg-config, scripts)
            consumer.finish(b.path, b.spec.source.version, b.spec.link)
        seconds = round(time.monotonic() - t0, 1)
        run.log(
            f"{b.label} built in {seconds} s"
            + (f" (ccache: {hits[0]} of {hits[1]} compiles were hits)" if hits else "")
        )
        return dict(b.manifest, key=b.key, seconds=seconds)

    # ---------------------------------------------------------------- the remote store

    def _pull_missing(self, remote: RemoteCache) -> list[DepBuild]:
        """Every library artifact the cache lacks, from the remote store when it holds it
        (its tools are then not needed).  What it lacks, or holds wrong, is built here."""
        pulled = []
        for t in self.pull(remote):
            if t.outcome == "pulled":
                pulled.append(t.build)
                self._pull_seconds[t.build.name] = t.seconds
            if t.outcome != "here":
                self._say(t, remote)
        return pulled

    def pull(self, remote: RemoteCache) -> list[Transfer]:
        """Each library artifact of the plan: here already, pulled, absent, or failed."""
        done = []
        for b in self.plan.libraries:
            if b.artifact.complete():
                done.append(Transfer(b, "here"))
                continue
            if remote.unreachable:
                done.append(Transfer(b, "skipped", remote.unreachable))
                continue
            t0 = time.monotonic()
            try:
                got = remote.pull_into_cache(
                    b.stored, self.cache.root, on_wait=functools.partial(self._waiting, b)
                )
            except RemoteError as exc:
                done.append(Transfer(b, "failed", str(exc)))
                continue
            if got is None:
                done.append(Transfer(b, "absent"))
            else:
                took = round(time.monotonic() - t0, 1)
                done.append(Transfer(b, "pulled" if got else "here", f"{took} s", seconds=took))
        return done

    def push(self, remote: RemoteCache, builds: list[DepBuild] | None = None) -> list[Transfer]:
        """Upload ``builds`` (default: every library artifact of the plan this cache holds)."""
        done = []
        for b in self.plan.libraries if builds is None else builds:
            if not b.artifact.complete():
                done.append(Transfer(b, "absent", push=True))
                continue
            stopped = remote.unreachable or remote.push_refused
            if stopped:
                done.append(Transfer(b, "skipped", stopped, push=True))
                continue
            try:
                with b.artifact.reading():
                    ref = remote.push(b.stored, self.cache.root)
            except RemoteError as exc:
                done.append(Transfer(b, "failed", str(exc), push=True))
            else:
                done.append(Transfer(b, "pushed", ref, push=True))
        return done

    def check(self, remote: RemoteCache, names: frozenset[str] = frozenset()) -> list[Checked]:
        """Each library artifact of the plan (``names``: only those) that the remote store
        holds, against the same artifact built here from verified sources, as ``nix build
        --check`` does: so whoever can push cannot slip other code into everyone's wheels
        unseen.  The builds go to a scratch cache root inside this cache (its ccache
        included), each against the others rebuilt there (what they are built against is
        never the store's, nor a pulled copy), with the build tools of this cache (never
        pulled); the store's copy is relocated to that root, and every file must be the
        same bytes.  Nothing in this cache is replaced or pushed."""
        plan = self.plan
        by_name = {b.name: b for b in plan.builds}
        checked: dict[str, Checked] = {}
        with self.cache.scratch(f"check-{self.backend.target.label}-{plan.key}") as root:
            scratch = CacheLayout(root)
            theirs: dict[str, Path] = {}
            for b in plan.libraries:
                if names and b.name not in names:
                    continue
                if remote.unreachable:
                    checked[b.name] = Checked(b, "failed", detail=remote.unreachable)
                    continue
                place = root / "store" / b.path.name
                try:
                    got = remote.pull(b.stored, place, root)
                except RemoteError as exc:
                    checked[b.name] = Checked(b, "failed", detail=str(exc))
                    continue
                if got is None:
                    checked[b.name] = Checked(b, "absent")
                else:
                    theirs[b.name] = place
            need: set[str] = set()

            def visit(name: str) -> None:
                need.add(name)
                for n in by_name[name].inputs:
                    visit(n)

            for name in theirs:
                visit(name)
            mine = {
                b.name: b
                if b.recipe.build_tool
                else dataclasses.replace(b, artifact=scratch.dep(b.path.name))
                for b in plan.builds
                if b.name in need
            }
            order = list(mine.values())  # plan.builds' order: what is built on, first
            archives = {b.name: self._fetch(b) for b in order if not b.artifact.complete()}
            self._ensure_all(order, mine, archives)
            for name, place in theirs.items():
                b = by_name[name]
                recorded = tree_digests(mine[name].path, skip=frozenset({DEP_MARKER}))
                changes = tuple(tree_changes(place, recorded))
                pulled = b.artifact.complete() and "pulled" in b.artifact.read_marker()
                checked[name] = Checked(
                    b, "differs" if changes else "same", changes, pulled_here=pulled
                )
        return [checked[b.name] for b in plan.libraries if b.name in checked]

    def _say(self, t: Transfer, remote: RemoteCache) -> None:
        """A transfer of the deps step, as its log says it: failures are warnings."""
        b, log = t.build, self.run.log
        if t.outcome == "pulled":
            log(f"pulled {b.label} [{b.key}] from {remote} in {t.detail}")
        elif t.outcome == "pushed":
            log(f"pushed {b.label} [{b.key}] to {t.detail}")
        elif t.outcome == "failed" and t.push and remote.push_refused:
            log(f"warning: not pushing to {remote}: {remote.push_refused}; the artifacts stay here")
        elif t.outcome == "failed" and remote.unreachable:  # said once: the rest are skipped
            log(
                f"warning: not using {remote} in this run: {t.detail}; "
                "what it would have given is built here"
            )
        elif t.outcome == "failed" and t.push:
            log(f"warning: could not push {b.label} to {remote}: {t.detail}")
        elif t.outcome == "failed":
            log(f"warning: not using {remote} for {b.label}: {t.detail}; building it here")
        elif t.outcome == "absent" and not t.push:
            log(f"{remote} has no {b.label} [{b.key}]; building it here")


def _outcome(b: DepBuild, outcome: str, seconds: float | None = None) -> dict[str, Any]:
    return {
        "name": b.name,
        "version": b.spec.source.version,
        "link": b.spec.link,
        "key": b.key,
        "outcome": outcome,
        "seconds": seconds,
    }


# ------------------------------------------------------------------ views


def _views(artifacts: Mapping[str, Path], under: Path) -> dict[str, Path]:
    """Each artifact's files hard-linked (copied where links are refused) at
    ``under/<name>``: the path a build sees its dependencies at.  It names no key, so
    ccache's depend mode, which keys a compile by its command line, still hits when a
    dependency was rebuilt under a new key with the same headers (its ``-I`` is the same
    relative to the build directory), and a rebuilt dependency whose headers changed still
    misses (the headers' contents are in the key).  Its markers are left out."""
    views = {}
    for name, artifact in artifacts.items():
        view = views[name] = under / name
        for dirpath, dirnames, filenames in os.walk(artifact):
            rel = Path(dirpath).relative_to(artifact)
            (view / rel).mkdir(parents=True, exist_ok=True)
            for entry in [*dirnames, *filenames]:
                src, dest = Path(dirpath) / entry, view / rel / entry
                if src.is_symlink():
                    _place_link(src, dest)
                    if entry in dirnames:
                        dirnames.remove(entry)
                elif entry in filenames and not (rel == Path(".") and entry == DEP_MARKER):
                    _link_or_copy(src, dest)
    return views


def _unview(prefix: Path, paths: Mapping[str, str]) -> list[str]:
    """What a build installed naming a dependency's view (a CMake config naming a library
    it links, a ``.pc`` file) names that dependency's artifact instead, as it did before
    views: the view goes with the build's scratch.  Text files only (binaries hold at
    most an assertion's ``__FILE__``)."""
    if not paths:
        return []
    pattern = re.compile(
        b"|".join(re.escape(v.encode()) for v in sorted(paths, key=len, reverse=True))
        + rb"(?![\w.+-])"
    )
    target = {v.encode(): a.encode() for v, a in paths.items()}
    done = []
    for path in sorted(prefix.rglob("*")):
        data = text_bytes(path)
        if data is None:
            continue
        new = pattern.sub(lambda m: target[m.group(0)], data)
        if new != data:
            rewrite_bytes(path, new)
            done.append(str(path.relative_to(prefix)))
    return done


# ------------------------------------------------------------------ assembly


def _assemble(prefix: DepPrefix, place: Path) -> dict[str, Any]:
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
                    _link_or_copy(src, dest)
    return dict(prefix.manifest, rewritten=sorted(rewritten))


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:  # another file system, or links refused
        shutil.copy2(src, dest)


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
    data = text_bytes(src)
    if data is None or not any(o in data for o in old):
        return False
    for o in old:
        data = data.replace(o, new)
    dest.write_bytes(data)
    shutil.copymode(src, dest)
    return True
