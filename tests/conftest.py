"""Shared fixtures.

- ``mirror``: the directory of real upstream tarballs (``GEONOX_MIRROR`` or
  ``../shared/mirror`` beside the repo).  Missing: skip locally, fail under ``CI=true``.
- ``pypi_download``: files from PyPI (real wheels and sdists nobody here wrote), fetched once
  into ``~/.cache/geonox-test/pypi`` (outside the repo; ``GEONOX_TEST_PYPI`` moves it).
- ``geonox_cache``: one cache directory for the whole test session, so the heavy
  PROJ/GEOS/SQLite prefix is built once and every end-to-end test shares it.  Set
  ``GEONOX_TEST_CACHE`` to keep it across local runs.  Under pytest-xdist (the README's
  command runs two workers) every worker shares it, as a CI matrix shares one cache:
  geonox's per-artifact locks make the second worker wait for, then reuse, what the first
  is building.  Heavy test files are scheduled first (longest first).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from geonox.elf import read_elf

REPO = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
#: A machine without a container engine, as a fresh clone on a laptop has it: the clients
#: geonox asks (GEONOX_DOCKER / GEONOX_PODMAN) do not exist, so backend "auto" picks zig.
#: The suite's machine runs docker for the container tests; the main job must not see it.
NO_ENGINE = {"GEONOX_DOCKER": "/nonexistent/docker", "GEONOX_PODMAN": "/nonexistent/podman"}


def skip_or_fail(reason: str) -> None:
    """Skip locally; under CI=true a missing prerequisite is a failure, not a pass."""
    if IN_CI:
        pytest.fail(f"CI must not skip: {reason}")
    pytest.skip(reason)  # local runs only: under CI the line above fails instead


def standin_or_skip(arch: str, suite: str | None = None) -> str:
    """The stand-in manylinux image of ``arch`` (engine, registry and QEMU set up first);
    ``suite="bookworm"`` for a test-only one with CPython 3.11."""
    import standin

    try:
        standin.ensure_infra()
        return standin.standin_image(arch, suite or standin.SUITE)
    except RuntimeError as exc:
        skip_or_fail(str(exc))
        raise


@pytest.fixture(scope="session")
def mirror() -> Path:
    env = os.environ.get("GEONOX_MIRROR", "").split()
    path = Path(env[0]) if env else REPO.parent / "shared" / "mirror"
    if not (path / "proj-9.1.1.tar.gz").is_file():
        skip_or_fail(f"no source mirror with proj-9.1.1.tar.gz at {path}")
    return path.resolve()


#: ``pip download`` arguments for PyPI's musllinux_1_2 x86_64 wheels for CPython 3.13
MUSL_X86 = (
    "--only-binary",
    ":all:",
    "--platform",
    "musllinux_1_2_x86_64",
    "--python-version",
    "3.13",
)

PYPI_CACHE = Path(
    os.environ.get("GEONOX_TEST_PYPI", Path.home() / ".cache" / "geonox-test" / "pypi")
)


def pypi_download(requirement: str, *pip_args: str) -> Path:
    """One file from PyPI (``pip download --no-deps``), cached by requirement and arguments.
    The index is this machine's only registry: unreachable means skip locally, fail in CI."""
    import hashlib

    from filelock import FileLock

    key = hashlib.sha256(" ".join([requirement, *pip_args]).encode()).hexdigest()[:12]
    PYPI_CACHE.mkdir(parents=True, exist_ok=True)
    with FileLock(str(PYPI_CACHE / f".{key}.lock"), timeout=900):  # xdist workers
        return _pypi_download(key, requirement, pip_args)


def _pypi_download(key: str, requirement: str, pip_args: tuple[str, ...]) -> Path:
    dest = PYPI_CACHE / key
    files = sorted(dest.glob("*.whl")) + sorted(dest.glob("*.tar.gz"))
    if len(files) == 1:
        return files[0]
    tmp = PYPI_CACHE / f".{key}.tmp"
    subprocess.run(["rm", "-rf", str(tmp)], check=True)
    tmp.mkdir(parents=True)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--dest",
            str(tmp),
            *pip_args,
            requirement,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    got = sorted(tmp.iterdir())
    if proc.returncode != 0 or len(got) != 1:
        skip_or_fail(f"pip download {requirement} failed: {proc.stderr[-500:]}")
    subprocess.run(["rm", "-rf", str(dest)], check=True)
    tmp.rename(dest)
    return dest / got[0].name


def pypi_sdist(name: str, version: str) -> Path:
    """A release sdist as PyPI serves it, found through the index's JSON simple API (PEP
    691) and checked against the sha256 it publishes.  Not ``pip download --no-binary``:
    that prepares the sdist's metadata, which for pyproj needs a PROJ installation."""
    import hashlib

    import requests

    filename = f"{name}-{version}.tar.gz"
    dest = PYPI_CACHE / "sdists" / filename
    if dest.is_file():
        return dest
    try:
        index = requests.get(
            f"https://pypi.org/simple/{name}/",
            timeout=120,
            headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        )
        index.raise_for_status()
        (entry,) = [f for f in index.json()["files"] if f["filename"] == filename]
        body = requests.get(entry["url"], timeout=600)
        body.raise_for_status()
    except (requests.RequestException, ValueError) as exc:
        skip_or_fail(f"cannot download {filename} from PyPI: {exc}")
    digest = hashlib.sha256(body.content).hexdigest()
    assert digest == entry["hashes"]["sha256"], (filename, digest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{filename}.{os.getpid()}.tmp")
    tmp.write_bytes(body.content)
    tmp.rename(dest)
    return dest


#: Sources the mirror does not hold, from Debian's pool (reachable here, as PyPI is): each a
#: repack of upstream's (a GitHub tag archive), so a project names it through its sources
#: table, as a user with an internal mirror would.  (file name in the pool, sha256, version)
DEBIAN_POOL = "http://deb.debian.org/debian/pool/main"
DEBIAN_SOURCES = {
    "expat": (
        "e/expat/expat_2.7.1.orig.tar.gz",
        "85372797ff0673a8fc4a6be16466bb5a0ca28c0dcf3c6f7ac1686b4a3ba2aabb",
        "2.7.1",
    ),
}


def debian_source(name: str) -> Path:
    """A source from Debian's pool, downloaded once into the test cache and checked."""
    import hashlib

    import requests
    from filelock import FileLock

    rel, sha256, _ = DEBIAN_SOURCES[name]
    dest = PYPI_CACHE.parent / "debian" / rel.rsplit("/", 1)[1]
    dest.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(dest) + ".lock", timeout=900):
        if not dest.is_file():
            try:
                body = requests.get(f"{DEBIAN_POOL}/{rel}", timeout=300)
                body.raise_for_status()
            except requests.RequestException as exc:
                skip_or_fail(f"cannot download {rel} from Debian's pool: {exc}")
            assert hashlib.sha256(body.content).hexdigest() == sha256, rel
            tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
            tmp.write_bytes(body.content)
            tmp.rename(dest)
    return dest


def gdal_sources(mirror: Path) -> dict:
    """register()'s sources for GDAL (the mirror's Debian repack of 3.10.3) and expat."""
    expat = debian_source("expat")
    return {
        "gdal": {
            "version": "3.10.3",
            "url": (mirror / "gdal_3.10.3+dfsg.orig.tar.xz").as_uri(),
            "sha256": "5ef1d6bf67d9d4d9394f90c96b9873e60aeed7e44b04df04ffd777b3c79c9588",
        },
        "expat": {
            "version": DEBIAN_SOURCES["expat"][2],
            "url": expat.as_uri(),
            "sha256": DEBIAN_SOURCES["expat"][1],
        },
    }


def repacked_sqlite(mirror: Path, dest: Path, mtime: int) -> tuple[Path, str]:
    """The mirror's SQLite with the same files in other archive bytes: another sha256, so
    another artifact key, and not one object file different."""
    import gzip
    import hashlib

    data = gzip.decompress((mirror / "sqlite-autoconf-3520000.tar.gz").read_bytes())
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / "sqlite-autoconf-3520000.tar.gz"
    archive.write_bytes(gzip.compress(data, mtime=mtime))
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest()


def ccache_counters(argv: list, env: dict | None = None) -> dict[str, int]:
    """``<argv> --print-stats`` (a ccache, on the host or in an image) as {"hits", "misses"}."""
    out = subprocess.run(
        [*argv, "--print-stats"], env=env, capture_output=True, text=True, timeout=300, check=True
    ).stdout
    stats = {k: int(v) for k, v in (line.split("\t") for line in out.splitlines() if "\t" in line)}
    return {
        "hits": stats["direct_cache_hit"] + stats["preprocessed_cache_hit"],
        "misses": stats["cache_miss"],
    }


def _session_dir(tmp_path_factory, name: str) -> Path:
    """A directory for the whole test session: under pytest-xdist, one for all its workers
    (beside their own base directories), else this run's own."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        path = tmp_path_factory.getbasetemp().parent / name
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp(name)


@pytest.fixture(scope="session")
def geonox_cache(tmp_path_factory) -> Path:
    keep = os.environ.get("GEONOX_TEST_CACHE")
    path = Path(keep) if keep else _session_dir(tmp_path_factory, "geonox-cache")
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


@pytest.fixture(scope="session", autouse=True)
def shared_ccache(tmp_path_factory):
    """One ccache directory for every geonox cache of the test session (CCACHE_DIR, which
    geonox honours on this machine): a SQLite compiled by one test is a hit in the next."""
    keep = os.environ.get("GEONOX_TEST_CACHE")
    path = Path(keep) / "ccache" if keep else _session_dir(tmp_path_factory, "ccache")
    old = os.environ.get("CCACHE_DIR")
    os.environ["CCACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("CCACHE_DIR", None)
    else:
        os.environ["CCACHE_DIR"] = old


@pytest.fixture(scope="session")
def geonox_env(mirror, geonox_cache, shared_ccache) -> dict:
    """Environment for geonox subprocesses: the mirror and the shared cache."""
    env = dict(os.environ)
    env["GEONOX_MIRROR"] = str(mirror)
    env["GEONOX_CACHE_DIR"] = str(geonox_cache)
    env.pop("GEONOX_OFFLINE", None)
    return env


@pytest.fixture(scope="session")
def built_pythons(mirror) -> dict[str, Path]:
    """CPython 3.13.5 built here free-threaded (glibc) and against musl, by
    scripts/build_pythons.sh (cached by the key of its inputs outside the repo; CI builds
    them before the tests, a fresh machine here): ``{"ft": python3.13t, "musl": python3.13}``.
    One worker builds while the other waits (a file lock beside the cache)."""
    from filelock import FileLock

    root = Path(
        os.environ.get("GEONOX_TEST_PYTHONS", Path.home() / ".cache" / "geonox-test" / "pythons")
    )
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / ".lock")):
        done = run(
            ["bash", REPO / "scripts" / "build_pythons.sh"],
            cwd=REPO,
            env=dict(os.environ, GEONOX_MIRROR=str(mirror), GEONOX_TEST_PYTHONS=str(root)),
        )
    if done.returncode != 0:
        pytest.fail(f"scripts/build_pythons.sh failed:\n{done.stdout[-3000:]}")
    found = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " /" in line)
    return {k: Path(v) for k, v in found.items()}


@pytest.fixture(scope="session")
def no_engine_env(geonox_env) -> dict:
    """The suite's environment as the main job's machine has it: no container engine."""
    return dict(geonox_env, **NO_ENGINE)


@pytest.fixture(scope="session")
def main_job(no_engine_env, tmp_path_factory):
    """The README's main command (``nox -s wheels-x86_64`` in the repo) on a machine with no
    container engine (so: zig, manylinux_2_28), run once per test session: under
    pytest-xdist by the first worker that asks while the others wait.  Tests read its
    outcome and a copy of its wheelhouse (later runs in the repo rewrite that)."""
    from filelock import FileLock

    shared = _session_dir(tmp_path_factory, "main-job")
    with FileLock(str(shared / ".lock")):
        done = shared / "result.json"
        if not done.exists():
            wheelhouse = REPO / "examples" / "geodemo" / "wheelhouse"
            shutil.rmtree(wheelhouse, ignore_errors=True)
            result = nox("-s", "wheels-x86_64", cwd=REPO, env=no_engine_env)
            if wheelhouse.is_dir():
                shutil.copytree(wheelhouse, shared / "wheelhouse")
            done.write_text(
                json.dumps(
                    {"args": result.args, "returncode": result.returncode, "stdout": result.stdout}
                )
            )
        data = json.loads(done.read_text())
    return (
        subprocess.CompletedProcess(data["args"], data["returncode"], data["stdout"]),
        shared / "wheelhouse",
    )


def run(argv, *, cwd, env, timeout=3600) -> subprocess.CompletedProcess:
    """Run a command, output captured as text (stdout and stderr merged)."""
    return subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=env,
        text=True,
        timeout=timeout,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def nox(*args, cwd, env, timeout=3600) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "nox", *args], cwd=cwd, env=env, timeout=timeout)


def make_project(tmp_path: Path, source: Path, table: str, name: str = "proj") -> Path:
    """A copy of ``source`` with ``table`` as its [tool.geonox] and a noxfile registering
    geonox with the prefix ``geo-``."""
    project = tmp_path / name
    shutil.copytree(source, project, ignore=shutil.ignore_patterns("wheelhouse", "build"))
    text = (project / "pyproject.toml").read_text()
    head = text[: text.index("[tool.geonox]")] if "[tool.geonox]" in text else text
    (project / "pyproject.toml").write_text(head + textwrap.dedent(table))
    (project / "noxfile.py").write_text("import geonox\ngeonox.register(prefix='geo-')\n")
    return project


def rewrite_members(src: Path, dst: Path, change) -> None:
    """A copy of the wheel ``src`` at ``dst`` whose members are ``change(name, data)``
    (zip metadata kept, RECORD not updated: a wheel changed behind its RECORD's back)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            zout.writestr(item, change(item.filename, zin.read(item)))


def sqlite_project(
    path: Path,
    source: str = '[tool.geonox.versions]\nsqlite = "3.52.0"\n',
    deps: Sequence[str] = ("sqlite",),
) -> Path:
    """A host-backend project that builds only SQLite (the quick recipe), or ``deps``,
    with a noxfile.  ``source`` is the TOML that picks the sources (a version pin of
    SQLite by default)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "pyproject.toml").write_text(
        textwrap.dedent(f"""\
        [project]
        name = "sq"
        version = "1.0"
        [tool.geonox]
        deps = {json.dumps(list(deps))}
        python = ["3.12"]
        backend = "host"
        """)
        + source
    )
    (path / "noxfile.py").write_text("import geonox\ngeonox.register()\n")
    return path


#: twomod's hooks, as a release noxfile outside its sdist would register them.
TWOMOD_KEYWORDS = {
    "deps": ["sqlite"],
    "versions": {"sqlite": "3.52.0"},
    "build_env": {"TWOMOD_BUILT_FOR": "{arch}"},
    # writes src/twomod/_built.py in the build's copy of the tree: ARCH = "x86_64" ...
    "before_build": 'printf \'ARCH = "%s"\\nPYTHON = "%s"\\n\' {arch} {python} > src/twomod/_built.py',
    "test_requires": ["pytest"],
    "test_sources": ["tests"],
    "test_command": "python -m pytest -q -p no:cacheprovider tests",
}


@pytest.fixture(scope="session")
def twomod_sdist(tmp_path_factory) -> Path:
    """tests/data/twomod's sdist, made with pypa/build as its release would be."""
    out = tmp_path_factory.mktemp("twomod-sdist")
    built = run(
        [
            sys.executable,
            "-m",
            "build",
            "--sdist",
            "--outdir",
            out,
            REPO / "tests" / "data" / "twomod",
        ],
        cwd=out,
        env=None,
    )
    assert built.returncode == 0, built.stdout[-3000:]
    (path,) = out.glob("twomod-1.0.tar.gz")
    return path


def twomod_noxfile(
    where: Path, sdist: Path, link: str, pythons: list, wheelhouse: str, **extra
) -> Path:
    """A noxfile outside the sdist that registers geonox for it (everything from keywords:
    an sdist you do not own has no [tool.geonox]); ``extra`` adds register() keywords."""
    where.mkdir(parents=True, exist_ok=True)
    keywords = dict(
        TWOMOD_KEYWORDS,
        project=str(sdist),
        link=link,
        python=pythons,
        wheelhouse=wheelhouse,
        backend="host",
    )
    keywords.update(extra)
    (where / "noxfile.py").write_text(f"import geonox\n\ngeonox.register(**{keywords!r})\n")
    return where


# ------------------------------------------------ real projects (sdists from PyPI)


def keyword_noxfile(where: Path, **keywords) -> Path:
    """A noxfile outside the project that registers geonox with ``keywords`` only."""
    where.mkdir(parents=True, exist_ok=True)
    (where / "noxfile.py").write_text(f"import geonox\n\ngeonox.register(**{keywords!r})\n")
    return where


def shapely_noxfile(where: Path, sdist: Path, *, after: str = "", **keywords) -> Path:
    """The release noxfile of a shapely sdist over a shared GEOS 3.13.1 (``keywords`` add
    to it), its test command shapely's own suite; ``after``: Python run once the suite
    ends, in the same process (what it prints comes last, where the session shows it)."""
    suite = "['--pyargs', 'shapely.tests', '-q', '-p', 'no:cacheprovider']"
    command = (
        f'python -c "import sys, pytest; rc = pytest.main({suite}); {after}; sys.exit(rc)"'
        if after
        else "python -m pytest --pyargs shapely.tests -q -p no:cacheprovider"
    )
    return keyword_noxfile(
        where,
        project=str(sdist),
        deps=["geos"],
        versions={"geos": "3.13.1"},
        link="shared",
        test_requires=["pytest"],
        test_command=command,
        **keywords,
    )


def suite_results(out: str) -> list[tuple[int, int]]:
    """(passed, failed) of each pytest summary the test sessions printed."""
    found = []
    for line in re.findall(r"(?m)^.*\d+ passed.* in [\d.]+s.*$", out):
        passed = int(re.search(r"(\d+) passed", line).group(1))
        failed = re.search(r"(\d+) (?:failed|error)", line)
        found.append((passed, int(failed.group(1)) if failed else 0))
    return found


def grafted_once(
    wheel: Path, package: str, libraries: dict[str, str], api: tuple[str, ...], tmp_path: Path
) -> None:
    """Each library in ``libraries`` (soname stem -> version suffix) is grafted exactly
    once, every module that needs it names that one copy, and no module defines the
    library's API (no static copy beside the grafted one)."""
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        libs = [n for n in names if n.startswith(f"{package}.libs/") and not n.endswith("/")]
        for stem, suffix in libraries.items():
            copies = [
                n
                for n in libs
                if re.fullmatch(rf"{package}\.libs/{stem}-[0-9a-f]{{8}}\.so\.{suffix}", n)
            ]
            assert len(copies) == 1, (stem, libs)
        assert len(libs) == len(libraries), libs
        modules = [n for n in names if n.endswith(".so") and not n.startswith(f"{package}.libs/")]
        assert modules, names
        users = 0
        for module in modules:
            path = tmp_path / Path(module).name
            path.write_bytes(zf.read(module))
            info = read_elf(path)
            bundled = [
                n for n in info.needed if any(n.startswith(stem + "-") for stem in libraries)
            ]
            users += bool(bundled)
            assert all(f"{package}.libs/{n}" in libs for n in bundled), (module, info.needed)
            assert not any(s.name.startswith(api) for s in info.exported), module
            assert all(p.startswith("$ORIGIN") for p in info.rpath + info.runpath), module
        assert users, f"no module of {wheel.name} links the grafted libraries"


def verify_errors(wheel: Path, env: dict, cwd: Path) -> list:
    report = json.loads(
        run([sys.executable, "-m", "geonox", "verify", "--json", wheel], cwd=cwd, env=env).stdout
    )[0]
    errors = [v for v in report["violations"] if v["severity"] == "error"]
    assert report["ok"] == (not errors) and report["errors"] == len(errors), report
    return errors


#: The test files that build whole prefixes, longest first: under pytest-xdist (``--dist
#: loadfile --no-loadscope-reorder``) files go to the workers in collection order, so the
#: longest start first and the short ones fill in around them (pytest_xdist_make_scheduler:
#: as a worker comes to the last test of its file).
HEAVY_FIRST = (
    "test_musllinux.py",
    "test_zig.py",
    "test_containers.py",
    "test_gdal_cross.py",
    "test_gdal.py",
    "test_real_projects.py",
    "test_e2e.py",
)

#: What makes a test slow (out of the fast lane, ``nox -s fast``): a fixture that needs the
#: source mirror, builds a dependency, runs the main job, needs the container engine (its
#: stand-in images, registries) or npm; and the markers that say the same.  A test that
#: compiles or downloads without one of these carries ``@pytest.mark.slow`` itself.
SLOW_FIXTURES = frozenset({
    "mirror", "geonox_env", "no_engine_env", "main_job", "twomod_sdist", "actionlint_modules",
    "infra", "image", "image_x86", "image_arm", "registry", "zig_aarch64", "built_pythons",
})  # fmt: skip
SLOW_MARKERS = ("e2e", "containers", "network")


def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile``, with the next file given to a worker only when it is down to
    the last test of its current one (xdist's own waits for two left).  A file whose last
    two tests are long builds (test_gdal_cross: two GDALs, about 25 minutes) otherwise has
    the next heavy file queued behind it on the same worker, while the other worker drains
    everything else and idles at the end.  One test must stay ahead: a worker runs a test
    once it knows the next (its teardown depends on it)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class LastTestAhead(LoadFileScheduling):
        def _reschedule(self, node) -> None:
            if node.shutting_down:
                return
            if not self.workqueue:
                node.shutdown()
                return
            if self._pending_of(self.assigned_work[node]) <= 1:
                self._assign_work_unit(node)

    return LastTestAhead(config, log)


def pytest_collection_modifyitems(session, config, items):
    def rank(item) -> int:
        name = item.path.name
        return HEAVY_FIRST.index(name) if name in HEAVY_FIRST else len(HEAVY_FIRST)

    for item in items:
        if SLOW_FIXTURES.intersection(item.fixturenames) or any(
            item.get_closest_marker(m) for m in SLOW_MARKERS
        ):
            item.add_marker(pytest.mark.slow)
    items.sort(key=rank)  # stable: each file's own order is kept
