"""The example's x86_64 dependency prefix: a cold local build vs a pull from an OCI registry,
measured in this run on this machine.

    python bench/remote_cache.py [--registry 127.0.0.1:5000] [--project examples/geodemo] [--backend zig]

Cache A (empty, ccache off) builds the prefix (``nox -s deps-x86_64``) and pushes it
(``GEONOX_CACHE_PUSH=1``) to a fresh repository of the registry; cache B (empty, another
path) runs the same session with the registry as its remote and pulls.  Prints both times
and their ratio (goal of issue 12: the pull at most 5 % of the cold build).  The registry
is any distribution registry; the local one ``scripts/ci_setup.sh`` starts is the default.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_deps(project: Path, env: dict) -> tuple[float, str]:
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "nox", "-s", "deps-x86_64"],
        cwd=project,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    seconds = time.monotonic() - t0
    if done.returncode != 0:
        sys.exit(done.stdout[-4000:])
    return seconds, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", default="127.0.0.1:5000")
    parser.add_argument("--project", default=str(REPO / "examples" / "geodemo"))
    parser.add_argument(
        "--backend",
        default="zig",
        choices=("zig", "host", "docker", "podman", "auto"),
        help="the copy's backend (default zig: the example's own on a machine "
        "without a container engine, whatever this machine runs)",
    )
    args = parser.parse_args()
    remote = f"oci://{args.registry}/geonox-bench-{uuid.uuid4().hex[:8]}"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GEONOX_CACHE", "CCACHE_"))}
    base.setdefault("GEONOX_MIRROR", str(REPO.parent / "shared" / "mirror"))
    with tempfile.TemporaryDirectory(prefix="geonox-bench-") as tmp:
        project = Path(tmp) / "project"
        shutil.copytree(args.project, project, ignore=shutil.ignore_patterns("wheelhouse", "build"))
        (project / "noxfile.py").write_text("import geonox\ngeonox.register()\n")
        pyproject = project / "pyproject.toml"
        pyproject.write_text(
            pyproject.read_text().replace(
                "[tool.geonox]\n", f'[tool.geonox]\nbackend = "{args.backend}"\n', 1
            )
        )
        cold, out = run_deps(
            project,
            dict(
                base,
                GEONOX_CACHE_DIR=f"{tmp}/a",
                GEONOX_CCACHE="0",
                GEONOX_CACHE_REMOTE=remote,
                GEONOX_CACHE_PUSH="1",
            ),
        )
        pushed = re.findall(r"pushed (\S+ \S+) \(static\)", out)
        pull, out = run_deps(
            project, dict(base, GEONOX_CACHE_DIR=f"{tmp}/elsewhere/b", GEONOX_CACHE_REMOTE=remote)
        )
        pulled = re.findall(r"pulled (\S+ \S+) \(static\)", out)
        if "built in" in out or len(pulled) != len(pushed):
            sys.exit(f"the pull built something or missed an artifact:\n{out[-3000:]}")
    print(f"backend {args.backend}")
    print(f"cold build + push of {', '.join(pushed)}: {cold:.1f} s")
    print(f"pull into an empty cache elsewhere:      {pull:.1f} s")
    print(f"pull / cold build: {pull / cold:.3f} ({pull / cold * 100:.1f} %; goal <= 5 %)")


if __name__ == "__main__":
    main()
