"""The remote dependency cache in a real OCI registry (Debian's docker-registry, the
distribution registry, on 127.0.0.1 -- started here with storage of its own, so a test can
tamper with a blob on its disk): cache A builds and pushes, cache B at another path pulls,
relocates and builds the example without compiling a dependency; a tampered blob is refused
and built locally; a registry that refuses pushes does not fail the build."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import uuid
from pathlib import Path

import pytest
from conftest import REPO, make_project, nox, run, sqlite_project
from registry_server import Registry

EXAMPLE = REPO / "examples" / "geodemo"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    reg = Registry(tmp_path_factory.mktemp("registry"))
    yield reg
    reg.stop()


def env_for(base: dict, cache: Path, **extra: str) -> dict:
    env = {k: v for k, v in base.items() if not k.startswith("GEONOX_CACHE_")}
    return dict(env, GEONOX_CACHE_DIR=str(cache), **extra)


def test_sqlite_pushed_from_one_cache_is_pulled_relocated_into_another(
    tmp_path, geonox_env, registry
):
    repo = f"geonox-cache-{uuid.uuid4().hex[:8]}"
    project = sqlite_project(tmp_path / "p")
    a, b = tmp_path / "a" / "cache", tmp_path / "elsewhere" / "b-cache"
    built = nox(
        "-s",
        "deps-x86_64",
        cwd=project,
        env=env_for(geonox_env, a, GEONOX_CACHE_REMOTE=registry.url(repo), GEONOX_CACHE_PUSH="1"),
    )
    assert built.returncode == 0, built.stdout[-3000:]
    assert "has no sqlite 3.52.0 (static)" in built.stdout  # looked there first
    pushed = re.search(
        r"pushed sqlite 3\.52\.0 \(static\) \[([0-9a-f]{16})\] to (\S+)", built.stdout
    )
    assert pushed, built.stdout[-3000:]
    key = pushed.group(1)
    (art_a,) = a.glob(f"deps/sqlite-3.52.0-x86_64-{key}")
    manifest = registry.manifest(repo, art_a.name)
    assert manifest["artifactType"] == "application/vnd.geonox.dep.v1"
    assert manifest["annotations"]["dev.geonox.key"] == key
    # B pulls it: no compile, and its files name B's cache, not A's
    pulled = nox(
        "-s",
        "deps-x86_64",
        cwd=project,
        env=env_for(geonox_env, b, GEONOX_CACHE_REMOTE=registry.url(repo)),
    )
    assert pulled.returncode == 0, pulled.stdout[-3000:]
    assert (
        f"pulled sqlite 3.52.0 (static) [{key}] from 127.0.0.1:{registry.port}/{repo}"
        in pulled.stdout
    )
    assert "building" not in pulled.stdout and "built in" not in pulled.stdout, pulled.stdout[
        -3000:
    ]
    art_b = b / "deps" / art_a.name
    marker = json.loads((art_b / "geonox-dep.json").read_text())
    assert marker["key"] == key and marker["pulled"].endswith(art_a.name)
    files = sorted(str(p.relative_to(art_a)) for p in art_a.rglob("*"))
    assert sorted(str(p.relative_to(art_b)) for p in art_b.rglob("*")) == files
    assert (art_b / "lib" / "libsqlite3.a").read_bytes() == (
        art_a / "lib" / "libsqlite3.a"
    ).read_bytes()
    # the pulled artifact records its own files' sha256 (as a built one does), so a later
    # change in B's cache is caught; what was pushed carries none of A's
    assert set(marker["contents"]) == set(
        json.loads((art_a / "geonox-dep.json").read_text())["contents"]
    )
    assert (
        marker["contents"]["lib/libsqlite3.a"]
        == hashlib.sha256((art_b / "lib" / "libsqlite3.a").read_bytes()).hexdigest()
    )
    config = json.loads(registry.blob(manifest["config"]["digest"]).read_bytes())
    assert config["key"] == key and "contents" not in config["artifact"]
    # (SQLite's files name no path; PROJ's CMake files name SQLite's: the example's test
    # below checks that those are rewritten to the puller's cache)


def test_a_tampered_blob_is_refused_and_built_here(tmp_path, geonox_env, registry):
    repo = f"geonox-cache-{uuid.uuid4().hex[:8]}"
    project = sqlite_project(tmp_path / "p")
    a, b = tmp_path / "a", tmp_path / "b"
    built = nox(
        "-s",
        "deps-x86_64",
        cwd=project,
        env=env_for(geonox_env, a, GEONOX_CACHE_REMOTE=registry.url(repo), GEONOX_CACHE_PUSH="1"),
    )
    assert built.returncode == 0 and "pushed sqlite" in built.stdout, built.stdout[-3000:]
    (art,) = a.glob("deps/sqlite-3.52.0-x86_64-*[0-9a-f]")
    (layer,) = registry.manifest(repo, art.name)["layers"]
    blob = registry.blob(layer["digest"])
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the compressed tar
    blob.write_bytes(bytes(data))
    again = nox(
        "-s",
        "deps-x86_64",
        cwd=project,
        env=env_for(geonox_env, b, GEONOX_CACHE_REMOTE=registry.url(repo)),
    )
    out = again.stdout
    assert again.returncode == 0, out[-3000:]
    assert re.search(
        r"warning: not using \S+ for sqlite 3\.52\.0 \(static\): blob sha256:\S+ arrived as "
        r"sha256:\S+ \(digest mismatch\): refused; building it here",
        out,
    ), out[-3000:]
    assert "sqlite 3.52.0 (static) built in" in out
    marker = json.loads((b / "deps" / art.name / "geonox-dep.json").read_text())
    assert "pulled" not in marker  # built here, not half-pulled
    assert not [p for p in (b / "deps").iterdir() if ".part" in p.name or p.name.startswith(".")]


def test_a_registry_that_refuses_pushes_does_not_fail_the_build(tmp_path, geonox_env):
    readonly = Registry(tmp_path / "ro-registry", readonly=True)
    try:
        project = sqlite_project(tmp_path / "p")
        done = nox(
            "-s",
            "deps-x86_64",
            cwd=project,
            env=env_for(
                geonox_env,
                tmp_path / "cache",
                GEONOX_CACHE_REMOTE=readonly.url("geonox-cache"),
                GEONOX_CACHE_PUSH="1",
            ),
        )
    finally:
        readonly.stop()
    assert done.returncode == 0, done.stdout[-3000:]
    assert re.search(
        r"warning: could not push sqlite 3\.52\.0 \(static\) to 127\.0\.0\.1:\d+/geonox-cache: "
        r"127\.0\.0\.1:\d+ answered HTTP (405|503)",
        done.stdout,
    ), done.stdout[-3000:]
    # an unreachable remote: a warning, and the build goes on
    gone = nox(
        "-s",
        "deps-x86_64",
        cwd=project,
        env=env_for(
            geonox_env,
            tmp_path / "cache2",
            GEONOX_CACHE_REMOTE=f"oci://127.0.0.1:{readonly.port}/x",
        ),
    )
    assert gone.returncode == 0, gone.stdout[-3000:]
    assert "did not answer" in gone.stdout and "sqlite 3.52.0 (static) built in" in gone.stdout


HELPER = """\
#!/bin/sh
# docker-credential-geonoxtest: the credential helper protocol (docker's, as
# docker-credential-pass or -secretservice speak it) answering from this file
[ "$1" = get ] || exit 1
read server
echo "$server" >> "$(dirname "$0")/asked"
printf '{"ServerURL":"%s","Username":"ci","Secret":"%s"}' "$server" "$(cat "$(dirname "$0")/secret")"
"""


def test_a_registry_with_a_login_gets_the_credentials_docker_would_use(tmp_path, geonox_env):
    """A registry that wants a login (htpasswd, basic auth): with none, the push is a warning
    naming the fix and the build goes on; with docker login's ``auths`` entry it is pushed;
    with a credential helper for that registry (``credHelpers``, asked through the helper
    protocol) another cache pulls it; a helper's wrong secret is refused, and built here."""
    import base64

    import bcrypt

    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("ci:" + bcrypt.hashpw(b"sesame", bcrypt.gensalt(rounds=4)).decode() + "\n")
    reg = Registry(tmp_path / "auth-registry", htpasswd=htpasswd)
    host = f"127.0.0.1:{reg.port}"
    helpers = tmp_path / "bin"
    helpers.mkdir()
    (helpers / "docker-credential-geonoxtest").write_text(HELPER)
    (helpers / "docker-credential-geonoxtest").chmod(0o755)
    project = sqlite_project(tmp_path / "p")

    def deps(name: str, docker_config: dict, push: bool = False) -> str:
        where = tmp_path / f"docker-{name}"
        where.mkdir()
        (where / "config.json").write_text(json.dumps(docker_config))
        env = env_for(
            geonox_env,
            tmp_path / f"cache-{name}",
            GEONOX_CACHE_REMOTE=reg.url("team/cache"),
            DOCKER_CONFIG=str(where),
            PATH=f"{helpers}:{geonox_env['PATH']}",
        )
        if push:
            env["GEONOX_CACHE_PUSH"] = "1"
        done = nox("-s", "deps-x86_64", cwd=project, env=env)
        assert done.returncode == 0, done.stdout[-3000:]
        return " ".join(done.stdout.split())

    try:
        out = deps("none", {}, push=True)
        assert (
            f"could not push sqlite 3.52.0 (static) to {host}/team/cache: {host} wants a login "
            f"(docker login {host})" in out
        ), out[-3000:]
        login = base64.b64encode(b"ci:sesame").decode()
        out = deps("auths", {"auths": {host: {"auth": login}}}, push=True)
        assert "pushed sqlite 3.52.0 (static)" in out, out[-3000:]
        (helpers / "secret").write_text("sesame")
        out = deps("helper", {"auths": {host: {}}, "credHelpers": {host: "geonoxtest"}})
        assert "pulled sqlite 3.52.0 (static)" in out and " built in " not in out, out[-3000:]
        assert (helpers / "asked").read_text().split() == [host]
        (helpers / "secret").write_text("wrong")
        out = deps("wrong", {"credsStore": "geonoxtest"})
        assert (
            f"{host} refused the credentials" in out and "sqlite 3.52.0 (static) built in" in out
        ), out[-3000:]
    finally:
        reg.stop()


def test_the_examples_prefix_from_the_registry_builds_and_tests_the_example(
    tmp_path, no_engine_env, registry, main_job
):
    """The acceptance path: the main job's x86_64 prefix (cache A, the session's) pushed by
    hand; a copy of the example with a fresh cache at another path pulls every artifact,
    compiles no dependency, and its wheel is built, repaired, verified and tested."""
    result, _ = main_job
    assert result.returncode == 0, result.stdout[-3000:]
    repo = f"geonox-cache-{uuid.uuid4().hex[:8]}"
    remote = registry.url(repo)
    # the main job's machine: no container engine, so the example builds with zig
    geonox_env = no_engine_env
    pushed = run(
        [sys.executable, "-m", "geonox", "cache", "push", "--project", EXAMPLE],
        cwd=REPO,
        env=dict(geonox_env, GEONOX_CACHE_REMOTE=remote),
    )
    assert pushed.returncode == 0, pushed.stdout
    assert len(re.findall(r"x86_64: pushed (sqlite|geos|proj) ", pushed.stdout)) == 3, pushed.stdout
    project = make_project(
        tmp_path,
        EXAMPLE,
        """\
        [tool.geonox]
        archs = ["x86_64"]
        python = ["3.12"]
        test-command = "python -c 'import geodemo; geodemo.selftest()'"
        [tool.geonox.versions]
        proj = "9.1.1"
        geos = "3.13.1"
        sqlite = "3.52.0"
        """,
        name="elsewhere",
    )
    cache_b = tmp_path / "b" / "cache"
    done = nox(
        "-s",
        "geo-wheels-x86_64",
        cwd=project,
        env=env_for(
            geonox_env, cache_b, GEONOX_CACHE_REMOTE=remote, CCACHE_DIR=str(tmp_path / "ccache-b")
        ),
    )
    out = done.stdout
    assert done.returncode == 0, out[-5000:]
    assert (
        len(re.findall(r"geo-deps-x86_64: pulled (sqlite|geos|proj) \S+ \(static\)", out)) == 3
    ), out[-3000:]
    assert "building" not in out.split("geo-build-x86_64")[0] and " built in " not in out, out[
        -3000:
    ]
    assert "geodemo 0.1.0 OK: PROJ 9.1.1, GEOS 3.13.1" in out
    assert "Session geo-ldd-x86_64-3.12 was successful" in out  # verify passed
    cache_a = Path(geonox_env["GEONOX_CACHE_DIR"])
    for path in (cache_b / "deps").rglob("*"):
        if path.is_file() and not path.is_symlink() and path.stat().st_size < 4 << 20:
            assert str(cache_a).encode() not in path.read_bytes(), path


def test_cache_remote_is_checked_where_it_is_set(tmp_path):
    """A remote that is not an OCI repository URL is one line naming the key, the value and
    the form; loopback registries are plain HTTP, others HTTPS unless oci+http says so."""
    from geonox import load_config
    from geonox.errors import ConfigError
    from geonox.remote import RemoteSpec

    project = sqlite_project(tmp_path / "p", 'cache-remote = "https://ghcr.io/org/cache"\n')
    with pytest.raises(ConfigError) as err:
        load_config(project)
    assert "cache-remote = 'https://ghcr.io/org/cache' is not an OCI repository URL" in str(
        err.value
    )
    assert "oci://<registry>/<repository>" in str(err.value) and "\n" not in str(err.value)
    env = dict(
        os.environ, GEONOX_CACHE_REMOTE="oci://127.0.0.1:5000/team/cache", GEONOX_CACHE_PUSH="yes"
    )
    config = load_config(sqlite_project(tmp_path / "q"), environ=env)
    assert config.cache_remote == RemoteSpec(
        "oci://127.0.0.1:5000/team/cache", "http", "127.0.0.1:5000", "team/cache"
    )
    assert config.cache_push is True
    assert RemoteSpec.parse("oci://ghcr.io/org/cache").scheme == "https"
    assert RemoteSpec.parse("oci+http://registry.lan:5000/cache").scheme == "http"


@pytest.mark.parametrize("backend", ["host", "zig"])
def test_keys_hold_no_cache_path(tmp_path, geonox_env, backend):
    """The same project planned from two caches at different paths has the same keys (a
    zig toolchain lives in the cache, and its files are in the build commands), so a remote
    artifact is found whatever path the puller's cache has."""
    project = make_project(
        tmp_path,
        EXAMPLE,
        f"""\
        [tool.geonox]
        backend = "{backend}"
        archs = ["x86_64"]
        python = ["3.12"]
        [tool.geonox.versions]
        proj = "9.1.1"
        geos = "3.13.1"
        sqlite = "3.52.0"
        """,
    )
    keys = []
    for cache in (tmp_path / "one", tmp_path / "deeper" / "two"):
        planned = run(
            [sys.executable, "-m", "geonox", "plan", "--json", "--project", project],
            cwd=tmp_path,
            env=env_for(geonox_env, cache),
        )
        assert planned.returncode == 0, planned.stdout
        (target,) = json.loads(planned.stdout)["targets"]
        keys.append([target["prefix_key"], *(a["key"] for a in target["artifacts"])])
        assert str(cache) in target["prefix"]
    assert keys[0] == keys[1]
    # nor the interpreter running geonox (nox's PEP 723 environment is another Python; zig's
    # wrappers are written per interpreter, in a directory named after it)
    # (a bare venv that imports geonox and its dependencies from this interpreter's paths)
    import site

    venv = tmp_path / "other-python"
    assert (
        run(
            [sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path, env=geonox_env
        ).returncode
        == 0
    )
    paths = ":".join([str(REPO), *site.getsitepackages()])
    planned = run(
        [venv / "bin" / "python", "-m", "geonox", "plan", "--json", "--project", project],
        cwd=tmp_path,
        env=dict(env_for(geonox_env, tmp_path / "one"), PYTHONPATH=paths),
    )
    assert planned.returncode == 0, planned.stdout
    (target,) = json.loads(planned.stdout)["targets"]
    assert [target["prefix_key"], *(a["key"] for a in target["artifacts"])] == keys[0]


def test_cache_check_finds_the_main_jobs_artifacts_reproducible_and_a_poisoned_one_not(
    tmp_path, no_engine_env, registry, main_job
):
    """``cache check`` against a real registry.  The main job's artifacts (cache A, built
    through ccache) pushed; checked from a fresh cache at another path through the
    session's ccache, so each of SQLite, GEOS and PROJ is configured, linked and installed
    anew there (zig): every file is the same bytes as the store's, and no binary of them
    names cache A (an object with its path in would pass the check through ccache).
    Compiled anew with ccache off this costs both cores about five minutes of the suite:
    test_reproducible does that for SQLite on the host, zig and the container, and stops
    31 and 32 measured it for GEOS and PROJ (the same bytes).  Then a poisoned GEOS pushed
    by another cache under the same tag (one byte of ``libgeos.a`` changed, its record and
    digests consistent, as a pusher with a token could): check names it and the file, and
    exits 1."""
    from test_reproducible import names_no_root

    from geonox.cache import DEP_MARKER, FILES, text_bytes, tree_digests

    result, _ = main_job
    assert result.returncode == 0, result.stdout[-3000:]
    repo = f"geonox-check-{uuid.uuid4().hex[:8]}"
    remote = registry.url(repo)
    pushed = run(
        [sys.executable, "-m", "geonox", "cache", "push", "--project", EXAMPLE],
        cwd=REPO,
        env=dict(no_engine_env, GEONOX_CACHE_REMOTE=remote),
    )
    assert pushed.returncode == 0, pushed.stdout
    cache_c = tmp_path / "elsewhere" / "deeper" / "cache"
    check = [
        sys.executable,
        "-m",
        "geonox",
        "cache",
        "check",
        "--project",
        EXAMPLE,
        "--arch",
        "x86_64",
    ]
    clean = run(
        check,
        cwd=REPO,
        env=env_for(no_engine_env, cache_c, GEONOX_CACHE_REMOTE=remote),
    )
    out = clean.stdout
    assert clean.returncode == 0, out[-5000:]
    for name in ("sqlite", "geos", "proj"):
        assert re.search(rf"x86_64: building {name} \S+ \(static\)", out), out[-3000:]
        assert re.search(rf"{name} \S+ \(static\) \[\w+\] in \S+ is what a build here makes", out)
    assert "check: 3 the same, 0 different, 0 unreadable, 0 not in" in out, out[-2000:]
    cache_a = Path(no_engine_env["GEONOX_CACHE_DIR"])
    checked = [
        d for d in (cache_a / "deps").glob("*-x86_64-*") if d.is_dir() and d.name in pushed.stdout
    ]
    assert {d.name.split("-")[0] for d in checked} == {"sqlite", "geos", "proj"}, checked
    for artifact in checked:
        for path in (p for p in artifact.rglob("*") if p.is_file() and not p.is_symlink()):
            if text_bytes(path) is None:
                names_no_root(path.read_bytes(), path, cache_a)
    # nothing of the check is left in C but what it needed (sources, tools, logs)
    assert not list((cache_c / "deps").glob("geos-*"))
    assert not [p for p in cache_c.glob("tmp/check-*") if p.is_dir()]  # its lock file stays

    # another cache pushes a GEOS with one byte changed under the same tag
    (geos_a,) = [d for d in checked if d.name.startswith("geos-3.13.1-")]
    cache_d = tmp_path / "attacker" / "cache"
    geos_d = cache_d / "deps" / geos_a.name
    shutil.copytree(geos_a, geos_d, symlinks=True)
    lib = geos_d / "lib" / "libgeos.a"
    data = bytearray(lib.read_bytes())
    data[len(data) // 2] ^= 0x01
    lib.write_bytes(bytes(data))
    marker = json.loads((geos_d / DEP_MARKER).read_text())
    marker[FILES] = tree_digests(geos_d, skip=frozenset({DEP_MARKER}))
    (geos_d / DEP_MARKER).write_text(json.dumps(marker))
    poisoned = run(
        [sys.executable, "-m", "geonox", "cache", "push", "--project", EXAMPLE],
        cwd=REPO,
        env=env_for(no_engine_env, cache_d, GEONOX_CACHE_REMOTE=remote),
    )
    assert poisoned.returncode == 0 and "pushed geos 3.13.1" in poisoned.stdout, poisoned.stdout
    # checked with the session's ccache: GEOS is rebuilt from its hits, in seconds
    caught = run(
        [*check, "geos"], cwd=REPO, env=env_for(no_engine_env, cache_c, GEONOX_CACHE_REMOTE=remote)
    )
    assert caught.returncode == 1, caught.stdout[-3000:]
    assert "building sqlite" not in caught.stdout and "building proj" not in caught.stdout
    (error,) = [line for line in caught.stdout.splitlines() if line.startswith("error:")]
    assert f"geos 3.13.1 (static) [{geos_a.name.rsplit('-', 1)[1]}]" in error, error
    assert "is not what a build here makes from the same inputs: lib/libgeos.a changed" in error
    assert geos_a.name in error  # the tag to delete
    assert "Traceback" not in caught.stdout
    assert "check: 0 the same, 1 different" in caught.stdout
