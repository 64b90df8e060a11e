"""aarch64 deps + wheel, side by side: the QEMU container backend vs the zig cross backend,
measured in this run on this machine, each with an empty geonox cache.

    python bench/aarch64_backends.py --image REF [--project examples/geodemo] [--backends docker,zig]

REF is a pinned-able aarch64 manylinux(-like) image, e.g. the stand-in the tests push:
``python tests/standin.py aarch64`` prints it.  The project is copied to a temp dir and
its [tool.geonox] table replaced, so the repo is not touched.  Prints seconds per backend
and the ratio (goal of issue 5: zig at least 5x faster than QEMU).
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
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def project_copy(src: Path, dest: Path, backend: str, image: str, policy: str) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("wheelhouse", "build"))
    text = (dest / "pyproject.toml").read_text()
    table = text[text.index("[tool.geonox]") :]
    versions = (
        table[table.index("[tool.geonox.versions]") :] if "[tool.geonox.versions]" in table else ""
    )
    deps = re.search(r"^deps = .*$", table, re.M)
    head = text[: text.index("[tool.geonox]")]
    (dest / "pyproject.toml").write_text(
        head
        + "\n".join(
            [
                "[tool.geonox]",
                f'backend = "{backend}"',
                'archs = ["aarch64"]',
                'python = ["3.9"]',
                f'policy = "{policy}"',
                f'images = {{ aarch64 = "{image}" }}',
                'container-env = ["PIP_CERT"]',
                deps.group(0) if deps else "",
                "",
                versions,
            ]
        )
    )
    (dest / "noxfile.py").write_text("import geonox\ngeonox.register()\n")
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True, help="aarch64 image for the container backend")
    parser.add_argument("--project", default=str(REPO / "examples" / "geodemo"))
    parser.add_argument("--backends", default="docker,zig")
    parser.add_argument("--policy", default="manylinux_2_31")
    args = parser.parse_args()
    env = dict(os.environ)
    env.setdefault("GEONOX_MIRROR", str(REPO.parent / "shared" / "mirror"))
    results = {}
    with tempfile.TemporaryDirectory(prefix="geonox-bench-") as tmp:
        for backend in args.backends.split(","):
            proj = project_copy(
                Path(args.project), Path(tmp) / backend, backend, args.image, args.policy
            )
            env["GEONOX_CACHE_DIR"] = str(Path(tmp) / f"cache-{backend}")
            if backend in ("docker", "podman"):
                subprocess.run(
                    [sys.executable, "-m", "geonox", "pin", "--project", str(proj)],
                    check=True,
                    env=env,
                )
            sessions = [
                "deps-aarch64",
                "build-aarch64"
                if "wheel.py-api" in (proj / "pyproject.toml").read_text()
                else "build-aarch64-3.9",
            ]
            log = Path(tmp) / f"{backend}.log"
            start = time.monotonic()
            with open(log, "w") as fh:
                proc = subprocess.run(
                    [sys.executable, "-m", "nox", "-s", *sessions],
                    cwd=proj,
                    env=env,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                )
            results[backend] = time.monotonic() - start
            status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
            print(f"{backend:<8} {results[backend]:8.1f} s  deps + wheel, {status}", flush=True)
            if proc.returncode != 0:
                print(log.read_text()[-3000:])
    if "docker" in results and "zig" in results:
        print(f"QEMU container / zig = {results['docker'] / results['zig']:.1f}x  (goal >= 5x)")


if __name__ == "__main__":
    main()
