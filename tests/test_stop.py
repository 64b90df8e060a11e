"""Stopping is clean: SIGTERM (what CI sends on cancel) to a `deps` session mid-compile
stops the compilers it started -- on this machine and in the container -- marks nothing
complete, exits non-zero, and the next run builds from scratch and succeeds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import standin
from conftest import run, skip_or_fail, sqlite_project, standin_or_skip
from conftest_http import wait_for

from geonox.cache import CacheLayout
from geonox.targets import host_arch


def processes_mentioning(text: str) -> list[str]:
    """Command lines of every process on the machine (containers' included) naming ``text``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and proc.name != str(os.getpid()):
            found.append(f"{proc.name}: {cmdline}")
    return found


def compiler_running(cache: Path) -> bool:
    return any("sqlite3.c" in c for c in processes_mentioning(str(cache)))


def interrupt_mid_compile(
    project: Path,
    session: str,
    env: dict,
    cache: Path,
    ready: Callable[[], bool] | None = None,
) -> str:
    """SIGTERM to ``session`` once ``ready`` (by default: the compiler is running); then
    nothing of it may be left running, complete or half-written."""
    ready = ready or (lambda: compiler_running(cache))
    proc = subprocess.Popen(
        [sys.executable, "-m", "nox", "-s", session],
        cwd=project,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert wait_for(ready, 300), "the compiler never started"
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)  # to nox alone, as `kill <pid>` does
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode != 0, out
    # a few seconds later nothing that worked for it is left running
    assert wait_for(lambda: not processes_mentioning(str(cache)), 10), processes_mentioning(
        str(cache)
    )
    layout = CacheLayout(cache)
    assert not any(layout.prefixes.glob("*/geonox-prefix.json")), "nothing may be marked complete"
    assert not any(layout.deps.glob("*/geonox-dep.json")), "nothing may be marked complete"
    assert not [p for p in layout.deps.iterdir() if p.is_dir()], "the half-built artifact stays"
    assert not (layout.prefixes.exists() and [p for p in layout.prefixes.iterdir() if p.is_dir()])
    assert not [p for p in layout.tmp.iterdir() if p.is_dir()], "scratch left behind"
    return out


def test_sigterm_stops_the_host_compiler_and_the_next_run_rebuilds(tmp_path, geonox_env):
    if host_arch() != "x86_64":
        skip_or_fail("the host test builds x86_64")
    cache = tmp_path / "cache"
    # ccache off: a hit would finish the compile before it could be interrupted
    env = dict(geonox_env, GEONOX_CACHE_DIR=str(cache), GEONOX_CCACHE="0")
    project = sqlite_project(tmp_path / "p")
    out = interrupt_mid_compile(project, f"deps-{host_arch()}", env, cache)
    assert "interrupted" in out and "Traceback" not in out, out
    again = run([sys.executable, "-m", "nox", "-s", f"deps-{host_arch()}"], cwd=project, env=env)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "sqlite 3.52.0 (static) built in" in again.stdout
    assert list(CacheLayout(cache).prefixes.glob("*/lib/libsqlite3.a"))


@pytest.mark.containers
def test_sigterm_stops_the_compiler_in_the_container(tmp_path, geonox_env):
    image = standin_or_skip("x86_64")
    cache = tmp_path / "cache"
    # ccache off: an earlier test's docker SQLite compile would be a hit that finishes
    # before it could be interrupted
    env = dict(geonox_env, GEONOX_CACHE_DIR=str(cache), GEONOX_CCACHE="0")
    project = sqlite_project(
        tmp_path / "p", '[tool.geonox.versions]\nsqlite = "3.52.0"\n'
    ).resolve()
    text = (
        (project / "pyproject.toml")
        .read_text()
        .replace(
            'backend = "host"',
            f'backend = "docker"\npolicy = "manylinux_2_31"\nimages = {{ x86_64 = "{image}" }}',
        )
        # the stand-in's CPython: the deps session finds every configured one first
        .replace('python = ["3.12"]', 'python = ["3.9"]')
    )
    (project / "pyproject.toml").write_text(text)
    pinned = run(
        [sys.executable, "-m", "geonox", "pin", "--project", project], cwd=project, env=env
    )
    assert pinned.returncode == 0, pinned.stdout
    proc_env = dict(env)
    out = interrupt_mid_compile(project, "deps-x86_64", proc_env, cache)
    assert "runs on docker 127.0.0.1:5000/" in out and "@sha256:" in out, out
    left = subprocess.run(
        [standin.DOCKER, "ps", "-a", "-q", "--filter", "label=geonox=1"],
        capture_output=True,
        text=True,
    ).stdout.split()
    mine = [
        c
        for c in left
        if str(cache)
        in subprocess.run(
            [standin.DOCKER, "inspect", "--format", "{{json .Mounts}}", c],
            capture_output=True,
            text=True,
        ).stdout
    ]
    assert mine == [], "the container must be removed"
    again = run([sys.executable, "-m", "nox", "-s", "deps-x86_64"], cwd=project, env=env)
    assert again.returncode == 0, again.stdout[-3000:]
    assert (
        "sqlite 3.52.0 (static) built in" in again.stdout and "(cc (Debian 10.2.1" in again.stdout
    )


def test_sigterm_stops_every_build_running_beside_another(tmp_path, geonox_env):
    """SQLite and GEOS build at once (neither needs the other); SIGTERM reaches geonox's
    main thread alone, which stops the commands its other threads are waiting for: no
    compiler of either is left running, nothing is complete, no scratch is left."""
    if host_arch() != "x86_64":
        skip_or_fail("the host test builds x86_64")
    cache = tmp_path / "cache"
    env = dict(geonox_env, GEONOX_CACHE_DIR=str(cache), GEONOX_CCACHE="0")
    project = sqlite_project(
        tmp_path / "p",
        '[tool.geonox.versions]\nsqlite = "3.52.0"\ngeos = "3.13.1"\n',
        deps=["sqlite", "geos"],
    )

    def both_running() -> bool:
        running = processes_mentioning(str(cache))
        return any("sqlite3.c" in c for c in running) and any("geos-3.13.1" in c for c in running)

    out = interrupt_mid_compile(project, f"deps-{host_arch()}", env, cache, ready=both_running)
    assert "interrupted" in out and "Traceback" not in out, out
