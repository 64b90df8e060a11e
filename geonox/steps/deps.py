"""deps: build the configured recipes (static archives or shared libraries, per ``link``)
into one prefix per target.

The prefix is the cache artifact ``prefixes/<arch>-<key>`` where the key hashes everything
that changes its contents: arch, policy, toolchain identity (compiler versions, flags),
where the commands run, the CMake version, and per dependency its version, sha256, options
and the exact commands the recipe renders.  It is built in place (CMake package files
record absolute paths) under the artifact's lock and becomes complete only when
``geonox-prefix.json`` is written last; an incomplete prefix is removed before a rebuild
or when the build fails or is interrupted.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from geonox import sources
from geonox.backends import Backend
from geonox.cache import PREFIX_MARKER, Artifact
from geonox.config import Config
from geonox.project import Project
from geonox.recipes import BuildContext, needed_by, registry
from geonox.steps.base import Step, say_where
from geonox.targets import PythonVersion

STAMP = PREFIX_MARKER


@dataclass(frozen=True)
class DepPrefix:
    arch: str
    key: str
    artifact: Artifact
    manifest: dict

    @property
    def path(self) -> Path:
        return self.artifact.path


def _needed_by(config: Config, name: str) -> tuple[str, ...]:
    return needed_by(name, [d.name for d in config.deps])


def _manifest(config: Config, backend: Backend) -> dict:
    toolchain = backend.toolchain
    recipes = registry()
    deps = []
    for spec in config.deps:
        placeholder = _context(config, spec, toolchain, src="@SRC@", build="@BUILD@",
                               prefix="@PREFIX@", jobs=0)
        recipe = recipes[spec.name]
        rendered = [list(c.argv) for c in recipe.commands(placeholder)]
        deps.append({"name": spec.name, "version": spec.source.version,
                     "sha256": spec.source.sha256, "options": dict(spec.options),
                     "link": spec.link, "commands": rendered,
                     "consumer": recipe.consumer.revision if recipe.consumer else 0})
    return {
        "arch": backend.arch,
        "policy": config.policy,
        "executor": backend.executor.identity(),
        "toolchain": toolchain.identity,
        "cmake": backend.executor.capture(["cmake", "--version"]).splitlines()[0],
        "deps": deps,
    }


def _context(config: Config, spec, toolchain, *, src: str, build: str, prefix: str,
             jobs: int) -> BuildContext:
    return BuildContext(src=src, build=build, prefix=prefix, jobs=jobs, options=spec.options,
                        toolchain=toolchain, needed_by=_needed_by(config, spec.name),
                        link=spec.link, version=spec.source.version,
                        links={d.name: d.link for d in config.deps})


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


def prefix_key(manifest: dict) -> str:
    blob = json.dumps(manifest, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def planned_prefix(project: Project, backend: Backend) -> DepPrefix:
    """Where the prefix for the backend's arch is (or will be), without building anything."""
    manifest = _manifest(project.config, backend)
    key = prefix_key(manifest)
    return DepPrefix(arch=backend.arch, key=key, manifest=manifest,
                     artifact=project.cache.prefix(f"{backend.arch}-{key}"))


def build_deps(project: Project, backend: Backend, *, session: str | None = None) -> DepPrefix:
    """The complete prefix for the backend's arch, built now if it is not in the cache."""
    label = session or f"deps-{backend.arch}"
    backend.check_link_modes()
    prefix = planned_prefix(project, backend)
    built = prefix.artifact.ensure(lambda place: _build(project, backend, prefix, label),
                                   in_place=True)
    if not built:
        project.log(f"{label}: cached (key {prefix.key}) at {prefix.path}")
    return prefix


def _build(project: Project, backend: Backend, prefix: DepPrefix, label: str) -> dict:
    config = project.config
    executor, toolchain = backend.executor, backend.toolchain
    recipes = registry()
    # Verify every source before building anything.
    archives = {spec.name: sources.fetch(spec.source, mirrors=config.mirrors, offline=config.offline,
                                         cache_dir=project.cache.sources)
                for spec in config.deps}
    logs = project.cache.prefix_logs(prefix.path.name)
    if logs.exists():
        shutil.rmtree(logs)
    project.log(f"{label}: building {', '.join(f'{s.name} {s.source.version} ({s.link})' for s in config.deps)}"
                f" (key {prefix.key}, {toolchain.identity}, logs in {logs})")
    started = time.monotonic()
    timings: dict[str, float] = {}
    with project.cache.scratch(f"build-{prefix.path.name}") as work:
        for spec in config.deps:
            t0 = time.monotonic()
            src = sources.extract(archives[spec.name], work / f"src-{spec.name}")
            executor.sync_in(src)
            ctx = _context(config, spec, toolchain, src=str(src), build=str(work / f"build-{spec.name}"),
                           prefix=str(prefix.path), jobs=project.jobs)
            for cmd in recipes[spec.name].commands(ctx):
                executor.run(cmd, log=logs / f"{spec.name}-{cmd.name}.log")
            timings[spec.name] = round(time.monotonic() - t0, 1)
            project.log(f"{label}: {spec.name} {spec.source.version} built in {timings[spec.name]} s")
        executor.sync_out(prefix.path)
    for spec in config.deps:  # complete what consumers read (pkg-config, config scripts)
        consumer = recipes[spec.name].consumer
        if consumer and consumer.finish:
            consumer.finish(prefix.path, spec.source.version, spec.link)
    project.log(f"{label}: done in {time.monotonic() - started:.0f} s -> {prefix.path}")
    return dict(prefix.manifest, key=prefix.key, seconds=timings)


class DepsStep(Step):
    name = "deps"
    scope = "arch"

    def doc(self, config: Config, arch: str | None, py: PythonVersion | None) -> str:
        names = ", ".join(f"{d.name} {d.source.version}" for d in config.deps)
        modes = sorted({d.link for d in config.deps})
        return f"Build {'/'.join(modes)} {names} for {arch} ({config.policy}), cached by build key."

    def run(self, project: Project, arch: str | None, py: PythonVersion | None, session: str) -> None:
        assert arch is not None
        with project.backend(arch) as backend:
            say_where(project, backend, session, "build")
            build_deps(project, backend, session=session)


DEPS = DepsStep()
