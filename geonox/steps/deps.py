"""deps: build the configured recipes as static libraries into one prefix per target.

The prefix lives at ``<cache>/prefixes/<arch>-<key>`` where the key hashes everything that
changes its contents: arch, policy, toolchain identity (compiler versions, flags), where the
commands run, and per dependency its version, sha256, options and the exact commands the
recipe renders.  It is built in place (CMake package files record absolute paths) under a
file lock and becomes valid only when ``geonox-prefix.json`` is written last; an incomplete
prefix is removed before a rebuild or after a failure.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from geonox import cache, sources
from geonox.recipes import BuildContext, needed_by, registry
from geonox.steps import Pipeline

STAMP = "geonox-prefix.json"


@dataclass(frozen=True)
class DepPrefix:
    arch: str
    key: str
    path: Path
    manifest: dict

    @property
    def proj_data(self) -> Path:
        return self.path / "share" / "proj"


def _manifest(pipe: Pipeline, arch: str) -> dict:
    toolchain = pipe.toolchain(arch)
    recipes = registry()
    deps = []
    for spec in pipe.config.deps:
        placeholder = BuildContext(src="@SRC@", build="@BUILD@", prefix="@PREFIX@", jobs=0,
                                   options=spec.options, toolchain=toolchain,
                                   needed_by=_needed_by(pipe, spec.name))
        rendered = [list(c.argv) for c in recipes[spec.name].commands(placeholder)]
        deps.append({"name": spec.name, "version": spec.source.version,
                     "sha256": spec.source.sha256, "options": dict(spec.options),
                     "commands": rendered})
    return {
        "arch": arch,
        "policy": pipe.config.policy,
        "executor": pipe.executor(arch).identity(),
        "toolchain": toolchain.identity,
        "cmake": pipe.executor(arch).capture(["cmake", "--version"]).splitlines()[0],
        "deps": deps,
    }


def _needed_by(pipe: Pipeline, name: str) -> "tuple[str, ...]":
    return needed_by(name, [d.name for d in pipe.config.deps])


def prefix_key(manifest: dict) -> str:
    blob = json.dumps(manifest, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def planned_prefix(pipe: Pipeline, arch: str) -> DepPrefix:
    """Where the prefix for ``arch`` is (or will be), without building anything."""
    manifest = _manifest(pipe, arch)
    key = prefix_key(manifest)
    return DepPrefix(arch=arch, key=key, path=cache.prefixes_dir() / f"{arch}-{key}",
                     manifest=manifest)


def is_complete(prefix: DepPrefix) -> bool:
    return (prefix.path / STAMP).is_file()


def build_deps(pipe: Pipeline, arch: str, *, session: str | None = None) -> DepPrefix:
    label = session or f"deps-{arch}"
    prefix = planned_prefix(pipe, arch)
    if is_complete(prefix):
        pipe.log(f"{label}: cached (key {prefix.key}) at {prefix.path}")
        return prefix
    prefix.path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(prefix.path) + ".lock"):
        if is_complete(prefix):  # another process built it while we waited
            pipe.log(f"{label}: cached (key {prefix.key}) at {prefix.path}")
            return prefix
        _build(pipe, prefix, label)
    return prefix


def _build(pipe: Pipeline, prefix: DepPrefix, label: str) -> None:
    config = pipe.config
    executor = pipe.executor(prefix.arch)
    toolchain = pipe.toolchain(prefix.arch)
    recipes = registry()
    mirrors = [*sources.mirrors_from_env(), *config.mirrors]
    offline = config.offline or sources.offline_from_env()
    # Verify every source before building anything.
    archives = {spec.name: sources.fetch(spec.source, mirrors=mirrors, offline=offline)
                for spec in config.deps}

    logs = cache.cache_root() / "logs" / f"{prefix.arch}-{prefix.key}"
    if logs.exists():
        shutil.rmtree(logs)
    work = cache.tmp_dir() / f"build-{prefix.arch}-{prefix.key}"
    for stale in (prefix.path, work):
        if stale.exists():
            shutil.rmtree(stale)
    pipe.log(f"{label}: building {', '.join(f'{s.name} {s.source.version}' for s in config.deps)}"
             f" (key {prefix.key}, {toolchain.identity}, logs in {logs})")
    started = time.monotonic()
    timings: dict[str, float] = {}
    try:
        for spec in config.deps:
            t0 = time.monotonic()
            src = sources.extract(archives[spec.name], work / f"src-{spec.name}")
            executor.sync_in(src)
            ctx = BuildContext(src=str(src), build=str(work / f"build-{spec.name}"),
                               prefix=str(prefix.path), jobs=pipe.jobs, options=spec.options,
                               toolchain=toolchain, needed_by=_needed_by(pipe, spec.name))
            for cmd in recipes[spec.name].commands(ctx):
                executor.run(cmd, log=logs / f"{spec.name}-{cmd.name}.log")
            timings[spec.name] = round(time.monotonic() - t0, 1)
            pipe.log(f"{label}: {spec.name} {spec.source.version} built in {timings[spec.name]} s")
        executor.sync_out(prefix.path)
        stamp = dict(prefix.manifest, key=prefix.key, seconds=timings)
        (prefix.path / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
    except BaseException:
        shutil.rmtree(prefix.path, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    pipe.log(f"{label}: done in {time.monotonic() - started:.0f} s -> {prefix.path}")
