"""Where a cold build goes (issue 23), measured in this one run:

    GEONOX_MIRROR=../shared/mirror python bench/cold.py [--backend zig|host]
        [--gdal] [--main-job-against REV [--pairs N]] [--no-recipes]

1. Every dependency of the example (sqlite, geos, proj; ``--gdal`` adds expat and gdal)
   built cold by geonox: ``python -m geonox deps`` in a fresh cache (empty ccache, fresh
   zig cache), each recipe's time read from the deps step's log ("geos 3.13.1 (shared)
   built in N s": extraction, configure, build, install, finish).
2. The same commands again **without geonox**: read back from the deps step's logs (each
   command's argv is the first line of its log), the ccache launcher taken out, into a
   fresh source tree unpacked by ``tar -xf`` (as a shell script would; geonox's time has
   its own unpacking), build directory and prefix, run one after another (``cmake -S … -B
   …``, ``cmake --build … --parallel N``, ``cmake --install``).  Printed: its time, the
   ratio geonox / plain (geonox's overhead), the compiler invocations (``Building C/CXX
   object`` lines, or the commands that compile), and the CPU time of every process it
   ran (the children's rusage: the compilers, mostly); that CPU time divided by N is the
   limit no scheduling can beat.
3. ``--main-job-against REV``: the README's main job (``nox -s wheels-x86_64``: deps,
   build, repair, checks and tests on 5 Pythons) cold, for the commit REV (a git
   worktree) and for this tree, one after the other, each with empty caches (geonox, zig,
   uv, pip), no container engine (so ``auto`` is zig, as on a laptop).  ``--pairs N``:
   N of each, alternating, and the ratio of the medians (a whole job's time moved by
   10 to 30 % from run to run here).

Nothing is asserted; the ratios are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

try:
    from geonox.cores import usable_cores
except ImportError:  # a tree from before geonox.cores (run there for its "before" figures)

    def usable_cores() -> int:
        return os.cpu_count() or 1


VERSIONS = {"sqlite": "3.52.0", "geos": "3.13.1", "proj": "9.1.1"}
ARCHIVES = {
    "sqlite": "sqlite-autoconf-3520000.tar.gz",
    "geos": "geos-3.13.1.tar.bz2",
    "proj": "proj-9.1.1.tar.gz",
    "gdal": "gdal_3.10.3+dfsg.orig.tar.xz",
}
BUILT_ANY = re.compile(r"([\w-]+) ([\d.]+)(?: \([^)]*\))? built in ([\d.]+) s")
#: the deps step of a project for x86_64, as its nox session runs it
DEPS = """
import sys
from geonox import load_config
from geonox.prefix import PrefixEngine
from geonox.project import Project
run = Project(load_config(sys.argv[1])).run("deps-x86_64", print)
with run.backend(run.config.targets("x86_64")[0]) as backend:
    PrefixEngine(run, backend).ensure()
"""
COMPILE_LINE = re.compile(r"Building (?:C|CXX) object")


def cold_env(root: Path) -> dict[str, str]:
    """Empty caches under ``root``; no container engine (auto -> zig); the mirror."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GEONOX_", "CCACHE_", "ZIG_", "UV_", "PIP_CACHE", "NOX"))
    }
    env.update(
        GEONOX_CACHE_DIR=str(root / "geonox"),
        ZIG_GLOBAL_CACHE_DIR=str(root / "zig"),
        UV_CACHE_DIR=str(root / "uv"),
        PIP_CACHE_DIR=str(root / "pip"),
        GEONOX_DOCKER="/nonexistent/docker",
        GEONOX_PODMAN="/nonexistent/podman",
        GEONOX_MIRROR=os.environ.get("GEONOX_MIRROR", str(REPO.parent / "shared" / "mirror")),
        PYTHONPATH=str(REPO),  # this tree's geonox, whatever the interpreter has installed
    )
    return env


def project(root: Path, backend: str, deps: list[str]) -> Path:
    """A copy of the example whose [tool.geonox] builds ``deps`` for x86_64 with ``backend``."""
    dest = root / "geodemo"
    if not dest.exists():
        shutil.copytree(
            REPO / "examples" / "geodemo", dest, ignore=shutil.ignore_patterns("wheelhouse")
        )
    text = (dest / "pyproject.toml").read_text()
    versions = "".join(f'{k} = "{v}"\n' for k, v in VERSIONS.items())
    table = f"""
        [tool.geonox]
        archs = ["x86_64"]
        python = ["3.12"]
        backend = "{backend}"
        deps = {json.dumps(deps)}
        test-command = "python -c 'import geodemo'"
    """
    body = text[: text.index("[tool.geonox]")] + textwrap.dedent(table)
    body += "\n[tool.geonox.versions]\n" + versions
    if "gdal" in deps:
        body += 'gdal = "3.10.3"\n\n[tool.geonox.sources.gdal]\n'
        body += f'archive = "{ARCHIVES["gdal"]}"\nversion = "3.10.3"\n'
    (dest / "pyproject.toml").write_text(body)
    return dest


def zig_runtime(cache: Path, env: dict[str, str]) -> float:
    """Link a C and a C++ program with the zig toolchain geonox wrote (its wrappers, the
    zig flags), as CMake's compiler checks do: the time zig takes to build its runtime
    libraries for the target into its (fresh) cache."""
    from geonox.zig import zig_flags

    wrappers = next((cache / "toolchains").glob("zig-x86_64-*/bin"))
    work = cache.parent / "zig-runtime"
    work.mkdir(exist_ok=True)
    (work / "a.c").write_text("int main(void) { return 0; }\n")
    (work / "a.cpp").write_text("#include <string>\nint main() { return std::string().size(); }\n")
    start = time.monotonic()
    for tool, src in (("cc", "a.c"), ("c++", "a.cpp")):
        subprocess.run(
            [str(wrappers / tool), *zig_flags("x86_64"), src, "-o", f"{src}.out"],
            cwd=work,
            env=env,
            check=True,
        )
    return time.monotonic() - start


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_run(
    argv: list[str], log: Path, env: dict[str, str], cwd: Path | None = None
) -> tuple[float, dict[str, float]]:
    """Run ``argv`` into ``log``: its wall time, and each artifact's time as the deps step
    logged it ("geos 3.13.1 (static) built in N s")."""
    start = time.monotonic()
    with open(log, "w") as fh:
        proc = subprocess.run(argv, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT)
    elapsed = time.monotonic() - start
    if proc.returncode:
        sys.exit(f"{' '.join(argv[:3])} failed (exit {proc.returncode}); see {log}")
    return elapsed, {m.group(1): float(m.group(3)) for m in BUILT_ANY.finditer(log.read_text())}


def recorded_commands(log_dir: Path) -> list[list[str]]:
    """The argv of each command the deps step ran for one artifact, in the order it ran
    them (the logs' modification times), from each log's ``$ …`` first line."""
    logs = sorted(log_dir.glob("*.log"), key=lambda p: p.stat().st_mtime)
    commands = []
    for log in logs:
        first = log.read_text(errors="replace").splitlines()[:1]
        if first and first[0].startswith("$ "):
            commands.append(shlex.split(first[0][2:]))
    return commands


def plain(
    argv: list[str], scratch_old: str, scratch_new: str, prefix_old: str, prefix_new: str
) -> list[str]:
    """The command without geonox's ccache and in the bench's own directories."""
    out = []
    for arg in argv:
        if "_COMPILER_LAUNCHER=" in arg:
            continue
        out.append(arg.replace(scratch_old, scratch_new).replace(prefix_old, prefix_new))
    if out and Path(out[0]).name == "ccache":
        out = out[1:]
    return out


def built_artifact(cache: Path, name: str) -> Path:
    """The artifact of recipe ``name`` in the bench's fresh ``cache`` (it holds one)."""
    return next(
        p
        for p in (cache / "deps").iterdir()
        if p.is_dir() and re.fullmatch(rf"{re.escape(name)}-[\d.]+-\w+-[0-9a-f]+", p.name)
    )


def plain_build(
    name: str, artifact: Path, cache: Path, archive: Path, work: Path, env: dict[str, str]
) -> tuple[float, int, float]:
    """Rerun one artifact's commands without geonox: (seconds, compiles, CPU seconds)."""
    commands = recorded_commands(cache / "logs" / artifact.name)
    text = " ".join(" ".join(c) for c in commands)
    scratch = re.search(r"(\S*/tmp/build-" + re.escape(artifact.name) + r")\b", text)
    if scratch is None:
        sys.exit(f"{name}: cannot find the scratch directory in its logs")
    new_scratch = work / f"plain-{name}"
    new_prefix = work / f"plain-{name}-prefix"
    shutil.rmtree(new_scratch, ignore_errors=True)
    shutil.rmtree(new_prefix, ignore_errors=True)
    new_scratch.mkdir(parents=True)
    # what it is built against, where geonox's build saw it (a view: <scratch>/deps/<name>)
    for dep in sorted(
        set(re.findall(re.escape(scratch.group(1)) + r"/deps/([\w.-]+?)(?=[/;'\s]|$)", text))
    ):
        shutil.copytree(built_artifact(cache, dep), new_scratch / "deps" / dep, symlinks=True)
    tools = next((cache / "tools").glob("cmake-*/cmake/data/bin"), None)
    run_env = {k: v for k, v in env.items() if not k.startswith("CCACHE")}
    if tools:
        run_env["PATH"] = f"{tools}:{run_env['PATH']}"
    build_dir = new_scratch / f"build-{name}"
    build_dir.mkdir(exist_ok=True)
    compiles = 0
    cpu0, t0 = children_cpu(), time.monotonic()
    # unpacked as a shell script would (geonox's time includes its own unpacking)
    (new_scratch / f"src-{name}").mkdir()
    subprocess.run(["tar", "-xf", str(archive), "-C", str(new_scratch / f"src-{name}")], check=True)
    for argv in commands:
        argv = plain(argv, scratch.group(1), str(new_scratch), str(artifact), str(new_prefix))
        proc = subprocess.run(
            argv, cwd=build_dir, env=run_env, capture_output=True, text=True, errors="replace"
        )
        if proc.returncode:
            sys.exit(
                f"{name}: plain {shlex.join(argv)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
            )
        lines = len(COMPILE_LINE.findall(proc.stdout))
        compiles += lines or (
            1 if " -c " in f" {' '.join(argv)} " or argv[0].endswith(("cc", "gcc")) else 0
        )
    return time.monotonic() - t0, compiles, children_cpu() - cpu0


def recipes(args: argparse.Namespace, root: Path, mirror: Path) -> None:
    cores = usable_cores()
    env = cold_env(root / "caches")
    cache = Path(env["GEONOX_CACHE_DIR"])
    print(f"cold dependency builds, backend {args.backend}, -j{cores}, fresh caches in {root}")
    header = (
        f"{'artifact':<16}{'geonox':>9}{'plain':>9}{'ratio':>7}{'compiles':>10}"
        f"{'CPU s':>9}{'limit':>8}"
    )
    print(header)
    print("-" * len(header), flush=True)
    # one recipe more each time, so each is built alone (not beside another: the deps
    # step overlaps independent builds) and its time is its own; each is then rebuilt
    # without geonox from the commands the deps step logged
    order = ["sqlite", "geos", "proj", *(["gdal"] if args.gdal else [])]
    total = 0.0
    for n in range(1, len(order) + 1):
        proj = project(root, args.backend, order[:n])
        seconds, built = timed_run(
            [sys.executable, "-c", DEPS, str(proj)], root / f"deps-{n}.log", env
        )
        total += seconds
        if n == 1 and args.backend == "zig":
            # zig builds its C++ runtime and libc stubs for a target on the first link
            # (CMake's compiler check at the next recipe's configure): once per zig
            # version and target, not a recipe's cost; paid here, and printed
            print(f"{'(zig runtime)':<16}{zig_runtime(cache, env):>8.1f}s  once per zig and target")
        for name, took in built.items():
            artifact = built_artifact(cache, name)
            key = "sqlite" if name == "sqlite-shell" else name
            archive = Path(args.expat) if name == "expat" else mirror / ARCHIVES[key]
            wall, compiles, cpu = plain_build(name, artifact, cache, archive, root / "plain", env)
            print(
                f"{name:<16}{took:>8.1f}s{wall:>8.1f}s{took / wall:>7.2f}"
                f"{compiles:>10}{cpu:>9.1f}{cpu / cores:>7.1f}s",
                flush=True,
            )
    print(f"geonox deps, one recipe at a time (with fetch, extract, assemble): {total:.1f} s")
    print(f"(limit = CPU s / {cores} cores; ratio = geonox / plain, goal <= 1.05)")


def main_job(rev: str, root: Path, pairs: int = 1) -> None:
    """The README's main job cold at ``rev`` and for this tree, ``pairs`` times, the two
    alternating (before, after, before, ...) so a slower or faster spell of the machine
    falls on both sides; each run in empty caches of its own."""
    tree = root / f"tree-{rev[:10]}"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), rev],
        check=True,
        capture_output=True,
    )
    # this tree's own wheelhouse and nox venvs are not touched: a copy of it runs
    after = root / "tree-after"
    shutil.copytree(
        REPO,
        after,
        ignore=shutil.ignore_patterns(".nox", "wheelhouse", ".git", "__pycache__", "*.egg-info"),
    )
    try:
        elapsed: dict[str, list[float]] = {"before": [], "after": []}
        for n in range(pairs):
            for side, label, where in (
                ("before", f"before ({rev[:10]})", tree),
                ("after", "after (this tree)", after),
            ):
                env = cold_env(root / f"main-{side}-{n}")
                del env["PYTHONPATH"]  # each tree's noxfile imports its own geonox
                env["GEONOX_MIRROR"] = str(Path(env["GEONOX_MIRROR"]).resolve())
                seconds, deps = timed_run(
                    ["nox", "-s", "wheels-x86_64"], root / f"main-{side}-{n}.log", env, cwd=where
                )
                elapsed[side].append(seconds)
                print(
                    f"main job {label}: {seconds:.1f} s; deps: "
                    + ", ".join(f"{k} {v:.0f} s" for k, v in deps.items())
                )
            ratio = elapsed["after"][-1] / elapsed["before"][-1]
            print(f"cold main job after / before, pair {n + 1}: {ratio:.2f}")
        median = {side: statistics.median(times) for side, times in elapsed.items()}
        print(
            f"cold main job, medians of {pairs}: before {median['before']:.1f} s, after "
            f"{median['after']:.1f} s, after / before {median['after'] / median['before']:.2f} "
            "(goal <= 0.60)"
        )
    finally:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
            capture_output=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", default="zig", choices=("zig", "host"))
    parser.add_argument("--gdal", action="store_true", help="expat and GDAL too")
    parser.add_argument("--expat", help="expat's orig tarball (for --gdal's plain rerun)")
    parser.add_argument(
        "--main-job-against", metavar="REV", help="the cold main job at REV vs this tree"
    )
    parser.add_argument(
        "--pairs", type=int, default=1, help="main jobs before and after, alternating"
    )
    parser.add_argument("--no-recipes", action="store_true", help="only the main job")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    mirror = Path(os.environ.get("GEONOX_MIRROR", REPO.parent / "shared" / "mirror")).resolve()
    root = Path(tempfile.mkdtemp(prefix="geonox-cold-"))
    try:
        if not args.no_recipes:
            recipes(args, root, mirror)
        if args.main_job_against:
            main_job(args.main_job_against, root, args.pairs)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
