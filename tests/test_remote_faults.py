"""The remote cache under faults: the real registry (Debian's docker-registry on loopback)
behind a proxy that injects them (fault_proxy.FaultProxy).  For each fault the deps step
ends with a working prefix, at most one warning line, nothing corrupt in the local cache
(``cache verify``) and nothing corrupt in the registry (its blobs still match their
digests).  The project is the SQLite one (one library artifact, compiled through the
session's ccache: the builds here are quick)."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import sys
import time
import uuid
from pathlib import Path

import pytest
from conftest import make_project, nox, repacked_sqlite, run, sqlite_project
from fault_proxy import FaultProxy, Rule
from registry_server import Registry, upload_blob

from geonox.targets import host_arch

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "geodemo"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    reg = Registry(tmp_path_factory.mktemp("registry"))
    yield reg
    reg.stop()


@pytest.fixture
def proxy(registry):
    p = FaultProxy(registry.address)
    yield p
    p.stop()


@pytest.fixture(scope="module")
def seeded(registry, geonox_env, tmp_path_factory):
    """A repository holding the SQLite artifact, pushed straight to the registry."""
    root = tmp_path_factory.mktemp("seed")
    repo = f"faults-{uuid.uuid4().hex[:8]}"
    project = sqlite_project(root / "p")
    done = nox("-s", f"deps-{host_arch()}", cwd=project, env=_env(geonox_env, root / "cache",
               GEONOX_CACHE_REMOTE=registry.url(repo), GEONOX_CACHE_PUSH="1"))  # fmt: skip
    assert done.returncode == 0 and "pushed sqlite" in done.stdout, done.stdout[-3000:]
    return repo, project


def _env(base: dict, cache: Path, **extra: str) -> dict:
    env = {k: v for k, v in base.items() if not k.startswith("GEONOX_CACHE_")}
    return dict(env, GEONOX_CACHE_DIR=str(cache), **extra)


def deps(project: Path, env: dict) -> tuple[str, float]:
    t0 = time.monotonic()
    done = nox("-s", f"deps-{host_arch()}", cwd=project, env=env)
    took = time.monotonic() - t0
    assert done.returncode == 0, done.stdout[-3000:]
    return " ".join(done.stdout.split()), took


def warnings(out: str) -> list[str]:
    return re.findall(r"warning: (.*?)(?= nox > |$)", out)


def clean(env: dict, tmp_path: Path) -> None:
    verified = run([sys.executable, "-m", "geonox", "cache", "verify"], cwd=tmp_path, env=env)
    assert verified.returncode == 0, verified.stdout


def registry_intact(registry: Registry, repo: str) -> None:
    """Every blob the repository's manifests name is on the registry's disk with its digest."""
    import requests

    tags = requests.get(f"http://{registry.address}/v2/{repo}/tags/list", timeout=10).json()
    for tag in tags.get("tags") or []:
        manifest = registry.manifest(repo, tag)
        for desc in [manifest["config"], *manifest["layers"]]:
            data = registry.blob(desc["digest"]).read_bytes()
            assert "sha256:" + hashlib.sha256(data).hexdigest() == desc["digest"], (tag, desc)


def test_503s_with_and_without_retry_after_are_retried_and_the_artifact_pulled(
    seeded, proxy, registry, geonox_env, tmp_path
):
    repo, project = seeded
    proxy.add(
        Rule("GET", r"/manifests/", "status", 503, {"Retry-After": "1"}),
        Rule("GET", r"/blobs/", "status", 503),
    )
    env = _env(geonox_env, tmp_path / "cache", GEONOX_CACHE_REMOTE=proxy.url(repo))
    out, _ = deps(project, env)
    assert "pulled sqlite 3.52.0 (static)" in out and "building sqlite" not in out, out[-2000:]
    assert warnings(out) == [], out[-2000:]
    assert proxy.count("GET", r"/manifests/") == 2 and proxy.count("GET", r"/blobs/") >= 3
    clean(env, tmp_path)
    registry_intact(registry, repo)


def test_a_blob_cut_mid_transfer_is_fetched_again(seeded, proxy, registry, geonox_env, tmp_path):
    repo, project = seeded
    proxy.add(Rule("GET", r"/blobs/", "cut", cut_after=300))
    env = _env(geonox_env, tmp_path / "cache", GEONOX_CACHE_REMOTE=proxy.url(repo))
    out, _ = deps(project, env)
    assert "pulled sqlite 3.52.0 (static)" in out and warnings(out) == [], out[-2000:]
    clean(env, tmp_path)


def test_a_blob_cut_every_time_is_built_here_with_one_warning(
    seeded, proxy, registry, geonox_env, tmp_path
):
    repo, project = seeded
    proxy.add(Rule("GET", r"/blobs/", "cut", cut_after=300, times=None))
    env = _env(geonox_env, tmp_path / "cache", GEONOX_CACHE_REMOTE=proxy.url(repo))
    out, _ = deps(project, env)
    (warned,) = warnings(out)
    assert "short twice" in warned and "building it here" in warned, warned
    assert "building sqlite 3.52.0 (static)" in out, out[-2000:]
    clean(env, tmp_path)
    registry_intact(registry, repo)


def test_a_blob_that_does_not_match_its_digest_is_refused(
    seeded, proxy, registry, geonox_env, tmp_path
):
    repo, project = seeded
    proxy.add(Rule("GET", r"/blobs/", "corrupt", times=None))
    env = _env(geonox_env, tmp_path / "cache", GEONOX_CACHE_REMOTE=proxy.url(repo))
    out, _ = deps(project, env)
    (warned,) = warnings(out)
    assert "digest mismatch" in warned, warned
    assert "building sqlite 3.52.0 (static)" in out, out[-2000:]
    clean(env, tmp_path)
    registry_intact(registry, repo)


def test_an_expired_token_is_renewed_mid_run(seeded, proxy, geonox_env, tmp_path):
    """The manifest answered 401 with a Bearer challenge (a token that expired): geonox asks
    the realm for a token and sends the request again with it."""
    repo, project = seeded
    realm = f'Bearer realm="http://{proxy.address}/token",service="test"'
    proxy.add(Rule("GET", r"/manifests/", "status", 401, {"WWW-Authenticate": realm}))
    env = _env(geonox_env, tmp_path / "cache", GEONOX_CACHE_REMOTE=proxy.url(repo))
    out, _ = deps(project, env)
    assert "pulled sqlite 3.52.0 (static)" in out and warnings(out) == [], out[-2000:]
    assert proxy.count("GET", r"^/token") == 1
    assert "Bearer geonox-test-token" in proxy.authorizations


def _push_env(base: dict, cache: Path, url: str) -> dict:
    return _env(base, cache, GEONOX_CACHE_REMOTE=url, GEONOX_CACHE_PUSH="1")


def _fresh_sqlite(tmp_path: Path, mirror: Path) -> Path:
    """A SQLite artifact no registry holds: another archive of the mirror's source."""
    archive, sha = repacked_sqlite(mirror, tmp_path / "src", time.time_ns() // 10**9)
    return sqlite_project(
        tmp_path / "p",
        f'[tool.geonox.sources.sqlite]\nversion = "3.52.0"\nurl = "{archive.as_uri()}"\n'
        f'sha256 = "{sha}"\n',
    )


@pytest.mark.parametrize("status", [403, 413, 507])
def test_a_refused_push_is_one_line_and_the_build_goes_on(
    status, proxy, registry, geonox_env, mirror, tmp_path
):
    """403: a token that may pull but not push; 413/507: a registry that refuses the size
    or is full.  The artifact is built and used; the push is skipped with one line."""
    repo = f"faults-{uuid.uuid4().hex[:8]}"
    project = _fresh_sqlite(tmp_path, mirror)
    proxy.add(Rule("*", r"/blobs/uploads/", "status", status, times=None))
    env = _push_env(geonox_env, tmp_path / "cache", proxy.url(repo))
    out, _ = deps(project, env)
    (warned,) = warnings(out)
    assert f"not pushing to {proxy.address}/{repo}: it refused a push (HTTP {status}" in warned
    assert "building sqlite 3.52.0 (static)" in out and "pushed" not in out, out[-2000:]
    clean(env, tmp_path)


def test_a_push_cut_mid_upload_is_started_again(proxy, registry, geonox_env, mirror, tmp_path):
    repo = f"faults-{uuid.uuid4().hex[:8]}"
    project = _fresh_sqlite(tmp_path, mirror)
    proxy.add(Rule("PUT", r"/blobs/uploads/", "drop"))
    env = _push_env(geonox_env, tmp_path / "cache", proxy.url(repo))
    out, _ = deps(project, env)
    assert "pushed sqlite 3.52.0 (static)" in out and warnings(out) == [], out[-2000:]
    assert proxy.count("PUT", r"/blobs/uploads/") >= 2
    registry_intact(registry, repo)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_registry_that_is_down_costs_nothing_but_one_line(seeded, geonox_env, tmp_path):
    _, project = seeded
    url = f"oci://127.0.0.1:{_closed_port()}/faults"
    env = _push_env(geonox_env, tmp_path / "cache", url)
    out, _ = deps(project, env)
    (warned,) = warnings(out)  # the pull; the push after the build is not tried
    assert "not using" in warned and "in this run" in warned, warned
    assert "did not answer (NewConnectionError)" in warned, warned
    assert "building sqlite 3.52.0 (static)" in out, out[-2000:]
    # a name that does not resolve
    env = _push_env(geonox_env, tmp_path / "cache2", "oci://geonox-no-such-host.invalid/faults")
    out, _ = deps(project, env)
    assert len(warnings(out)) == 1 and "building sqlite" in out, out[-2000:]


def test_a_silent_registry_costs_one_read_timeout_per_run_not_per_artifact(
    proxy, geonox_env, tmp_path
):
    """The example's three library artifacts pulled from a registry that accepts the
    connection and never answers: one read timeout (GEONOX_TIMEOUT=3 here; 15 s by
    default), then the other artifacts are not asked for."""
    proxy.add(Rule("*", r".", "silent", times=None))
    project = make_project(tmp_path, EXAMPLE, '[tool.geonox]\npython = ["3.12"]\n')
    env = _env(geonox_env, tmp_path / "cache", GEONOX_CACHE_REMOTE=proxy.url("faults"),
               GEONOX_TIMEOUT="3", GEONOX_DOCKER="/nonexistent/docker",
               GEONOX_PODMAN="/nonexistent/podman")  # fmt: skip
    t0 = time.monotonic()
    pulled = run(
        [sys.executable, "-m", "geonox", "cache", "pull", "--project", project],
        cwd=tmp_path,
        env=env,
    )
    took = time.monotonic() - t0
    assert pulled.returncode == 1, pulled.stdout
    assert pulled.stdout.count("not tried:") == 2, pulled.stdout
    assert "did not answer (ReadTimeoutError)" in pulled.stdout, pulled.stdout
    assert len(proxy.requests) == 1, proxy.requests
    assert took < 30, took


def test_two_caches_pushing_the_same_artifact_at_once(registry, geonox_env, mirror, tmp_path):
    """Two runners that built the same artifact push it at the same moment: both succeed,
    the registry holds one intact artifact, and a third cache pulls it."""
    import shutil
    import subprocess

    repo = f"faults-{uuid.uuid4().hex[:8]}"
    project = _fresh_sqlite(tmp_path, mirror)
    a, b = tmp_path / "a", tmp_path / "b"
    deps(project, _env(geonox_env, a))
    shutil.copytree(a, b, symlinks=True)
    argv = [sys.executable, "-m", "geonox", "cache", "push", "--project", str(project)]
    pushes = [
        subprocess.Popen(
            argv,
            cwd=tmp_path,
            env=_push_env(geonox_env, cache, registry.url(repo)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for cache in (a, b)
    ]
    outs = [p.communicate(timeout=300)[0] for p in pushes]
    assert [p.returncode for p in pushes] == [0, 0], outs
    assert all("pushed sqlite 3.52.0 (static)" in out for out in outs), outs
    registry_intact(registry, repo)
    out, _ = deps(project, _env(geonox_env, tmp_path / "c", GEONOX_CACHE_REMOTE=registry.url(repo)))
    assert "pulled sqlite 3.52.0 (static)" in out and warnings(out) == [], out[-2000:]


@pytest.mark.parametrize("lie", ["another key", "another arch"])
def test_a_manifest_whose_config_names_another_key_or_arch_is_refused(
    seeded, registry, geonox_env, tmp_path, lie
):
    """The seeded SQLite artifact copied to another repository under its own tag, its
    layer intact but its config naming another key (or, key kept, another arch: what a
    mix-up of two runners' pushes would give): refused before its layer is used, one
    warning, built here, nothing of it kept."""
    import requests

    repo, project = seeded
    other = f"lies-{uuid.uuid4().hex[:8]}"
    base = f"http://{registry.address}/v2"
    (tag,) = requests.get(f"{base}/{repo}/tags/list", timeout=10).json()["tags"]
    manifest = registry.manifest(repo, tag)
    config = json.loads(registry.blob(manifest["config"]["digest"]).read_bytes())
    if lie == "another key":
        config["key"] = "0123456789abcdef"
    else:
        assert config["artifact"]["arch"] == host_arch()
        config["artifact"]["arch"] = "aarch64" if host_arch() != "aarch64" else "x86_64"
    session = requests.Session()
    layer = registry.blob(manifest["layers"][0]["digest"]).read_bytes()
    upload_blob(session, registry.address, other, layer)
    manifest["config"].update(
        upload_blob(session, registry.address, other, json.dumps(config).encode())
    )
    put = session.put(
        f"{base}/{other}/manifests/{tag}",
        data=json.dumps(manifest).encode(),
        timeout=30,
        headers={"Content-Type": manifest["mediaType"]},
    )
    assert put.status_code == 201, put.text
    env = _env(geonox_env, tmp_path / "cache", GEONOX_CACHE_REMOTE=registry.url(other))
    out, _ = deps(project, env)
    (warning,) = warnings(out)
    assert "was made from other inputs than this build's key says" in warning, warning
    assert "building sqlite 3.52.0 (static)" in out and "pulled sqlite" not in out, out[-2000:]
    clean(env, tmp_path)
