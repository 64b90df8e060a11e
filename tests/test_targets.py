"""Targets are (arch, policy) and interpreters are CPython versions or free-threaded builds:
how they are planned, named and refused.  Fast: no build, no engine (the interpreter probe
runs real interpreters: this machine's own, and pyenv's shim where pyenv is installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import skip_or_fail

from geonox import load_config
from geonox.backends import Engines, backend_class
from geonox.errors import ConfigError, UserError
from geonox.executors import find_interpreter
from geonox.images import ImageLock, LockEntry, image_for, pinned_image
from geonox.plan import session_specs
from geonox.project import Project
from geonox.steps.test import extension_modules
from geonox.targets import SUPPORTED_PYTHONS, PythonVersion, Target, host_arch, host_libc


def project(tmp_path: Path, table: str, extra: str = "") -> Path:
    (tmp_path / "pyproject.toml").write_text(
        textwrap.dedent("""\
        [project]
        name = "demo"
        version = "1.0"
        requires-python = ">=3.9"
        [tool.geonox]
        """)
        + textwrap.dedent(table)
        + extra
    )
    return tmp_path


def specs(tmp_path: Path, table: str, extra: str = "") -> dict:
    return {s.name: s for s in session_specs(load_config(project(tmp_path, table, extra)))}


def test_python_versions_name_their_abi():
    ft = PythonVersion("3.13t")
    assert (ft.minor, ft.interpreter, ft.tag, ft.abi_dir) == (
        "3.13",
        "cp313",
        "cp313t",
        "cp313-cp313t",
    )
    assert ft.manylinux_exe == "/opt/python/cp313-cp313t/bin/python"
    assert ft.host_exe == "python3.13t"
    plain = PythonVersion("3.13")
    assert (plain.tag, plain.abi_dir, plain.host_exe) == ("cp313", "cp313-cp313", "python3.13")
    order = sorted(map(PythonVersion, ["3.14", "3.13t", "3.9", "3.13"]), key=PythonVersion.sort_key)
    assert [p.version for p in order] == ["3.9", "3.13", "3.13t", "3.14"]


def test_one_manylinux_policy_keeps_todays_session_names(tmp_path):
    names = specs(tmp_path, 'archs = ["x86_64"]\npython = ["3.12"]\n')
    assert {"deps-x86_64", "build-x86_64-3.12", "repair-x86_64-3.12", "wheels-x86_64"} <= set(names)
    assert not [n for n in names if "musl" in n]


def test_two_policies_plan_a_musllinux_target_beside_the_manylinux_one(tmp_path):
    names = specs(
        tmp_path,
        """\
        archs = ["x86_64", "aarch64"]
        python = ["3.12", "3.13t"]
        policy = ["manylinux2014", "musllinux_1_2"]
        """,
    )
    for arch in ("x86_64", "aarch64"):
        musl = f"{arch}-musl"
        assert names[f"deps-{musl}"].requires == ()
        assert names[f"build-{musl}-3.13t"].requires == (f"deps-{musl}",)
        assert names[f"repair-{musl}-3.13t"].requires == (f"build-{musl}-3.13t",)
        assert set(names[f"wheels-{musl}"].requires) == {
            f"wheels-{musl}-3.12",
            f"wheels-{musl}-3.13t",
        }
        # wheels-{arch}: every target's wheels, every Python
        assert set(names[f"wheels-{arch}"].requires) == {
            f"wheels-{arch}-3.12",
            f"wheels-{arch}-3.13t",
            f"wheels-{musl}-3.12",
            f"wheels-{musl}-3.13t",
        }
        assert "musllinux_1_2" in names[f"build-{musl}-3.12"].doc
        assert "manylinux_2_17" in names[f"build-{arch}-3.12"].doc
    assert set(names["test-aarch64-musl-3.13t"].tags) == {
        "geonox",
        "test",
        "aarch64",
        "musllinux",
        "cp313t",
    }
    # one wheels-{arch} only: the manylinux target's label is the arch itself
    assert "wheels-x86_64-manylinux" not in names


def test_abi3_does_not_cover_free_threaded_builds(tmp_path):
    names = specs(
        tmp_path,
        'archs = ["x86_64"]\npython = ["3.9", "3.12", "3.13t", "3.14t"]\n',
        extra='[tool.scikit-build]\nwheel.py-api = "cp39"\n',
    )
    builds = sorted(n for n in names if n.startswith("build-"))
    assert builds == ["build-x86_64", "build-x86_64-3.13t", "build-x86_64-3.14t"]
    assert names["repair-x86_64-3.12"].requires == ("build-x86_64",)
    assert names["repair-x86_64-3.13t"].requires == ("build-x86_64-3.13t",)
    config = load_config(tmp_path)
    proj = Project(config)
    assert proj.build_id(PythonVersion("3.12")) == "abi3"
    assert proj.build_id(PythonVersion("3.13t")) == "cp313t"
    assert proj.build_python(None).version == "3.9"


def test_only_free_threaded_versions_make_no_abi3_build(tmp_path):
    names = specs(
        tmp_path,
        'archs = ["x86_64"]\npython = ["3.13t"]\n',
        extra='[tool.scikit-build]\nwheel.py-api = "cp39"\n',
    )
    assert sorted(n for n in names if n.startswith("build-")) == ["build-x86_64-3.13t"]


def test_three_fourteen_is_planned_even_where_it_cannot_be_installed(tmp_path):
    names = specs(tmp_path, 'archs = ["x86_64"]\npython = ["3.14", "3.14t"]\n')
    assert {"build-x86_64-3.14", "build-x86_64-3.14t", "test-x86_64-3.14t"} <= set(names)


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ('policy = ["manylinux_2_28", "manylinux2014"]', "one manylinux policy at a time"),
        ('policy = ["musllinux_1_1", "musllinux_1_2"]', "one musllinux policy at a time"),
        ('policy = "musllinux_9_9"', "musllinux_1_2"),
        ('python = ["3.12t"]', '"3.13t" for free-threaded'),
        ('images = { "x86_64-glibc" = "a/b:c" }', "x86_64-musl"),
        ('interpreters = { "x86_64-musl" = "relative/bin" }', "absolute"),
    ],
)
def test_bad_targets_are_one_paragraph_naming_the_value(tmp_path, table, says):
    with pytest.raises(ConfigError) as info:
        load_config(project(tmp_path, table + "\n"))
    assert says in str(info.value)
    assert "\n" not in str(info.value).strip()


def test_host_backend_refuses_another_libc_with_the_alternatives(tmp_path):
    config = load_config(project(tmp_path, 'backend = "host"\npolicy = "musllinux_1_2"\n'))
    target = config.targets("x86_64")[0]
    other = "musl" if host_libc() == "glibc" else "glibc"
    if target.libc != other:
        skip_or_fail("needs a glibc host (the musllinux target is then another libc)")
    with pytest.raises(UserError) as info:
        backend_class(config, target, Engines({}))
    text = str(info.value)
    assert 'backend = "zig"' in text and "quay.io/pypa/musllinux_1_2_x86_64" in text
    # the same project's manylinux target builds on the host as before
    config = load_config(project(tmp_path, 'backend = "host"\n'))
    assert backend_class(config, config.targets("x86_64")[0], Engines({})).name == "host"


def test_images_and_their_lock_are_keyed_by_target_label(tmp_path):
    musl = Target("aarch64", "musllinux_1_2")
    assert image_for({}, musl) == "quay.io/pypa/musllinux_1_2_aarch64:latest"
    assert image_for({"aarch64-musl": "r.example/m:1"}, musl) == "r.example/m:1"
    assert (
        image_for({"aarch64": "r.example/g:1"}, musl) == "quay.io/pypa/musllinux_1_2_aarch64:latest"
    )
    digest = "sha256:" + "ab" * 32
    lock = ImageLock(tmp_path / "geonox-images.lock")
    lock.entries["aarch64-musl"] = LockEntry("aarch64-musl", image_for({}, musl), digest)
    lock.save()
    again = ImageLock.load(tmp_path)
    pinned = pinned_image(image_for({}, musl), musl, again, allow_unpinned=False)
    assert pinned.digest == digest and pinned.arch == "aarch64"
    # the manylinux target of the same arch is not pinned by the musl entry
    glibc = Target("aarch64", "manylinux_2_28")
    with pytest.raises(UserError, match="unpinned"):
        pinned_image(image_for({}, glibc), glibc, again, allow_unpinned=False)


def test_extension_modules_are_named_as_python_imports_them(tmp_path):
    import zipfile

    wheel = tmp_path / "demo-1.0-cp313-cp313t-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name in (
            "demo/_core.cpython-313t-x86_64-linux-gnu.so",
            "demo/sub/_fast.abi3.so",
            "demo.libs/libgeos-1a2b3c4d.so.3.13.1",
            "demo/__init__.py",
            "demo-1.0.dist-info/RECORD",
        ):
            zf.writestr(name, b"")
    assert extension_modules(wheel) == ["demo._core", "demo.sub._fast"]


# ------------------------------------------------------------------ interpreters


def test_an_interpreter_of_another_build_is_refused_before_anything_is_built(tmp_path):
    # this machine's own interpreter, named as a free-threaded one
    if host_libc() != "glibc":
        skip_or_fail("written for a glibc host")
    fake = tmp_path / "bin"
    fake.mkdir()
    minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    (fake / f"python{minor}t").symlink_to(sys.executable)
    with pytest.raises(UserError) as info:
        find_interpreter(PythonVersion(f"{minor}t"), [str(fake)])
    arch = host_arch()
    assert f"not the {arch} glibc free-threaded CPython {minor}" in str(info.value)
    # found where it is, as what it is
    (fake / f"python{minor}").symlink_to(sys.executable)
    assert find_interpreter(PythonVersion(minor), [str(fake)]) == str(fake / f"python{minor}")
    # and a glibc interpreter is not a musl one
    with pytest.raises(UserError, match=f"not the {arch} musl CPython"):
        find_interpreter(PythonVersion(minor), [str(fake)], libc="musl")
    # nor one of this arch an interpreter of another (configured for a foreign target)
    other = "aarch64" if arch == "x86_64" else "x86_64"
    with pytest.raises(UserError) as info:
        find_interpreter(PythonVersion(minor), [str(fake)], arch=other)
    assert f"is an {arch} glibc CPython {minor}, not the {other} glibc CPython" in str(info.value)


def test_a_missing_free_threaded_interpreter_says_how_to_get_one(tmp_path):
    with pytest.raises(UserError) as info:
        find_interpreter(PythonVersion("3.14t"), [str(tmp_path)])
    text = str(info.value)
    assert "python3.14t" in text and "--disable-gil" in text and str(tmp_path) in text


def pyenv_not_global(tmp_path: Path) -> tuple[str, dict[str, str]]:
    """pyenv's own shims, as a new user has them: python3.X on PATH for every installed
    version, exiting 127 unless that version is a global one.  Returns a minor version and
    an environment in which only another version is "global" (PYENV_VERSION)."""
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        skip_or_fail("needs pyenv (this machine's kind has it)")
    root = subprocess.run([pyenv, "root"], capture_output=True, text=True).stdout.strip()
    versions = subprocess.run(
        [pyenv, "versions", "--bare"], capture_output=True, text=True
    ).stdout.split()
    minors = sorted(
        {".".join(v.split(".")[:2]) for v in versions} & set(SUPPORTED_PYTHONS),
        key=lambda m: PythonVersion(m).sort_key(),
    )
    if len(minors) < 2:
        skip_or_fail("needs two CPython versions installed by pyenv")
    shims = Path(root) / "shims"
    if not (shims / f"python{minors[0]}").exists():
        subprocess.run([pyenv, "rehash"], check=True)
    other = next(v for v in versions if v.startswith(minors[1] + "."))
    env = dict(os.environ, PYENV_VERSION=other, PATH=f"{shims}{os.pathsep}{os.environ['PATH']}")
    return minors[0], env


def test_pyenvs_shim_for_a_version_that_is_not_global_is_named_with_the_fix(tmp_path):
    minor, env = pyenv_not_global(tmp_path)
    old = dict(os.environ)
    os.environ.update(env)
    try:
        with pytest.raises(UserError) as info:
            find_interpreter(PythonVersion(minor))
    finally:
        os.environ.clear()
        os.environ.update(old)
    text = str(info.value)
    assert "exit 127" in text and "pyenv global" in text and f"python{minor}" in text


def test_a_broken_interpreter_stops_the_deps_step_before_anything_is_built(tmp_path):
    """As a new user meets it: `nox -s wheels-x86_64` with pyenv's shim for a version that
    is not global.  The deps session (the first) says so in geonox's words and fetches and
    builds nothing; before, the build step failed minutes later with "step 'venv' failed
    (exit status 127)"."""
    minor, env = pyenv_not_global(tmp_path)
    (tmp_path / "p").mkdir()
    where = project(
        tmp_path / "p",
        f'backend = "host"\ndeps = ["sqlite"]\npython = ["{minor}"]\n',
    )
    (where / "noxfile.py").write_text("import geonox\ngeonox.register()\n")
    cache = tmp_path / "cache"
    done = subprocess.run(
        [sys.executable, "-m", "nox", "-s", f"deps-{host_arch()}"],
        cwd=where,
        env=dict(env, GEONOX_CACHE_DIR=str(cache), GEONOX_OFFLINE="1"),
        capture_output=True,
        text=True,
    )
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert f"'python{minor}' is on PATH" in out and "pyenv global" in out, out[-2000:]
    assert "Traceback" not in out, out[-2000:]
    assert not list(cache.glob("sources/*/*")) and not list(cache.glob("deps/*/*")), out
