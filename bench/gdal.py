"""What GDAL costs (issue 21), measured in this one run, in a fresh cache:

    GEONOX_MIRROR=../shared/mirror python bench/gdal.py [--expat PATH] [--no-zig]

1. GDAL cold on the host (gcc, ccache empty), PROJ, GEOS, SQLite and expat built first
   (their times printed too);
2. GDAL again after a key-only change (its archive repacked: the same files in other
   bytes, another sha256), its compiles ccache hits;
3. GDAL cold under zig for aarch64 (its own ccache entries: another compiler).

Each time is the one the deps step logs for GDAL alone ("gdal 3.10.3 (shared) built in
N s"); nothing is asserted, the ratios are printed.  The mirror's GDAL is Debian's repack
of 3.10.3 (named through the sources table, as the suite does); expat is Debian's 2.7.1
orig tarball (``--expat``, or downloaded from Debian's pool once).
"""

from __future__ import annotations

import argparse
import hashlib
import lzma
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

GDAL = ("gdal_3.10.3+dfsg.orig.tar.xz", "3.10.3")
EXPAT = (
    "https://deb.debian.org/debian/pool/main/e/expat/expat_2.7.1.orig.tar.gz",
    "85372797ff0673a8fc4a6be16466bb5a0ca28c0dcf3c6f7ac1686b4a3ba2aabb",
    "2.7.1",
)
VERSIONS = {"proj": "9.1.1", "geos": "3.13.1", "sqlite": "3.52.0"}
BUILT = re.compile(
    r"(\w+) ([\d.]+) \((shared|static)\) built in ([\d.]+) s(?: \(ccache: (\d+) of (\d+))?"
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def expat_archive(given: str | None, root: Path) -> Path:
    if given:
        return Path(given).resolve()
    dest = root / Path(EXPAT[0]).name
    with urllib.request.urlopen(EXPAT[0], timeout=300) as r:
        dest.write_bytes(r.read())
    if sha256(dest) != EXPAT[1]:
        sys.exit(f"{EXPAT[0]}: sha256 mismatch")
    return dest


def noxfile(where: Path, gdal: Path, expat: Path, **keywords) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    sources = {
        "gdal": {"version": GDAL[1], "url": gdal.as_uri(), "sha256": sha256(gdal)},
        "expat": {"version": EXPAT[2], "url": expat.as_uri(), "sha256": EXPAT[1]},
    }
    args = dict(project=str(where), deps=["gdal"], versions=VERSIONS, sources=sources, **keywords)
    (where / "pyproject.toml").write_text('[project]\nname = "bench"\nversion = "0"\n')
    (where / "noxfile.py").write_text(f"import geonox\n\ngeonox.register(**{args!r})\n")
    return where


def deps(where: Path, arch: str, env: dict, log: Path) -> dict[str, tuple[float, str]]:
    """name -> (seconds, ccache hits "h/n") of each dependency the deps step built."""
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "nox", "-s", f"deps-{arch}"],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
    )
    log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        sys.exit(f"deps-{arch} failed; see {log}")
    found = {}
    for m in BUILT.finditer(proc.stdout + proc.stderr):
        found[m.group(1)] = (float(m.group(4)), f"{m.group(5)}/{m.group(6)}" if m.group(5) else "-")
    found["(step)"] = (round(time.monotonic() - start, 1), "-")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--expat", help="Debian's expat_2.7.1.orig.tar.gz, if at hand")
    parser.add_argument("--no-zig", action="store_true", help="skip the zig aarch64 build")
    args = parser.parse_args()
    mirror = Path(os.environ.get("GEONOX_MIRROR", Path(__file__).parents[2] / "shared" / "mirror"))
    gdal = mirror.resolve() / GDAL[0]
    if not gdal.is_file():
        sys.exit(f"no {GDAL[0]} in {mirror}: set GEONOX_MIRROR")
    with tempfile.TemporaryDirectory(prefix="geonox-bench-gdal-") as tmp:
        root = Path(tmp)
        env = dict(
            os.environ,
            GEONOX_CACHE_DIR=str(root / "cache"),
            CCACHE_DIR=str(root / "ccache"),
            GEONOX_MIRROR=str(mirror.resolve()),
        )
        expat = expat_archive(args.expat, root)
        rows = []
        cold = deps(noxfile(root / "host", gdal, expat, backend="host"), "x86_64", env,
                    root / "cold.log")  # fmt: skip
        rows += [(f"host cold: {n}", *v) for n, v in cold.items()]
        # the same files in other bytes: another sha256, another key, the same compiles
        repacked = root / "repacked" / GDAL[0]
        repacked.parent.mkdir()
        repacked.write_bytes(lzma.compress(lzma.decompress(gdal.read_bytes()), preset=1))
        warm = deps(noxfile(root / "rekeyed", repacked, expat, backend="host"), "x86_64", env,
                    root / "rekeyed.log")  # fmt: skip
        rows += [("host key-only rebuild (ccache): gdal", *warm["gdal"])]
        zig = {}
        if not args.no_zig:
            zig = deps(
                noxfile(root / "zig", gdal, expat, backend="zig", archs=["aarch64"]),
                "aarch64",
                env,
                root / "zig.log",
            )
            rows += [(f"zig aarch64 cold: {n}", *v) for n, v in zig.items()]
    width = max(len(r[0]) for r in rows)
    print(f"{'':{width}}  seconds  ccache hits")
    for name, seconds, hits in rows:
        print(f"{name:{width}}  {seconds:7.1f}  {hits}")
    g = cold["gdal"][0]
    print(f"\nkey-only rebuild / cold (host): {warm['gdal'][0] / g:.2f}")
    if zig:
        print(f"zig aarch64 cold / host cold:   {zig['gdal'][0] / g:.2f}")
    print(f"({os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
