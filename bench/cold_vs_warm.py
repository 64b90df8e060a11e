"""Cold vs warm: the README's main job (``nox -s wheels-x86_64``) with an empty cache, then
again with the cache it left.  Prints both times and their ratio, measured in this run.

    GEONOX_MIRROR=../shared/mirror python bench/cold_vs_warm.py [--session wheels-x86_64]

The goal (issue 2): the warm run takes under 15 % of the cold one.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(argv: list[str], env: dict, log: Path) -> float:
    start = time.monotonic()
    with open(log, "w") as fh:
        proc = subprocess.run(argv, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed (exit {proc.returncode}); see {log}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--session", default="wheels-x86_64")
    args = parser.parse_args()
    env = dict(os.environ)
    env.setdefault("GEONOX_MIRROR", str(REPO.parent / "shared" / "mirror"))
    with tempfile.TemporaryDirectory(prefix="geonox-bench-") as tmp:
        env["GEONOX_CACHE_DIR"] = str(Path(tmp) / "cache")
        argv = [sys.executable, "-m", "nox", "-s", args.session]
        cold = timed(argv, env, Path(tmp) / "cold.log")
        warm = timed(argv, env, Path(tmp) / "warm.log")
        warm_log = (Path(tmp) / "warm.log").read_text()
    rebuilt = "built in" in warm_log
    print(f"session      {args.session}")
    print(f"cold         {cold:8.1f} s   (empty cache: fetch, build PROJ/GEOS/SQLite, wheel, repair, ldd, test)")
    print(f"warm         {warm:8.1f} s   (dependencies {'REBUILT' if rebuilt else 'cached'})")
    print(f"warm / cold  {100 * warm / cold:8.1f} %   (goal < 15 %)")
    print(f"cold / warm  {cold / warm:8.1f} x")


if __name__ == "__main__":
    main()
