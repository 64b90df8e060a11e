"""The deps step with real compilers and the real SQLite tarball (the small recipe; the
full PROJ/GEOS/SQLite prefix is exercised by test_e2e.py)."""
from __future__ import annotations

import hashlib
import subprocess
import tarfile
import textwrap
from pathlib import Path

import pytest

from conftest import nox, sqlite_project
from geonox.config import load_config
from geonox.errors import BuildError
from geonox.steps import Pipeline
from geonox.steps.deps import STAMP, build_deps, planned_prefix
from geonox.targets import host_arch


@pytest.fixture
def env(geonox_env, monkeypatch):
    for k in ("GEONOX_MIRROR", "GEONOX_CACHE_DIR"):
        monkeypatch.setenv(k, geonox_env[k])
    return geonox_env


def test_sqlite_prefix_built_once_then_cached(tmp_path, env):
    logs: list[str] = []
    pipe = Pipeline(load_config(sqlite_project(tmp_path / "p")), log=logs.append)
    prefix = build_deps(pipe, host_arch())
    assert (prefix.path / STAMP).is_file()
    assert (prefix.path / "lib" / "libsqlite3.a").is_file()
    assert (prefix.path / "include" / "sqlite3.h").is_file()
    # the build-machine shell is real and is the pinned release
    out = subprocess.run([str(prefix.path / "bin" / "sqlite3"), ":memory:", "select sqlite_version()"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "3.52.0"
    # the static library is PIC and built with the seed's flags
    log_dir = Path(env["GEONOX_CACHE_DIR"]) / "logs" / f"{host_arch()}-{prefix.key}"
    compile_log = (log_dir / "sqlite-compile.log").read_text()
    assert "-fPIC" in compile_log and "-march=x86-64-v2" in compile_log
    assert {p.name for p in log_dir.iterdir()} >= {"sqlite-compile.log", "sqlite-archive.log",
                                                   "sqlite-shell.log"}
    # second time: nothing is built
    logs.clear()
    again = build_deps(pipe, host_arch())
    assert again.path == prefix.path
    assert logs == [f"deps-{host_arch()}: cached (key {prefix.key}) at {prefix.path}"]


def _broken_sqlite_tarball(dest: Path) -> tuple[Path, str]:
    top = dest / "sqlite-autoconf-broken"
    top.mkdir(parents=True)
    noise = "".join(f"int filler_{i} = {i};\n" for i in range(60))
    (top / "sqlite3.c").write_text(noise + "#error geonox-test-broken-source\n")
    for name in ("sqlite3.h", "sqlite3ext.h", "shell.c"):
        (top / name).write_text("/* empty */\n")
    archive = dest / "sqlite-autoconf-broken.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(top, arcname=top.name)
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest()


def test_failing_step_names_command_and_log_tail_and_leaves_no_prefix(tmp_path, env):
    archive, sha = _broken_sqlite_tarball(tmp_path / "src")
    project = sqlite_project(tmp_path / "p", textwrap.dedent(f"""\
        [tool.geonox.sources.sqlite]
        version = "0.0-broken"
        url = "{archive.as_uri()}"
        sha256 = "{sha}"
        """))
    pipe = Pipeline(load_config(project), log=lambda m: None)
    planned = planned_prefix(pipe, host_arch())
    with pytest.raises(BuildError) as info:
        build_deps(pipe, host_arch())
    msg = str(info.value)
    assert "step 'compile' failed" in msg
    assert "sqlite3.c" in msg and "-c" in msg  # the command
    assert "geonox-test-broken-source" in msg  # the log tail
    assert len(msg.split("--- last 40 lines of the log ---")[1].strip().splitlines()) <= 40
    assert not planned.path.exists(), "a failed build must not leave a prefix behind"

    # Through nox: the session aborts with that paragraph and no traceback.
    result = nox("-s", f"deps-{host_arch()}", cwd=project, env=env)
    assert result.returncode != 0
    assert "step 'compile' failed" in result.stdout
    assert "Traceback" not in result.stdout
    assert not planned.path.exists()
