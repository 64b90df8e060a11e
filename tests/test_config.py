"""[tool.geonox] parsing, the plan, and nox registration (no builds)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from geonox import load_config
from geonox.errors import ConfigError
from geonox.plan import session_specs
from geonox.targets import host_arch

REPO = Path(__file__).resolve().parents[1]


def write_project(tmp_path: Path, geonox_table: str, extra: str = "") -> Path:
    (tmp_path / "pyproject.toml").write_text(
        textwrap.dedent(f"""\
        [project]
        name = "demo"
        version = "1.0"
        requires-python = ">=3.10"
        {extra}
        [tool.geonox]
        """)
        + textwrap.dedent(geonox_table)
    )
    return tmp_path


def test_defaults(tmp_path):
    cfg = load_config(write_project(tmp_path, ""))
    assert cfg.archs == (host_arch(),)
    assert [p.version for p in cfg.pythons] == ["3.10", "3.11", "3.12", "3.13"]  # requires-python
    assert cfg.backend == "auto"
    assert cfg.policies == ("manylinux_2_28",)
    assert [d.name for d in cfg.deps] == ["geos", "sqlite", "proj"]  # sqlite before proj
    assert cfg.repair.exclude == ("libcurl.so.4", "libz.so.1")
    assert cfg.repair.lib_sdir == ".libs"
    assert cfg.wheelhouse == tmp_path / "wheelhouse"
    assert cfg.abi3 is None
    versions = {d.name: d.source.version for d in cfg.deps}
    assert versions == {"proj": "9.8.1", "geos": "3.14.1", "sqlite": "3.53.1"}


def test_full_table_and_alias(tmp_path):
    cfg = load_config(
        write_project(
            tmp_path,
            """\
        archs = ["x86_64", "aarch64"]
        python = ["3.13", "3.9", "3.12"]
        backend = "host"
        policy = "manylinux2014"
        deps = ["proj"]
        test-command = "python -c 'import demo'"
        wheelhouse = "out/wh"
        [tool.geonox.versions]
        proj = "9.1.1"
        [tool.geonox.repair]
        exclude = ["libfoo.so.1"]
        lib-sdir = ".mylibs"
        """,
            extra='[tool.scikit-build]\nwheel.py-api = "cp39"',
        )
    )
    assert cfg.archs == ("x86_64", "aarch64")
    assert [p.version for p in cfg.pythons] == ["3.9", "3.12", "3.13"]
    assert cfg.policies == ("manylinux_2_17",)
    # proj pulls in sqlite, which is built first
    assert [d.name for d in cfg.deps] == ["sqlite", "proj"]
    assert cfg.deps[1].source.version == "9.1.1"
    assert cfg.deps[1].source.sha256.startswith("003cd401")
    assert cfg.deps[1].options == {"tiff": False, "curl": False}
    assert cfg.abi3 == "cp39"
    assert cfg.wheelhouse == tmp_path / "out" / "wh"
    assert cfg.repair.exclude == ("libfoo.so.1",)


def test_overrides_win(tmp_path):
    project = write_project(tmp_path, 'python = ["3.12"]\n')
    cfg = load_config(project, python=["3.11"], test_command="python -V", archs=["x86_64"])
    assert [p.version for p in cfg.pythons] == ["3.11"]
    assert cfg.test_command == "python -V"


def test_python_from_classifiers(tmp_path):
    project = write_project(
        tmp_path,
        "",
        extra=textwrap.dedent("""\
        classifiers = ["Programming Language :: Python :: 3.11",
                       "Programming Language :: Python :: 3.13"]"""),
    )
    cfg = load_config(project)
    assert [p.version for p in cfg.pythons] == ["3.11", "3.13"]


@pytest.mark.parametrize(
    "table, key, bad, allowed",
    [
        ('archs = ["x86_64", "riscv64"]', "archs", "riscv64", "x86_64, aarch64"),
        ('python = ["3.12", "3"]', "python", "'3'", "3.9"),
        ('python = ["3.12", "three"]', "python", "three", "supported"),
        ('deps = ["netcdf"]', "deps", "netcdf", "sqlite, geos, proj, expat, gdal"),
        ('backend = "vagrant"', "backend", "vagrant", "zig"),
        ('policy = "manylinux_2_99"', "policy", "manylinux_2_99", "manylinux_2_28"),
        ('colour = "blue"', "colour", "blue", "known keys"),
        ('[tool.geonox.versions]\nproj = "1.0"', "versions.proj", "1.0", "9.1.1"),
        ('[tool.geonox.versions]\nhdf5 = "1.14"', "versions.hdf5", "hdf5", "known recipes"),
        ("[tool.geonox.repair]\nstrip = true", "repair.strip", "True", "exclude, lib-sdir"),
        ("[tool.geonox.options.proj]\nnetcdf = true", "options.proj.netcdf", "True", "tiff"),
        ('link = "dynamic"', "link", "dynamic", "static, shared"),
        (
            '[tool.geonox.options.geos]\nlink = "both"',
            "options.geos.link",
            "both",
            "static, shared",
        ),
        ('before-build = ""', "before-build", "''", "shell command"),
        ('build-env = { "1X" = "a" }', "build-env.1X", "a", "NAME ="),
        ('test-sources = ["../outside"]', "test-sources", "../outside", "paths inside"),
        ('test-requires = ["pytest", 1]', "test-requires", "1", "list of strings"),
    ],
)
def test_errors_name_key_value_and_allowed(tmp_path, table, key, bad, allowed):
    with pytest.raises(ConfigError) as info:
        load_config(write_project(tmp_path, table))
    msg = str(info.value)
    assert key in msg and bad in msg and allowed in msg, msg


def test_custom_source_requires_sha256(tmp_path):
    with pytest.raises(ConfigError, match="no valid sha256"):
        load_config(
            write_project(
                tmp_path,
                textwrap.dedent("""\
            [tool.geonox.sources.proj]
            version = "9.7.1"
            url = "https://download.osgeo.org/proj/proj-9.7.1.tar.gz"
            """),
            )
        )
    cfg = load_config(
        write_project(
            tmp_path,
            textwrap.dedent("""\
        [tool.geonox.sources.proj]
        version = "9.7.1"
        url = "https://download.osgeo.org/proj/proj-9.7.1.tar.gz"
        sha256 = "6c097dc803c561929cdfcc46e4bf9945ea977611fb31493ad14e88edaeae260f"
        """),
        )
    )
    proj = next(d for d in cfg.deps if d.name == "proj")
    assert proj.source.version == "9.7.1" and proj.source.url.endswith("proj-9.7.1.tar.gz")


def test_session_names_requires_and_tags(tmp_path):
    cfg = load_config(
        write_project(tmp_path, 'archs = ["x86_64", "aarch64"]\npython = ["3.9", "3.12"]\n')
    )
    specs = {s.name: s for s in session_specs(cfg, prefix="geo-")}
    for arch in ("x86_64", "aarch64"):
        assert specs[f"geo-deps-{arch}"].requires == ()
        for v in ("3.9", "3.12"):
            assert specs[f"geo-build-{arch}-{v}"].requires == (f"geo-deps-{arch}",)
            assert specs[f"geo-repair-{arch}-{v}"].requires == (f"geo-build-{arch}-{v}",)
            assert specs[f"geo-ldd-{arch}-{v}"].requires == (f"geo-repair-{arch}-{v}",)
            assert specs[f"geo-test-{arch}-{v}"].requires == (f"geo-repair-{arch}-{v}",)
            assert set(specs[f"geo-wheels-{arch}-{v}"].requires) == {
                f"geo-ldd-{arch}-{v}",
                f"geo-test-{arch}-{v}",
            }
        assert set(specs[f"geo-wheels-{arch}"].requires) == {
            f"geo-wheels-{arch}-3.9",
            f"geo-wheels-{arch}-3.12",
        }
    assert set(specs["geo-test-aarch64-3.12"].tags) == {
        "geonox",
        "test",
        "aarch64",
        "manylinux",
        "cp312",
    }
    assert all(s.doc for s in specs.values())


def test_abi3_builds_once_per_arch(tmp_path):
    cfg = load_config(
        write_project(
            tmp_path,
            'python = ["3.9", "3.12"]\n',
            extra='[tool.scikit-build]\nwheel.py-api = "cp39"',
        )
    )
    names = [s.name for s in session_specs(cfg)]
    builds = [n for n in names if n.startswith("build-")]
    assert builds == [f"build-{host_arch()}"]
    assert f"repair-{host_arch()}-3.12" in names


NOXFILE = """\
import nox, geonox
names = geonox.register(prefix="geo-", python=["3.12"])
@nox.session(python=False)
def mine(session):
    '''the maintainer's own session'''
    session.log("mine ran beside %d geonox sessions" % len(names))
"""


def run_nox(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nox", *args],
        cwd=project,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_register_in_a_foreign_noxfile(tmp_path):
    project = write_project(tmp_path, "")
    (project / "noxfile.py").write_text(NOXFILE)
    listing = run_nox(project, "--list")
    assert listing.returncode == 0, listing.stdout
    arch = host_arch()
    for name in (
        f"geo-deps-{arch}",
        f"geo-build-{arch}-3.12",
        f"geo-repair-{arch}-3.12",
        f"geo-ldd-{arch}-3.12",
        f"geo-test-{arch}-3.12",
        f"geo-wheels-{arch}-3.12",
        f"geo-wheels-{arch}",
        f"geo-images-{arch}",
        "geo-pin-images",
        "mine",
    ):
        assert f"- {name} " in listing.stdout or f"* {name} " in listing.stdout, name
    tagged = run_nox(project, "--list", "-t", "geonox")
    assert "* geo-deps" in tagged.stdout and "* mine" not in tagged.stdout
    # A bare `nox` runs the maintainer's sessions, not geonox's.
    bare = run_nox(project)
    assert bare.returncode == 0, bare.stdout
    assert "mine ran beside 9 geonox sessions" in bare.stdout
    assert "geo-deps" not in bare.stdout


def test_config_error_in_noxfile_is_one_paragraph(tmp_path):
    """A broken [tool.geonox] does not take the maintainer's noxfile down: the error is
    printed once, their own session runs, and a geonox session asked for fails with it."""
    project = write_project(tmp_path, 'archs = ["sparc"]\n')
    (project / "noxfile.py").write_text(NOXFILE)
    listing = run_nox(project, "--list")
    assert listing.returncode == 0, listing.stdout
    assert listing.stdout.count("archs = 'sparc' is not valid") == 1
    assert "* mine" in listing.stdout and f"geo-wheels-{host_arch()}" in listing.stdout
    assert "Traceback" not in listing.stdout
    own = run_nox(project, "-s", "mine")
    assert own.returncode == 0, own.stdout
    assert "Session mine was successful" in own.stdout
    asked = run_nox(project, "-s", f"geo-deps-{host_arch()}")
    assert asked.returncode != 0
    assert (
        f"Session geo-deps-{host_arch()} aborted: [tool.geonox] archs = 'sparc' is not valid"
        in asked.stdout
    ), asked.stdout
    assert "Traceback" not in asked.stdout


def test_typo_in_table_suggests_the_key_and_keeps_the_noxfile_working(tmp_path):
    project = write_project(tmp_path, 'pyhton = ["3.12"]\n')
    (project / "noxfile.py").write_text(NOXFILE)
    own = run_nox(project, "-s", "mine")
    assert own.returncode == 0, own.stdout
    assert "did you mean 'python'?" in own.stdout and "Session mine was successful" in own.stdout
    # the sessions are named as if the typo were not there (register(python=["3.12"]))
    asked = run_nox(project, "-s", f"geo-wheels-{host_arch()}-3.12")
    assert asked.returncode != 0
    assert "pyhton = ['3.12'] is not valid: unknown key; did you mean 'python'?" in asked.stdout
    assert "Traceback" not in asked.stdout and "building" not in asked.stdout


def test_cli_plan_and_error(tmp_path):
    project = write_project(tmp_path, 'deps = ["sqlite"]\nbackend = "host"\n')
    ok = subprocess.run(
        [sys.executable, "-m", "geonox", "plan", "--project", str(project), "--json"],
        text=True,
        capture_output=True,
    )
    assert ok.returncode == 0, ok.stderr
    import json

    plan = json.loads(ok.stdout)
    assert plan["targets"][0]["prefix_key"] and len(plan["targets"][0]["prefix_key"]) == 16
    assert {s["name"] for s in plan["sessions"]} >= {f"deps-{host_arch()}", f"wheels-{host_arch()}"}
    (project / "pyproject.toml").write_text(
        (project / "pyproject.toml").read_text().replace('"sqlite"', '"sqlite", "netcdf"')
    )
    bad = subprocess.run(
        [sys.executable, "-m", "geonox", "plan", "--project", str(project)],
        text=True,
        capture_output=True,
    )
    assert bad.returncode == 2
    assert "deps = 'netcdf'" in bad.stderr and "Traceback" not in bad.stderr


def test_artifact_keys_change_with_their_inputs_and_their_dependencies_only(tmp_path):
    """Per-dependency keys: an input change rebuilds that artifact and what is built against
    it, nothing else; the prefix key follows its artifacts."""
    from geonox.prefix import PrefixEngine
    from geonox.project import Project

    def keys(config) -> dict[str, str]:
        run = Project(config).run("plan")
        with run.backend(config.targets(host_arch())[0]) as backend:
            prefix = PrefixEngine(run, backend).plan
        return {"prefix": prefix.key, **{b.name: b.key for b in prefix.builds}}

    base = keys(load_config(write_project(tmp_path, 'deps = ["proj", "geos"]\nbackend = "host"\n')))
    assert set(base) == {"prefix", "sqlite", "sqlite-shell", "geos", "proj"}
    assert keys(load_config(tmp_path)) == base
    every = {"prefix", "sqlite", "sqlite-shell", "geos", "proj"}
    for override, changed in (
        ({"versions": {"proj": "9.1.1"}}, {"prefix", "proj"}),
        ({"options": {"proj": {"tiff": True}}}, {"prefix", "proj"}),
        ({"options": {"geos": {"link": "shared"}}}, {"prefix", "geos"}),
        ({"options": {"sqlite": {"link": "shared"}}}, {"prefix", "sqlite", "proj"}),
        ({"versions": {"sqlite": "3.52.0"}}, every - {"geos"}),
        ({"link": "shared"}, every - {"sqlite-shell"}),
        # the host's toolchain does not depend on the policy: same builds, reused
        ({"policy": "manylinux_2_17"}, set()),
    ):
        other = keys(load_config(tmp_path, **override))
        assert {n for n in base if other[n] != base[n]} == changed, override
    # a project without PROJ shares the SQLite library artifact (no shell in it)
    (tmp_path / "small").mkdir()
    small = keys(
        load_config(
            write_project(tmp_path / "small", 'deps = ["geos", "sqlite"]\nbackend = "host"\n')
        )
    )
    assert small["sqlite"] == base["sqlite"] and small["geos"] == base["geos"]
    assert "sqlite-shell" not in small and small["prefix"] != base["prefix"]


def test_link_mode_per_dependency(tmp_path):
    project = write_project(
        tmp_path,
        'deps = ["proj", "geos"]\nlink = "shared"\n[tool.geonox.options.sqlite]\nlink = "static"\n',
    )
    cfg = load_config(project)
    assert {d.name: d.link for d in cfg.deps} == {
        "sqlite": "static",
        "geos": "shared",
        "proj": "shared",
    }
    (tmp_path / "d").mkdir()
    assert load_config(write_project(tmp_path / "d", 'deps = ["geos"]\n')).deps[0].link == "static"
    plan = subprocess.run(
        [sys.executable, "-m", "geonox", "plan", "--project", str(project), "--json"],
        text=True,
        capture_output=True,
    )
    import json

    assert {d["name"]: d["link"] for d in json.loads(plan.stdout)["deps"]} == {
        "sqlite": "static",
        "geos": "shared",
        "proj": "shared",
    }


def test_an_sdist_is_a_project(tmp_path, monkeypatch):
    """A release sdist (no [tool.geonox], as one you do not own): unpacked once per content
    into the cache, configured by keywords; its wheelhouse and lock files live beside it."""
    import tarfile

    src = tmp_path / "src" / "demo-1.0"
    src.mkdir(parents=True)
    write_project(src, "")
    (src / "pyproject.toml").write_text(
        (src / "pyproject.toml").read_text().replace("[tool.geonox]\n", "")
    )
    (src / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
    sdist = tmp_path / "release" / "demo-1.0.tar.gz"
    sdist.parent.mkdir()
    with tarfile.open(sdist, "w:gz") as tar:
        tar.add(src, arcname="demo-1.0")
    monkeypatch.setenv("GEONOX_CACHE_DIR", str(tmp_path / "cache"))
    cfg = load_config(sdist, deps=["sqlite"], python=["3.12"])
    assert cfg.sdist == sdist and cfg.name == "demo" and cfg.home == sdist.parent
    assert cfg.project.name == "demo-1.0" and (tmp_path / "cache" / "sdists") in cfg.project.parents
    assert cfg.wheelhouse == sdist.parent / "wheelhouse"
    again = load_config(sdist, deps=["sqlite"])
    assert again.project == cfg.project  # the same content: unpacked once
    sdist.write_bytes(b"not a tarball")
    bad = subprocess.run(
        [sys.executable, "-m", "geonox", "plan", "--project", str(sdist)],
        text=True,
        capture_output=True,
        env=dict(os.environ),
    )
    assert bad.returncode != 0 and "demo-1.0.tar.gz" in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr
    # nothing half-unpacked: the only directory is the first sdist's
    dirs = [p for p in (tmp_path / "cache" / "sdists").iterdir() if p.is_dir()]
    assert dirs == [cfg.project.parents[1]], dirs


def test_source_date_epoch_from_table_environment_git_sdist_or_1980(tmp_path, monkeypatch):
    """The time stamped into wheels: SOURCE_DATE_EPOCH > source-date-epoch > the project's
    last commit (real git) > the sdist's PKG-INFO time > 1980-01-01; bad values are named."""
    import tarfile

    plain = tmp_path / "plain"
    plain.mkdir()
    write_project(plain, "")
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert load_config(plain, environ={}).source_date_epoch == 315532800
    write_project(plain, "source-date-epoch = 1700000000\n")
    assert load_config(plain, environ={}).source_date_epoch == 1700000000
    assert (
        load_config(plain, environ={"SOURCE_DATE_EPOCH": "1710000000"}).source_date_epoch
        == 1710000000
    )
    with pytest.raises(ConfigError, match="SOURCE_DATE_EPOCH='yesterday'"):
        load_config(plain, environ={"SOURCE_DATE_EPOCH": "yesterday"})
    write_project(plain, 'source-date-epoch = "2024-01-01"\n')
    with pytest.raises(ConfigError, match="source-date-epoch"):
        load_config(plain, environ={})

    repo = tmp_path / "repo"
    (repo / "ext").mkdir(parents=True)
    write_project(repo / "ext", "")
    git = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@e",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@e",
        "GIT_COMMITTER_DATE": "1690000000 +0000",
        "GIT_AUTHOR_DATE": "1690000000 +0000",
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
    }
    for argv in (["git", "init", "-q"], ["git", "add", "."], ["git", "commit", "-q", "-m", "x"]):
        subprocess.run(argv, cwd=repo, env=git, check=True)
    # a later commit elsewhere in the repository does not move the extension's time
    (repo / "other.txt").write_text("x")
    git.update(GIT_COMMITTER_DATE="1695000000 +0000", GIT_AUTHOR_DATE="1695000000 +0000")
    for argv in (["git", "add", "."], ["git", "commit", "-q", "-m", "y"]):
        subprocess.run(argv, cwd=repo, env=git, check=True)
    assert load_config(repo / "ext", environ={}).source_date_epoch == 1690000000

    src = tmp_path / "src" / "demo-1.0"
    src.mkdir(parents=True)
    write_project(src, "")
    (src / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
    os.utime(src / "PKG-INFO", (1650000000, 1650000000))
    sdist = tmp_path / "demo-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        tar.add(src, arcname="demo-1.0")
    cfg = load_config(sdist, environ={"GEONOX_CACHE_DIR": str(tmp_path / "cache")})
    assert cfg.source_date_epoch == 1650000000


GDAL_SOURCE = """\
[tool.geonox.sources.gdal]
version = "{version}"
url = "https://mirror.example/gdal_{version}+dfsg.orig.tar.xz"
sha256 = "5ef1d6bf67d9d4d9394f90c96b9873e60aeed7e44b04df04ffd777b3c79c9588"
"""


def test_gdal_links_shared_with_its_dependencies_beside_it(tmp_path):
    """deps = ["gdal"]: libgdal shared (bindings have several modules), PROJ, GEOS and
    SQLite shared beside it (one copy each), expat static inside; a top-level link says
    nothing of GDAL's own default, its options.gdal.link does."""
    cfg = load_config(write_project(tmp_path, 'deps = ["gdal"]\n'))
    links = {d.name: d.link for d in cfg.deps}
    assert links == {
        "sqlite": "shared",
        "proj": "shared",
        "geos": "shared",
        "expat": "static",
        "gdal": "shared",
    }
    assert [d.name for d in cfg.deps][-1] == "gdal"  # built after what it links
    cfg = load_config(tmp_path, link="static")
    assert {d.name: d.link for d in cfg.deps}["gdal"] == "shared"
    assert {d.name: d.link for d in cfg.deps}["proj"] == "static"
    cfg = load_config(tmp_path, options={"gdal": {"link": "static"}})
    assert {d.name: d.link for d in cfg.deps}["gdal"] == "static"
    # without gdal, the default stays static
    assert load_config(tmp_path, deps=["proj"]).deps[-1].link == "static"


def test_gdal_drivers_option_names_gdals_own_drivers(tmp_path):
    write_project(tmp_path, 'deps = ["gdal"]\n')
    cfg = load_config(tmp_path, options={"gdal": {"drivers": ["netCDF", "parquet", "netcdf"]}})
    gdal = next(d for d in cfg.deps if d.name == "gdal")
    assert gdal.options == {"curl": False, "drivers": ("netcdf", "parquet")}
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, options={"gdal": {"drivers": ["netcdff"]}})
    text = str(err.value)
    assert "options.gdal.drivers = 'netcdff'" in text and "did you mean netcdf" in text
    assert "known: aaigrid" in text and "\n" not in text
    with pytest.raises(ConfigError, match="expected a list of names"):
        load_config(tmp_path, options={"gdal": {"drivers": ["gpkg", 3]}})
    with pytest.raises(ConfigError, match=r"drivers \(a list of names\)"):
        load_config(tmp_path, options={"gdal": {"drivers": "netcdf"}})


def test_a_gdal_release_older_than_the_recipe_builds_is_refused(tmp_path):
    write_project(tmp_path, 'deps = ["gdal"]\n' + GDAL_SOURCE.format(version="3.4.3"))
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    assert "sources.gdal.version = '3.4.3'" in str(err.value)
    assert "geonox builds gdal 3.9 or newer" in str(err.value)
    write_project(tmp_path, 'deps = ["gdal"]\n' + GDAL_SOURCE.format(version="3.10.3"))
    gdal = next(d for d in load_config(tmp_path).deps if d.name == "gdal")
    assert gdal.source.version == "3.10.3"


def test_gdal_commands_build_what_the_wheels_need_and_nothing_else():
    """The rendered commands: optional drivers off, the default set and the extra ones on
    (a name that is both a raster and a vector driver turns on both), GDAL's internal
    third-party libraries, iconv on, no apps/tests/docs/bindings, no compiled-in prefix."""
    from geonox.recipes import BuildContext
    from geonox.recipes import gdal as recipe

    class Toolchain:
        cflags = cxxflags = ("-O2",)
        static_cxx_runtime = False  # gcc: libstdc++.so, one per process

        def cmake_args(self, prefix, search=()):
            return [f"-DCMAKE_INSTALL_PREFIX={prefix}"]

    deps = {n: f"@{n.upper()}@" for n in ("proj", "geos", "sqlite", "expat")}
    ctx = BuildContext(
        src="@SRC@", build="@BUILD@", prefix="@PREFIX@", jobs=2,
        options={"curl": False, "drivers": ("netcdf", "vrt")}, toolchain=Toolchain(),
        link="shared", links={"sqlite": "shared", "expat": "static"}, deps=deps,
    )  # fmt: skip
    commands = recipe.commands(ctx)
    names = [c.name for c in commands]
    assert names == ["missing-data", "configure", "no-prefix", "build", "install", "sources-read"]
    configure = commands[1].argv
    for flag in (
        "-DGDAL_BUILD_OPTIONAL_DRIVERS=OFF", "-DOGR_BUILD_OPTIONAL_DRIVERS=OFF",
        "-DGDAL_ENABLE_DRIVER_GTIFF=ON", "-DOGR_ENABLE_DRIVER_GPKG=ON",
        "-DOGR_ENABLE_DRIVER_SHAPE=ON", "-DOGR_ENABLE_DRIVER_GML=ON",
        "-DGDAL_ENABLE_DRIVER_NETCDF=ON", "-DGDAL_ENABLE_DRIVER_VRT=ON",
        "-DOGR_ENABLE_DRIVER_VRT=ON", "-DGDAL_USE_ICONV=ON", "-DGDAL_USE_TIFF_INTERNAL=ON",
        "-DGDAL_USE_ZLIB_INTERNAL=ON", "-DGDAL_USE_EXTERNAL_LIBS=OFF", "-DBUILD_APPS=OFF",
        "-DBUILD_TESTING=OFF", "-DBUILD_PYTHON_BINDINGS=OFF", "-DGDAL_USE_CURL=OFF",
        "-DEXPAT_LIBRARY=@EXPAT@/lib/libexpat.a", "-DSQLite3_LIBRARY=@SQLITE@/lib/libsqlite3.so",
        "-DIconv_IS_BUILT_IN=ON", "-DIconv_LIBRARY=c",
    ):  # fmt: skip
        assert flag in configure, flag
    assert "-DOGR_ENABLE_DRIVER_NETCDF=ON" not in configure  # a raster driver only
    assert any("-UINST_DATA" in a for a in configure)
    assert commands[2].argv[-1] == "@BUILD@/port/cpl_config.h"
    assert not any("--version-script" in a for a in configure)  # gcc: libstdc++ shared
    # after install: the source files the build read, into the artifact (the SBOM's input)
    assert commands[5].argv[-3:] == ("@BUILD@", "/@SRC@/", "@PREFIX@/share/geonox/gdal-sources.txt")


def test_keys_do_not_depend_on_where_geonox_is_installed(tmp_path):
    """A recipe's version script (zig's one-library GEOS, PROJ, GDAL) is named in its
    commands by path: the key holds the file's content instead, so geonox installed
    elsewhere (another venv, a copy) plans the same keys, and a remote artifact is found."""
    import shutil

    (tmp_path / "p").mkdir()
    project = write_project(
        tmp_path / "p", 'deps = ["gdal"]\nbackend = "zig"\narchs = ["aarch64"]\n'
    )
    copy = tmp_path / "elsewhere"
    shutil.copytree(REPO / "geonox", copy / "geonox", ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ, GEONOX_CACHE_DIR=str(tmp_path / "cache"))
    keys = []
    for path in (REPO, copy):
        done = subprocess.run(
            [sys.executable, "-c", "import sys, runpy; sys.argv = ['geonox', *sys.argv[1:]]; "
             "runpy.run_module('geonox', run_name='__main__')",
             "plan", "--json", "--project", str(project)],
            capture_output=True, text=True, env=dict(env, PYTHONPATH=str(path)), cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        import json

        plan = json.loads(done.stdout)
        assert plan["project"] == str(project)
        (target,) = plan["targets"]
        keys.append({a["name"]: a["key"] for a in target["artifacts"]})
    assert keys[0] == keys[1] and {"gdal", "proj", "geos"} <= set(keys[0])
