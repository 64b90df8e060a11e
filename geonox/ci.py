"""``python -m geonox ci github``: a GitHub Actions workflow written from the plan.

One job per arch on a runner that runs that arch natively (x86_64 on ``ubuntu-latest``,
aarch64 on ``ubuntu-24.04-arm``), or on ``ubuntu-latest`` when the backend is zig (a cross
build; its aarch64 tests run under QEMU).  Each job restores the dependency cache keyed by
the prefix key ``python -m geonox plan --json`` gives on that runner (or, with a remote
cache configured, lets geonox pull from it and push on the default branch only), runs
``nox -s wheels-{arch}`` as its one build command and uploads the wheelhouse.  A publish
job on tags uploads every wheel and the sdist with PyPI trusted publishing.  With a remote
cache, a weekly scheduled job per arch rebuilds what the cache holds here and compares it
(``python -m geonox cache check``): it only pulls, so a pusher's artifact that is not what
its inputs build is found even when nobody pushed since.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from geonox.config import Config
from geonox.images import ImageLock, image_for, pinned_image
from geonox.targets import PythonVersion

#: The GitHub-hosted runner that runs each arch natively.
NATIVE_RUNNERS = {"x86_64": "ubuntu-latest", "aarch64": "ubuntu-24.04-arm"}
#: zig cross-builds every arch on the x86_64 runner.
CROSS_RUNNER = "ubuntu-latest"
#: Actions, by the major version their documentation names.
ACTIONS = {
    "checkout": "actions/checkout@v4",
    "setup-python": "actions/setup-python@v5",
    "cache": "actions/cache@v4",
    "upload": "actions/upload-artifact@v4",
    "download": "actions/download-artifact@v4",
    "qemu": "docker/setup-qemu-action@v3",
    "publish": "pypa/gh-action-pypi-publish@release/v1",
    "login": "docker/login-action@v3",
}
#: Push to the remote cache on pushes to the default branch only: a pull request cannot
#: poison it.
PUSH_ON_DEFAULT_BRANCH = (
    "${{ github.event_name == 'push' && github.ref == format('refs/heads/{0}', "
    "github.event.repository.default_branch) && '1' || '0' }}"
)
#: When the scheduled job rebuilds what the remote cache holds and compares (``cache
#: check``): weekly, Monday 04:17 UTC (off the hour, as GitHub asks of schedules).
CHECK_CRON = "17 4 * * 1"
#: geonox's own interpreter on the runner.
RUNNER_PYTHON = "3.12"
#: geonox's cache on a Linux runner (platformdirs' user cache directory): what
#: actions/cache saves and restores of it.
CACHE_DIR = "~/.cache/geonox"


def runner_for(arch: str, backend: str) -> str:
    return CROSS_RUNNER if backend == "zig" else NATIVE_RUNNERS[arch]


def _repo_root(project: Path) -> Path:
    try:
        out = subprocess.run(
            ["git", "-C", str(project), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return project
    return (
        Path(out.stdout.strip()).resolve()
        if out.returncode == 0 and out.stdout.strip()
        else project
    )


def _default_branch(root: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "symbolic-ref", "--short", "refs/remotes/origin/HEAD"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "main"
    ref = out.stdout.strip()
    return ref.split("/", 1)[1] if out.returncode == 0 and "/" in ref else "main"


def unpinned_images(config: Config) -> list[str]:
    """The archs whose runner builds in a container image (backend docker, podman, or
    auto, which finds docker on a runner) that nothing pins: those jobs would refuse to
    build (unless allow-unpinned says otherwise)."""
    if config.backend not in ("docker", "podman", "auto") or config.allow_unpinned:
        return []
    lock = ImageLock.load(config.home)
    return [
        target.label
        for arch in config.archs
        for target in config.targets(arch)
        if pinned_image(image_for(config.images, target), target, lock, allow_unpinned=True).digest
        is None
    ]


def workflow(config: Config, *, geonox_requirement: str, prefix: str = "") -> dict[str, Any]:
    """The workflow as data (what :func:`to_yaml` writes)."""
    root = _repo_root(config.project)
    project = os.path.relpath(config.project, root)
    wheelhouse = os.path.relpath(config.wheelhouse, root)
    include = [{"arch": arch, "runner": runner_for(arch, config.backend)} for arch in config.archs]
    # host and zig builds (and their tests) use the runner's CPythons; a container its image's
    # (on a GitHub runner, backend "auto" finds docker)
    host_pythons = config.backend in ("host", "zig")
    pythons = [p.version for p in config.pythons]
    plan_args = "" if project == "." else f" --project {project}"
    # the project's own noxfile, else the repository's (which registers the project)
    own = config.project / "noxfile.py"
    nox_args = f" -f {os.path.relpath(own, root)}" if project != "." and own.is_file() else ""
    # checkout, the interpreters, nox and geonox: what every job on a runner starts with
    setup: list[dict[str, Any]] = [
        {"uses": ACTIONS["checkout"]},
        {
            "uses": ACTIONS["setup-python"],
            "with": {
                "python-version": "\n".join(
                    sorted(
                        set(pythons) | {RUNNER_PYTHON}, key=lambda v: PythonVersion(v).sort_key()
                    )
                    if host_pythons
                    else [RUNNER_PYTHON]
                )
                + "\n"
            },
        },
        {
            "name": "Install nox and geonox",
            "run": f"python{RUNNER_PYTHON} -m pip install nox '{geonox_requirement}'",
        },
    ]
    steps = list(setup)
    if config.backend == "zig" and any(a != "x86_64" for a in config.archs):
        steps.append(
            {
                "name": "QEMU for the cross-built wheels' tests",
                "if": "matrix.arch != 'x86_64'",
                "uses": ACTIONS["qemu"],
            }
        )
    build: dict[str, Any] = {
        "name": "Build, repair, check and test the wheels",
        "run": f"nox{nox_args} -s {prefix}wheels-${{{{ matrix.arch }}}}",
    }
    remote = config.cache_remote
    ghcr = remote is not None and remote.registry == "ghcr.io"
    login: dict[str, Any] | None = None  # the remote cache's registry, when there is one
    if remote is None:
        steps.append(
            {
                "name": "Dependency prefix key",
                "id": "plan",
                "run": (
                    f'python{RUNNER_PYTHON} -m geonox plan --json --arch "$ARCH"{plan_args} |\n'
                    f"python{RUNNER_PYTHON} -c 'import json, sys; "
                    't = json.load(sys.stdin)["targets"][0]; '
                    'print("key=" + t["prefix_key"])\' >> "$GITHUB_OUTPUT"\n'
                ),
                "env": {"ARCH": "${{ matrix.arch }}"},
            }
        )
        steps.append(
            {
                "name": "Dependency cache",
                "uses": ACTIONS["cache"],
                "with": {
                    "path": "\n".join(f"{CACHE_DIR}/{d}" for d in ("sources", "deps", "prefixes"))
                    + "\n",
                    "key": "geonox-${{ runner.os }}-${{ matrix.arch }}-"
                    "${{ steps.plan.outputs.key }}",
                },
            }
        )
    else:
        # geonox pulls every artifact it lacks from the registry; a failed login only
        # means building here (and no push)
        login = {
            "name": f"Log in to {remote.registry} (the dependency cache)",
            "uses": ACTIONS["login"],
            "continue-on-error": True,
            "with": {
                "registry": remote.registry,
                "username": "${{ github.actor }}" if ghcr else "${{ secrets.GEONOX_CACHE_USER }}",
                "password": "${{ secrets.GITHUB_TOKEN }}"
                if ghcr
                else "${{ secrets.GEONOX_CACHE_TOKEN }}",
            },
        }
        steps.append(login)
        build["env"] = {"GEONOX_CACHE_PUSH": PUSH_ON_DEFAULT_BRANCH}
    steps += [
        build,
        {
            "uses": ACTIONS["upload"],
            "with": {
                "name": "wheels-${{ matrix.arch }}",
                "path": f"{wheelhouse}/*.whl",
                "if-no-files-found": "error",
            },
        },
    ]
    jobs: dict[str, Any] = {
        "wheels": {
            "name": "wheels-${{ matrix.arch }}",
            "runs-on": "${{ matrix.runner }}",
            "strategy": {"fail-fast": False, "matrix": {"include": include}},
            **({"permissions": {"contents": "read", "packages": "write"}} if ghcr else {}),
            "steps": steps,
        },
        "sdist": {
            "runs-on": CROSS_RUNNER,
            "steps": [
                {"uses": ACTIONS["checkout"]},
                {"uses": ACTIONS["setup-python"], "with": {"python-version": RUNNER_PYTHON}},
                {
                    "run": "python -m pip install build\n"
                    f"python -m build --sdist --outdir dist {project}\n"
                },
                {
                    "uses": ACTIONS["upload"],
                    "with": {
                        "name": "sdist",
                        "path": "dist/*.tar.gz",
                        "if-no-files-found": "error",
                    },
                },
            ],
        },
        "publish": {
            "needs": ["wheels", "sdist"],
            "if": "startsWith(github.ref, 'refs/tags/')",
            "runs-on": CROSS_RUNNER,
            "environment": {"name": "pypi", "url": f"https://pypi.org/p/{config.name}"},
            "permissions": {"id-token": "write"},
            "steps": [
                {"uses": ACTIONS["download"], "with": {"path": "dist", "merge-multiple": True}},
                {"uses": ACTIONS["publish"]},
            ],
        },
    }
    on: dict[str, Any] = {
        "push": {"branches": [_default_branch(root)], "tags": ["v*"]},
        "pull_request": {},
        "workflow_dispatch": {},
    }
    if login is not None:
        # what the shared cache holds, rebuilt here and compared (never pushed from)
        on["schedule"] = [{"cron": CHECK_CRON}]
        for job in ("wheels", "sdist"):
            jobs[job]["if"] = "github.event_name != 'schedule'"
        jobs["cache-check"] = {
            "name": "cache-check-${{ matrix.arch }}",
            "if": "github.event_name == 'schedule' || github.event_name == 'workflow_dispatch'",
            "runs-on": "${{ matrix.runner }}",
            "strategy": {"fail-fast": False, "matrix": {"include": include}},
            **({"permissions": {"contents": "read", "packages": "read"}} if ghcr else {}),
            "steps": [
                *setup,
                login,
                {
                    "name": "Rebuild what the dependency cache holds and compare",
                    "run": f'python{RUNNER_PYTHON} -m geonox cache check --arch "$ARCH"{plan_args}',
                    "env": {"ARCH": "${{ matrix.arch }}"},
                },
            ],
        }
    return {
        "name": "wheels",
        "on": on,
        "permissions": {"contents": "read"},
        "concurrency": {
            # a scheduled check never cancels a build of the same branch, nor one it
            "group": "${{ github.workflow }}-${{ github.event_name }}-${{ github.ref }}",
            "cancel-in-progress": True,
        },
        "jobs": jobs,
    }


_PLAIN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./@=-]*$")
_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _WORDS and not re.fullmatch(r"[\d.]+", text):
        return text
    return json.dumps(text)  # a JSON string is a YAML double-quoted scalar


def to_yaml(data: Any, indent: int = 0) -> str:
    """Block-style YAML for dicts, lists and scalars; multi-line strings as literal blocks."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            k = _scalar(key)
            if isinstance(value, (dict, list)) and value:
                lines.append(f"{pad}{k}:")
                lines.append(to_yaml(value, indent + 2))
            elif isinstance(value, str) and "\n" in value:
                lines.append(f"{pad}{k}: |")
                lines += [
                    f"{pad}  {line}" if line else "" for line in value.rstrip("\n").split("\n")
                ]
            else:
                lines.append(
                    f"{pad}{k}: {'{}' if value == {} else '[]' if value == [] else _scalar(value)}"
                )
    elif isinstance(data, list):
        for item in data:
            if isinstance(item, dict) and item:
                first = to_yaml(item, indent + 2).split("\n")
                lines.append(f"{pad}- {first[0].lstrip()}")
                lines += first[1:]
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    else:
        lines.append(pad + _scalar(data))
    return "\n".join(lines)


def github_workflow(config: Config, *, geonox_requirement: str, prefix: str = "") -> str:
    head = (
        "# Written by `python -m geonox ci github`: one job per arch on its native runner "
        "(zig: cross on x86_64),\n# the dependency prefix cached by its key, "
        "`nox -s wheels-<arch>` as the build, PyPI trusted publishing on tags.\n"
    )
    return (
        head
        + to_yaml(workflow(config, geonox_requirement=geonox_requirement, prefix=prefix))
        + "\n"
    )
