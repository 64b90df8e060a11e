"""Sources from the outside: `nox -s deps-x86_64` against a real HTTP mirror on 127.0.0.1
that first serves a corrupted tarball under the right name, then the real one; and the
`fetch` / `cache` commands."""

from __future__ import annotations

import hashlib
import os
import re
import sys
import time
from pathlib import Path

import pytest
from conftest import nox, run, sqlite_project
from conftest_http import SQLITE, SQLITE_SHA256, fault_server, serve, wrong_bytes  # noqa: F401

from geonox.targets import host_arch

# builds SQLite from the mirror's tarball, served over HTTP
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("mirror")]


def project(tmp_path: Path) -> Path:
    return sqlite_project(tmp_path / "proj")


def env_for(cache: Path, mirror: str) -> dict:
    env = dict(os.environ)
    env.update(GEONOX_CACHE_DIR=str(cache), GEONOX_MIRROR=mirror)
    env.pop("GEONOX_OFFLINE", None)
    return env


def files_named(root: Path, name: str) -> list[Path]:
    return [p for p in root.rglob("*") if name in p.name]


def test_corrupted_mirror_fails_cleanly_then_succeeds(tmp_path, fault_server):  # noqa: F811
    cache = tmp_path / "cache"
    env = env_for(cache, fault_server.base)
    proj = project(tmp_path)
    fault_server.script(f"/{SQLITE}", wrong_bytes())
    bad = nox("-s", f"deps-{host_arch()}", cwd=proj, env=env)
    assert bad.returncode != 0
    assert "sha256 mismatch for sqlite-autoconf-3520000.tar.gz" in bad.stdout
    assert SQLITE_SHA256 in bad.stdout  # expected
    assert fault_server.url(f"/{SQLITE}") in bad.stdout
    assert "Traceback" not in bad.stdout
    assert files_named(cache, SQLITE) == [], "a corrupted download must leave nothing behind"
    assert not list(cache.glob("prefixes/*/*")), "nothing may be built from an unverified source"
    assert not list(cache.glob("deps/*/*")), "nothing may be built from an unverified source"

    fault_server.script(f"/{SQLITE}", serve())
    good = nox("-s", f"deps-{host_arch()}", cwd=proj, env=env)
    assert good.returncode == 0, good.stdout[-3000:]
    cached = files_named(cache, SQLITE)
    assert len(cached) == 1
    assert hashlib.sha256(cached[0].read_bytes()).hexdigest() == SQLITE_SHA256


def test_fetch_seeds_a_mirror_then_offline_build_plan_uses_it(tmp_path, fault_server):  # noqa: F811
    proj = project(tmp_path)
    seed = tmp_path / "seed"
    env = env_for(tmp_path / "cache1", fault_server.base)
    fetched = run(
        [sys.executable, "-m", "geonox", "fetch", "--project", proj, "--dest", seed],
        cwd=proj,
        env=env,
    )
    assert fetched.returncode == 0, fetched.stdout
    assert (seed / SQLITE).is_file() and not list(seed.glob(".*"))
    assert hashlib.sha256((seed / SQLITE).read_bytes()).hexdigest() == SQLITE_SHA256
    assert fault_server.count(f"/{SQLITE}") == 1

    # offline with an empty cache: a clear error naming the file and the fix
    offline = dict(env_for(tmp_path / "cache2", ""), GEONOX_OFFLINE="1")
    missing = run(
        [sys.executable, "-m", "geonox", "fetch", "--project", proj], cwd=proj, env=offline
    )
    assert missing.returncode == 2
    assert SQLITE in missing.stdout and "python -m geonox fetch" in missing.stdout
    assert "Traceback" not in missing.stdout
    # the seeded directory serves as an air-gapped mirror
    offline["GEONOX_MIRROR"] = str(seed)
    ok = run([sys.executable, "-m", "geonox", "fetch", "--project", proj], cwd=proj, env=offline)
    assert ok.returncode == 0, ok.stdout
    assert fault_server.count(f"/{SQLITE}") == 1


def test_cache_list_prune_clear(tmp_path, fault_server):  # noqa: F811
    proj = project(tmp_path)
    cache = tmp_path / "cache"
    env = env_for(cache, fault_server.base)
    assert (
        run(
            [sys.executable, "-m", "geonox", "fetch", "--project", proj], cwd=proj, env=env
        ).returncode
        == 0
    )
    stray = cache / "sources" / ("0" * 64)
    stray.mkdir(parents=True)
    (stray / "old-1.0.tar.gz").write_bytes(b"x" * 10)
    long_ago = time.time() - 40 * 86400
    os.utime(stray / "old-1.0.tar.gz", (long_ago, long_ago))
    listing = run([sys.executable, "-m", "geonox", "cache", "list"], cwd=proj, env=env)
    assert listing.returncode == 0, listing.stdout
    assert re.search(
        rf"source .* used just now +{SQLITE} \(sha256 {SQLITE_SHA256[:12]}", listing.stdout
    ), listing.stdout
    assert re.search(r"source .* used 40 d ago +old-1.0.tar.gz", listing.stdout), listing.stdout
    pruned = run([sys.executable, "-m", "geonox", "cache", "prune"], cwd=proj, env=env)
    assert pruned.returncode == 0 and "old-1.0.tar.gz" in pruned.stdout
    assert "1 entries removed, 10 B freed" in pruned.stdout, pruned.stdout
    assert not stray.exists()
    assert files_named(cache, SQLITE)
    cleared = run([sys.executable, "-m", "geonox", "cache", "clear"], cwd=proj, env=env)
    assert cleared.returncode == 0 and "freed" in cleared.stdout
    assert files_named(cache, SQLITE) == []
