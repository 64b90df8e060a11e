"""The docker backend against a real engine, a real local registry and stand-in manylinux
images (Debian bullseye from debootstrap, laid out like manylinux: no public registry is
reachable here; see tests/standin.py), and a musllinux stand-in on top of the x86_64 one
(musl 1.2.5 laid out as Alpine has it, the musl CPython 3.13.5 alone in /opt/python).
Images are pinned through the same code users run (`python -m geonox pin`)."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import urllib.request
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import requests
import standin
from conftest import (
    REPO,
    ccache_counters,
    grafted_once,
    make_project,
    nox,
    pypi_sdist,
    run,
    shapely_noxfile,
    skip_or_fail,
    suite_results,
    twomod_noxfile,
    verify_errors,
)

import geonox.cores
from geonox.errors import UserError
from geonox.images import ImageLock, pinned_image, resolve_digest
from geonox.recipes import geos as geos_recipe
from geonox.targets import Target

pytestmark = pytest.mark.containers
EXAMPLE = REPO / "examples" / "geodemo"
SQLEXT = REPO / "tests" / "data" / "sqlext"


@pytest.fixture(scope="session")
def infra():
    try:
        standin.ensure_infra()
    except RuntimeError as exc:
        skip_or_fail(str(exc))


@pytest.fixture(scope="session")
def image_x86(infra) -> str:
    return standin.standin_image("x86_64")


@pytest.fixture(scope="session")
def image_arm(infra) -> str:
    return standin.standin_image("aarch64")


def registry_digest(ref: str) -> str:
    """The digest the registry reports for a tag, asked directly (not through geonox)."""
    rest = ref.split("/", 1)[1]
    name, tag = rest.rsplit(":", 1)
    resp = requests.head(
        f"http://{standin.REGISTRY}/v2/{name}/manifests/{tag}",
        headers={
            "Accept": "application/vnd.docker.distribution.manifest.v2+json, "
            "application/vnd.oci.image.manifest.v1+json"
        },
        timeout=30,
    )
    resp.raise_for_status()
    return resp.headers["Docker-Content-Digest"]


def pin(project: Path, env: dict) -> None:
    result = run(
        [sys.executable, "-m", "geonox", "pin", "--project", project], cwd=project, env=env
    )
    assert result.returncode == 0, result.stdout


def sqlext_table(arch: str, image: str, extra: str = "") -> str:
    return (
        textwrap.dedent(f"""\
        [tool.geonox]
        backend = "docker"
        archs = ["{arch}"]
        policy = "manylinux_2_31"
        python = ["3.9"]
        deps = ["sqlite"]
        images = {{ {arch} = "{image}" }}
        container-env = ["PIP_CERT"]
        test-command = "python -c 'import sqlext; sqlext.selftest()'"
        """)
        + textwrap.dedent(extra)
        + '[tool.geonox.versions]\nsqlite = "3.52.0"\n'
    )


# ------------------------------------------------------------------ pinning


def test_pin_writes_the_digest_the_registry_reports(tmp_path, image_x86, geonox_env):
    project = make_project(tmp_path, SQLEXT, sqlext_table("x86_64", image_x86))
    pin(project, geonox_env)
    lock = ImageLock.load(project)
    assert lock.entries["x86_64"].image == image_x86
    assert lock.entries["x86_64"].digest == registry_digest(image_x86)


def test_a_musllinux_target_is_pinned_under_its_own_label(tmp_path, image_x86, geonox_env):
    """Two policies with docker: each target's image is pinned in the lock under its label
    (x86_64, x86_64-musl), read back for that target only.  quay.io's musllinux image cannot
    be reached here: the musl target names the stand-in (pinning only asks the registry)."""
    table = (
        sqlext_table("x86_64", image_x86)
        .replace('policy = "manylinux_2_31"', 'policy = ["manylinux_2_31", "musllinux_1_2"]')
        .replace(
            f'images = {{ x86_64 = "{image_x86}" }}',
            f'images = {{ x86_64 = "{image_x86}", "x86_64-musl" = "{image_x86}" }}',
        )
    )
    project = make_project(tmp_path, SQLEXT, table)
    pin(project, geonox_env)
    lock = ImageLock.load(project)
    assert sorted(lock.entries) == ["x86_64", "x86_64-musl"]
    assert lock.entries["x86_64-musl"].digest == registry_digest(image_x86)
    musl = Target("x86_64", "musllinux_1_2")
    assert pinned_image(image_x86, musl, lock, allow_unpinned=False).digest == registry_digest(
        image_x86
    )
    # without the musl entry, the musl target refuses to run while the manylinux one may
    del lock.entries["x86_64-musl"]
    with pytest.raises(UserError, match="unpinned image"):
        pinned_image(image_x86, musl, lock, allow_unpinned=False)
    assert pinned_image(image_x86, Target("x86_64", "manylinux_2_31"), lock, False).digest


class _TokenProxy(BaseHTTPRequestHandler):
    """A stand-in for quay.io's anonymous token flow (quay.io itself is unreachable): it
    answers 401 with a Bearer challenge, hands out a token at /token and forwards
    authorised requests to the real local registry."""

    token = "geonox-test-token"
    hits: ClassVar[dict] = {}

    def log_message(self, *args):
        pass

    def _send(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        port = self.server.server_address[1]
        if self.path.startswith("/token"):
            self.hits["token"] = self.hits.get("token", 0) + 1
            assert "scope=repository" in self.path
            return self._send(
                200,
                json.dumps({"token": self.token}).encode(),
                [("Content-Type", "application/json")],
            )
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            self.hits["401"] = self.hits.get("401", 0) + 1
            return self._send(
                401,
                b"{}",
                [
                    (
                        "WWW-Authenticate",
                        f'Bearer realm="http://127.0.0.1:{port}/token",service="fake"',
                    )
                ],
            )
        req = urllib.request.Request(
            f"http://{standin.REGISTRY}{self.path}",
            headers={"Accept": self.headers.get("Accept", "*/*")},
        )
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req) as resp:
            body = resp.read()
            headers = [
                (k, v)
                for k, v in resp.headers.items()
                if k in ("Content-Type", "Docker-Content-Digest")
            ]
            self._send(resp.status, body, headers)

    do_HEAD = do_GET


def test_pin_follows_the_anonymous_bearer_token_flow(image_x86):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenProxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        proxied = image_x86.replace(standin.REGISTRY, f"127.0.0.1:{port}")
        assert resolve_digest(proxied, "x86_64") == registry_digest(image_x86)
        assert _TokenProxy.hits.get("401", 0) >= 1 and _TokenProxy.hits.get("token", 0) >= 1
    finally:
        server.shutdown()


def test_pin_picks_the_arch_manifest_of_a_multiarch_index(image_x86, image_arm):
    multi = f"{standin.REGISTRY}/geonox-standin/multiarch:{image_x86.rsplit('-', 1)[1]}"
    env = dict(os.environ, DOCKER_CLI_EXPERIMENTAL="enabled")
    for argv in (
        ["manifest", "rm", multi],
        ["manifest", "create", "--insecure", multi, image_x86, image_arm],
        ["manifest", "push", "--insecure", multi],
    ):
        proc = subprocess.run([standin.DOCKER, *argv], env=env, capture_output=True, text=True)
        assert proc.returncode == 0 or argv[1] == "rm", proc.stderr
    assert resolve_digest(multi, "aarch64") == registry_digest(image_arm)
    assert resolve_digest(multi, "x86_64") == registry_digest(image_x86)


# ------------------------------------------------------------------ refusals and errors


def test_unpinned_image_is_refused_unless_allowed(tmp_path, image_x86, geonox_env):
    project = make_project(tmp_path, SQLEXT, sqlext_table("x86_64", image_x86))
    refused = nox("-s", "geo-images-x86_64", cwd=project, env=geonox_env)
    assert refused.returncode != 0
    assert "refusing to build with an unpinned image" in refused.stdout
    assert "python -m geonox pin" in refused.stdout and "Traceback" not in refused.stdout
    allowed = make_project(
        tmp_path, SQLEXT, sqlext_table("x86_64", image_x86, "allow-unpinned = true\n"), "allowed"
    )
    ok = nox("-s", "geo-images-x86_64", cwd=allowed, env=geonox_env)
    assert ok.returncode == 0, ok.stdout
    assert "(unpinned) is ready" in ok.stdout


def test_tampered_digest_in_lock_is_refused(tmp_path, image_x86, geonox_env):
    project = make_project(tmp_path, SQLEXT, sqlext_table("x86_64", image_x86))
    pin(project, geonox_env)
    lock = project / "geonox-images.lock"
    real = ImageLock.load(project).entries["x86_64"].digest
    tampered = "sha256:" + ("0" if real[7] != "0" else "1") + real[8:]
    lock.write_text(lock.read_text().replace(real, tampered))
    result = nox("-s", "geo-images-x86_64", cwd=project, env=geonox_env)
    assert result.returncode != 0
    assert tampered in result.stdout and "python -m geonox pin" in result.stdout
    assert "Traceback" not in result.stdout
    # and the real digest is accepted again
    lock.write_text(lock.read_text().replace(tampered, real))
    assert nox("-s", "geo-images-x86_64", cwd=project, env=geonox_env).returncode == 0


def test_stopped_engine_says_how_to_start_one(tmp_path, image_x86, geonox_env):
    project = make_project(tmp_path, SQLEXT, sqlext_table("x86_64", image_x86))
    env = dict(geonox_env, DOCKER_HOST=f"unix://{tmp_path}/no-engine.sock")
    result = nox("-s", "geo-images-x86_64", cwd=project, env=env)
    assert result.returncode != 0
    assert "needs a container engine" in result.stdout and "Start one" in result.stdout
    assert 'backend = "host"' in result.stdout and "Traceback" not in result.stdout


def test_auto_builds_the_own_arch_in_its_image_and_a_foreign_arch_with_zig(tmp_path, infra):
    """backend "auto" as `geonox plan` resolves it: with docker answering, x86_64 (this
    machine's arch) in its image and aarch64 with zig (not hours of QEMU compiles); with no
    engine (as a fresh laptop, or docker stopped), both with zig.  Never the host, whose
    wheels would carry this machine's glibc instead of the policy's tag."""
    import json

    project = make_project(
        tmp_path,
        EXAMPLE,
        """\
        [tool.geonox]
        archs = ["x86_64", "aarch64"]
        allow-unpinned = true
        [tool.geonox.versions]
        proj = "9.1.1"
        geos = "3.13.1"
        sqlite = "3.52.0"
        """,
    )

    def backends(env: dict) -> dict:
        done = run([sys.executable, "-m", "geonox", "plan", "--json"], cwd=project, env=env)
        assert done.returncode == 0, done.stdout
        return {
            t["arch"]: (t["backend"], t["platform_tag"]) for t in json.loads(done.stdout)["targets"]
        }

    env = {k: v for k, v in os.environ.items() if not k.startswith("GEONOX_")}
    env["GEONOX_CACHE_DIR"] = str(tmp_path / "cache")
    assert backends(env) == {
        "x86_64": ("docker", "manylinux_2_28_x86_64"),
        "aarch64": ("zig", "manylinux_2_28_aarch64"),
    }
    stopped = dict(
        env, DOCKER_HOST=f"unix://{tmp_path}/no-engine.sock", GEONOX_PODMAN="/nonexistent/podman"
    )
    assert backends(stopped) == {
        "x86_64": ("zig", "manylinux_2_28_x86_64"),
        "aarch64": ("zig", "manylinux_2_28_aarch64"),
    }


@pytest.mark.parametrize(
    ("limit", "expected"),
    [(("--cpus", "1"), 1), (("--cpus", "1.5"), 2), (("--cpuset-cpus", "0"), 1)],
)
def test_build_jobs_follow_the_cgroup_quota_and_the_cpuset(image_x86, limit, expected):
    """``-j`` is the cores geonox may use: a container given ``--cpus 1`` on this 2-core
    machine (a CI runner's quota on a big host) builds with -j1, not os.cpu_count().  The
    module runs as a script with the image's own Python."""
    if (os.cpu_count() or 1) < 2:
        skip_or_fail("needs a machine with at least 2 cores to see a quota below them")
    cores = Path(geonox.cores.__file__)
    out = subprocess.run(
        [
            standin.DOCKER,
            "run",
            "--rm",
            *limit,
            "-v",
            f"{cores}:/cores.py:ro",
            image_x86,
            "/opt/python/cp39-cp39/bin/python",
            "/cores.py",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert int(out) == expected


def test_missing_binfmt_is_detected(tmp_path, image_arm, geonox_env):
    project = make_project(tmp_path, SQLEXT, sqlext_table("aarch64", image_arm))
    pin(project, geonox_env)
    entry = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
    if not entry.exists():
        skip_or_fail("qemu-aarch64 is not registered with binfmt_misc")
    entry.write_text("0")  # disable QEMU for aarch64 for the length of this test
    try:
        result = nox("-s", "geo-images-aarch64", cwd=project, env=geonox_env)
    finally:
        entry.write_text("1")
    assert result.returncode != 0
    assert "needs QEMU registered with binfmt_misc" in result.stdout
    assert "qemu-user-static" in result.stdout and "Traceback" not in result.stdout


def test_image_without_the_python_is_named(tmp_path, image_x86, geonox_env):
    project = make_project(
        tmp_path,
        SQLEXT,
        sqlext_table("x86_64", image_x86).replace('python = ["3.9"]', 'python = ["3.12"]'),
    )
    pin(project, geonox_env)
    result = nox("-s", "geo-build-x86_64-3.12", cwd=project, env=geonox_env)
    assert result.returncode != 0
    assert "has no /opt/python/cp312-cp312/bin/python" in result.stdout
    have = ", ".join(sorted(standin.python_tags("x86_64")))  # cp311-cp311, cp39-cp39
    assert f"it has: {have}" in result.stdout and "Traceback" not in result.stdout


def test_build_image_from_a_dockerfile_on_the_pinned_base(tmp_path, image_x86, geonox_env):
    project = make_project(
        tmp_path, SQLEXT, sqlext_table("x86_64", image_x86, 'dockerfile = "ci.Dockerfile"\n')
    )
    (project / "ci.Dockerfile").write_text(
        "ARG BASE\nFROM ${BASE}\nRUN echo geonox-built > /etc/geonox-built\n"
    )
    pin(project, geonox_env)
    env = dict(geonox_env, GEONOX_DOCKER=standin.DOCKER)  # BuildKit-capable client
    first = nox("-s", "geo-images-x86_64", cwd=project, env=env)
    assert first.returncode == 0, first.stdout
    tag = re.search(r"(geonox-build/manylinux_2_31_x86_64:[0-9a-f]{16})", first.stdout).group(1)
    out = subprocess.run(
        [standin.DOCKER, "run", "--rm", tag, "cat", "/etc/geonox-built"],
        capture_output=True,
        text=True,
    )
    assert out.stdout.strip() == "geonox-built"
    base_digest = ImageLock.load(project).entries["x86_64"].digest
    assert f"on {image_x86.rsplit(':', 1)[0]}@{base_digest}" in first.stdout
    again = nox("-s", "geo-images-x86_64", cwd=project, env=env)
    assert again.returncode == 0 and tag in again.stdout


# ------------------------------------------------------------------ full paths


@pytest.fixture(scope="session")
def image_musl(infra, built_pythons) -> str:
    return standin.musl_standin_image(built_pythons["musl"].parents[1])


def test_sqlext_as_a_musllinux_wheel_in_a_musllinux_image(
    tmp_path, image_musl, built_pythons, geonox_env
):
    """backend = "docker" with policy musllinux_1_2: SQLite and sqlext built, repaired,
    verified and tested in a musllinux image, as cibuildwheel users build their musl wheels.
    quay.io's Alpine-based image cannot be pulled nor Alpine's packages fetched here: the
    image is a stand-in (tests/standin.py, dockerfiles/standin/musl) on which what geonox
    runs runs on musl 1.2.5 laid out as Alpine has it (cc = musl-gcc; ldd = the loader's
    --list; no glibc CPython).  Its CPython has no ssl module, so pip inside reads a
    directory of the wheels it needs (PIP_FIND_LINKS, passed through container-env)."""
    from geonox.targets import PythonVersion
    from geonox.tools import BUILD_TOOLS, REPAIR_PACKAGES, pinned

    project = make_project(
        tmp_path,
        SQLEXT,
        sqlext_table("x86_64", image_musl)
        .replace('policy = "manylinux_2_31"', 'policy = "musllinux_1_2"')
        .replace('python = ["3.9"]', 'python = ["3.13"]')
        .replace(
            f'images = {{ x86_64 = "{image_musl}" }}',
            f'images = {{ "x86_64-musl" = "{image_musl}" }}',
        )
        .replace(
            'container-env = ["PIP_CERT"]', 'container-env = ["PIP_NO_INDEX", "PIP_FIND_LINKS"]'
        ),
    )
    offline = project / "offline-wheels"  # in the project: the container sees it
    py = PythonVersion("3.13")
    wanted = [*pinned(REPAIR_PACKAGES + BUILD_TOOLS + ("pyproject_hooks",), py)]
    wanted += ["scikit-build-core>=0.10", "ninja"]  # sqlext's build requirements
    plat = ("--platform", "musllinux_1_2_x86_64", "--platform", "musllinux_1_1_x86_64")
    done = run(
        [
            *(sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", *plat),
            *("--python-version", "3.13", "--implementation", "cp", "--abi", "cp313"),
            *("-d", offline, *wanted),
        ],
        cwd=tmp_path,
        env=geonox_env,
    )
    if done.returncode != 0:
        skip_or_fail(f"the wheels for the musl image could not be downloaded:\n{done.stdout}")
    env = dict(geonox_env, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(offline))
    pin(project, env)

    result = nox("-s", "geo-wheels-x86_64-musl", cwd=project, env=env)
    out = result.stdout
    assert result.returncode == 0, out[-6000:]
    assert "sqlext OK: SQLite 3.52.0 on x86_64" in out, out[-3000:]
    # built, repaired, checked and tested in the image (pinned by digest), not here
    ran = f"runs on docker {image_musl.rsplit(':', 1)[0]}@sha256:"
    for step in ("deps", "build", "repair", "ldd", "test"):
        assert re.search(rf"geo-{step}-x86_64-musl\S*: {re.escape(ran)}", out), (step, out[-4000:])
    (wheel,) = (project / "wheelhouse").glob("*.whl")
    assert wheel.name.endswith("-cp313-cp313-musllinux_1_2_x86_64.whl"), wheel.name
    assert verify_errors(wheel, geonox_env, project) == []
    with zipfile.ZipFile(wheel) as zf:
        (member,) = [n for n in zf.namelist() if n.endswith(".so")]
        module = tmp_path / "module.so"
        module.write_bytes(zf.read(member))
    assert "x86_64-linux-musl" in member
    from geonox.elf import read_elf

    assert read_elf(module).needed == ["libc.musl-x86_64.so.1"], read_elf(module).needed
    # CMake for the image's libc (the manylinux one cannot start on musl), and the
    # repair session's verify ran musl's ldd inside, without a false error
    cache = Path(geonox_env["GEONOX_CACHE_DIR"])
    assert list(cache.glob("tools/cmake-4.4.5-x86_64-musl-*/cmake/data/bin/cmake"))
    (report,) = cache.glob(f"work/*/reports/{wheel.name}.verify.json")
    files = json.loads(report.read_text())["files"]
    assert files and all(f["ldd_checked"] for f in files), files


def test_copy_mode_and_env_allowlist(tmp_path, image_x86, geonox_env):
    """As for a remote engine: nothing bind-mounted, inputs and outputs copied; only the
    listed host variables reach the commands."""
    table = (
        sqlext_table("x86_64", image_x86, 'container-mode = "copy"\n')
        .replace('container-env = ["PIP_CERT"]', 'container-env = ["PIP_CERT", "GEONOX_VISIBLE"]')
        .replace(
            "sqlext.selftest()'",
            "sqlext.selftest(); import os; "
            'assert os.environ.get(\\"GEONOX_VISIBLE\\") == \\"yes\\"; '
            'assert \\"GEONOX_SECRET\\" not in os.environ\'',
        )
    )
    project = make_project(tmp_path, SQLEXT, table)
    pin(project, geonox_env)
    cache = tmp_path / "copy-cache"
    env = dict(geonox_env, GEONOX_CACHE_DIR=str(cache), GEONOX_VISIBLE="yes", GEONOX_SECRET="no")
    result = nox("-s", "geo-wheels-x86_64", cwd=project, env=env)
    assert result.returncode == 0, result.stdout[-5000:]
    assert "sqlext OK: SQLite 3.52.0 on x86_64" in result.stdout
    wheels = list((project / "wheelhouse").glob("*.whl"))
    assert len(wheels) == 1 and "manylinux_2_31_x86_64" in wheels[0].name
    # the artifact came back out of the container into the host cache, and the prefix was
    # assembled from it there ...
    assert list(cache.glob("deps/sqlite-3.52.0-x86_64-*/lib/libsqlite3.a"))
    assert list(cache.glob("prefixes/x86_64-*/lib/libsqlite3.a"))
    # ... but the tool venvs, made inside it, did not: nothing was mounted.  The host's
    # tools/ holds the pinned CMake alone, unpacked here and copied in
    tools = [p.name for p in (cache / "tools").iterdir() if p.is_dir()]
    assert len(tools) == 1 and tools[0].startswith("cmake-4.4.5-x86_64-"), tools
    assert not tools[0].startswith("cmake-4.4.5-x86_64-musl"), tools


def test_two_container_builds_at_two_paths_give_the_same_wheel(
    tmp_path, image_x86, geonox_env, mirror
):
    """Reproducible in the container too: sqlext built in the stand-in image from the test
    session's cache, then from a clean cache at another path with ccache off (SQLite
    compiled again in the container), gives the same bytes."""
    from test_reproducible import clean_env, same_artifacts, same_wheel

    wheels = []
    fresh = tmp_path / "elsewhere" / "clean-cache"
    for name, env in (("one", geonox_env), ("two", clean_env(fresh, mirror))):
        project = make_project(
            tmp_path / name / "deeper", SQLEXT, sqlext_table("x86_64", image_x86)
        )
        pin(project, env)
        result = nox("-s", "geo-wheels-x86_64", cwd=project, env=env)
        assert result.returncode == 0, result.stdout[-5000:]
        assert "sqlext OK: SQLite 3.52.0 on x86_64" in result.stdout
        (wheel,) = (project / "wheelhouse").glob("*.whl")
        wheels.append(wheel)
    assert "manylinux_2_31_x86_64" in wheels[0].name
    assert list(fresh.glob("deps/sqlite-3.52.0-x86_64-*/lib/libsqlite3.a"))  # compiled there
    same_wheel(*wheels, tmp_path, fresh, Path(geonox_env["GEONOX_CACHE_DIR"]), tmp_path)
    assert same_artifacts(fresh, Path(geonox_env["GEONOX_CACHE_DIR"]), "sqlite")


def test_x86_64_example_in_the_container_then_cached(tmp_path, image_x86, geonox_env):
    """The example's full path (PROJ/GEOS/SQLite from the mirror) inside the stand-in image,
    repaired as manylinux_2_31 (its honest glibc), verified and tested there."""
    project = make_project(
        tmp_path,
        EXAMPLE,
        textwrap.dedent(f"""\
        [tool.geonox]
        backend = "docker"
        archs = ["x86_64"]
        policy = "manylinux_2_31"
        python = ["3.9"]
        images = {{ x86_64 = "{image_x86}" }}
        container-env = ["PIP_CERT"]
        test-command = "python -c 'import geodemo; geodemo.selftest()'"
        [tool.geonox.versions]
        proj = "9.1.1"
        geos = "3.13.1"
        sqlite = "3.52.0"
        """),
    )
    pin(project, geonox_env)
    first = nox("-s", "geo-wheels-x86_64", cwd=project, env=geonox_env)
    assert first.returncode == 0, first.stdout[-6000:]
    assert re.search(
        r"geodemo 0\.1\.0 OK: PROJ 9\.1\.1, GEOS 3\.13\.1\S*, SQLite 3\.52\.0; "
        r"Paris -> \(261845\.7, 6250564\.3\) m; 32-gon area 3\.1214452",
        first.stdout,
    )
    assert "(cc (Debian 10.2.1" in first.stdout  # the container's compiler built the deps
    # ... driven by geonox's pinned CMake, not the image's own (bullseye's 3.18)
    own = run(
        [standin.DOCKER, "run", "--rm", image_x86, "cmake", "--version"],
        cwd=tmp_path,
        env=geonox_env,
    )
    assert own.returncode == 0 and "cmake version 3.18" in own.stdout, own.stdout
    cache = Path(geonox_env["GEONOX_CACHE_DIR"])
    proj = max(
        (
            d
            for d in cache.glob("deps/proj-9.1.1-x86_64-*")
            if d.is_dir()
            and "Debian 10.2.1" in json.loads((d / "geonox-dep.json").read_text())["toolchain"]
        ),
        key=lambda d: (d / "geonox-dep.json").stat().st_mtime,
    )
    # the export file CMake generated names the policies it knows: up to 4.x from the pin
    # (3.17 from bullseye's 3.18)
    exported = (proj / "lib" / "cmake" / "proj" / "proj-targets.cmake").read_text()
    known = re.search(r"cmake_policy\(VERSION [\d.]+\.\.\.(\d+)\.\d+\)", exported)
    assert known and int(known.group(1)) >= 4, exported[:400]
    assert re.search(
        r"geo-build-x86_64: runs on docker 127\.0\.0\.1:5000/\S+@sha256:"
        r"[0-9a-f]{64} \(x86_64\)",
        first.stdout,
    ), first.stdout[-3000:]
    wheels = list((project / "wheelhouse").glob("*.whl"))
    assert len(wheels) == 1
    tags = wheels[0].name[:-4].split("-")[-1].split(".")
    assert "manylinux_2_31_x86_64" in tags and not any(t.startswith("manylinux_2_35") for t in tags)
    again = nox("-s", "geo-wheels-x86_64", cwd=project, env=geonox_env)
    assert again.returncode == 0, again.stdout[-4000:]
    assert re.search(r"geo-deps-x86_64: cached \(key [0-9a-f]{16}\)", again.stdout)
    assert "built in" not in again.stdout


def test_shared_library_grafted_in_the_container_from_an_sdist(
    tmp_path, image_x86, geonox_env, twomod_sdist
):
    """link = "shared" on the container backend: SQLite built as a shared library in the
    stand-in image, twomod (setuptools, pkg-config) built from its sdist there, auditwheel
    grafting the one library there, twomod's own suite passing there.  Everything comes
    from register() keywords; the image lock and the wheelhouse go beside the sdist."""
    sdist = tmp_path / twomod_sdist.name
    shutil.copy(twomod_sdist, sdist)
    where = twomod_noxfile(
        tmp_path / "release",
        sdist,
        "shared",
        ["3.9"],
        "wheelhouse",
        backend="docker",
        archs=["x86_64"],
        policy="manylinux_2_31",
        images={"x86_64": image_x86},
        container_env=["PIP_CERT"],
    )
    pinned = nox("-s", "pin-images", cwd=where, env=geonox_env)
    assert pinned.returncode == 0, pinned.stdout[-3000:]
    assert ImageLock.load(tmp_path).entries["x86_64"].digest  # beside the sdist
    result = nox("-s", "wheels-x86_64", cwd=where, env=geonox_env)
    out = result.stdout
    assert result.returncode == 0, out[-6000:]
    assert re.search(r"deps-x86_64: runs on docker 127\.0\.0\.1:5000/\S+@sha256:", out)
    assert "sqlite 3.52.0 (shared)" in out and "(cc (Debian 10.2.1" in out
    assert "5 passed" in out, out[-3000:]
    (wheel,) = (tmp_path / "wheelhouse").glob("*.whl")
    assert wheel.name.startswith("twomod-1.0-cp39-cp39-manylinux_")
    assert wheel.name.endswith("manylinux_2_31_x86_64.whl"), wheel.name  # the image's glibc
    import zipfile

    with zipfile.ZipFile(wheel) as zf:
        libs = [n for n in zf.namelist() if n.startswith("twomod.libs/") and not n.endswith("/")]
    assert len(libs) == 1 and re.fullmatch(
        r"twomod\.libs/libsqlite3-[0-9a-f]{8}\.so\.3\.52\.0", libs[0]
    ), libs


def image_ccache_counters(image: str, cache: Path) -> dict[str, int]:
    """ccache's counters for geonox's ccache directory, as the image's own ccache reads them."""
    return ccache_counters(
        [
            standin.DOCKER,
            "run",
            "--rm",
            "-v",
            f"{cache}:{cache}",
            "-e",
            f"CCACHE_DIR={cache / 'ccache'}",
            image,
            "ccache",
        ]
    )


#: GEOS 3.13.1's compiles as a unity build: 392 of its 439 sources in 49 batches of 8, the
#: 47 of geonox's list alone (45 in libgeos, the 2 of the C API), and ryu's one C file
_ALONE = len(geos_recipe.UNITY_SKIP["3.13.1"])
GEOS_UNITY_COMPILES = math.ceil((439 - _ALONE) / 8) + _ALONE + 1


def test_shapely_from_its_sdist_in_the_container_with_a_shared_geos(
    tmp_path, image_x86, geonox_env
):
    """A real project in the stand-in image for two CPythons: shapely 2.0.7's release
    sdist (it supports both of the image's Pythons, 3.9 from Debian and 3.11 built from
    source in the image), GEOS built shared by the image's gcc 10 (through the image's
    ccache, warm from the example's static GEOS: the compiles are hits), shapely's Cython
    modules built there per Python with numpy and Cython from the index, GEOS grafted once
    in each wheel, and shapely's own suite passing there on each Python."""
    pythons = [f"3.{t[3 : t.index('-')]}" for t in standin.python_tags("x86_64")]
    assert len(pythons) == 2, pythons
    sdist = tmp_path / "shapely-2.0.7.tar.gz"
    shutil.copy(pypi_sdist("shapely", "2.0.7"), sdist)
    where = shapely_noxfile(
        tmp_path / "release",
        sdist,
        backend="docker",
        archs=["x86_64"],
        policy="manylinux_2_31",
        python=pythons,
        images={"x86_64": image_x86},
        container_env=["PIP_CERT"],
    )
    pinned = nox("-s", "pin-images", cwd=where, env=geonox_env)
    assert pinned.returncode == 0, pinned.stdout[-3000:]
    cache = Path(geonox_env["GEONOX_CACHE_DIR"])
    static_geos = [
        m
        for m in (
            json.loads(f.read_text())
            for f in cache.glob("deps/geos-3.13.1-x86_64-*/geonox-dep.json")
        )
        if m["link"] == "static" and "Debian 10.2.1" in m["toolchain"]
    ]
    before = image_ccache_counters(image_x86, cache)
    result = nox("-s", "wheels-x86_64", cwd=where, env=geonox_env)
    out = result.stdout
    assert result.returncode == 0, out[-6000:]
    assert re.search(
        r"deps-x86_64: building geos 3\.13\.1 \(shared\) .*\(cc \(Debian 10\.2\.1.*, ccache,", out
    ), out[-3000:]
    # the image's ccache ran every GEOS compile, its directory in the mounted cache (its
    # counters, read in the image: bullseye's ccache 4.2 writes no CCACHE_STATSLOG, so
    # geonox's "(ccache: N of M compiles were hits)" line needs a newer one); after the
    # example's static GEOS in this image (the same PIC objects) nearly all are hits
    after = image_ccache_counters(image_x86, cache)
    hits = after["hits"] - before["hits"]
    misses = after["misses"] - before["misses"]
    assert hits + misses >= GEOS_UNITY_COMPILES, (before, after)
    if static_geos:
        assert hits >= 0.9 * GEOS_UNITY_COMPILES, (before, after)
    results = suite_results(out)
    assert len(results) == 2 and all(p > 3000 and f == 0 for p, f in results), out[-3000:]
    wheels = sorted((tmp_path / "wheelhouse").glob("shapely-2.0.7-*.whl"))
    assert [w.name.split("-")[2] for w in wheels] == ["cp311", "cp39"], wheels
    for wheel in wheels:
        assert wheel.name.endswith("manylinux_2_31_x86_64.whl"), wheel.name
        grafted_once(
            wheel,
            "shapely",
            {"libgeos": r"3\.13\.1", "libgeos_c": r"1\.\d+\.\d+"},
            ("GEOS", "_ZN4geos"),
            tmp_path,
        )
        assert verify_errors(wheel, geonox_env, tmp_path) == []
