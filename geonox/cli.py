"""``python -m geonox``: plan, verify, fetch, pin and cache, usable without nox.

Each command imports what it needs when it runs: ``verify`` also runs inside build
containers from a venv holding auditwheel, pyelftools and packaging only, so nothing this
module imports at its top may need requests, filelock, platformdirs or nox.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geonox.errors import Interrupted, UserError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from geonox.cache import CacheLayout
    from geonox.prefix import PrefixEngine
    from geonox.project import Project, Run
    from geonox.remote import RemoteCache


def _project(args: argparse.Namespace) -> Project:
    from geonox.project import Project, load_config

    return Project(load_config(args.project))


def _cmd_summary(args: argparse.Namespace) -> int:
    """What the latest run of each session did (the records the steps leave in the work
    dir), as the wheels sessions print it, as Markdown, or as JSON."""
    from geonox import summary

    project = _project(args)
    found = summary.collect(summary.records(project.workdir.root, this_run=False), args.arch)
    if not found["wheels"] and not found["dependencies"]:
        raise UserError(
            f"nothing to summarise for {project.config.name}: no session of it has run with "
            "this cache (GEONOX_CACHE_DIR); run one first, e.g. nox -s wheels-x86_64."
        )
    title = f"{project.config.name}" + (f" ({args.arch})" if args.arch else "")
    if args.json:
        print(json.dumps(found, indent=2))
    elif args.markdown:
        print(summary.render_markdown(found, title), end="")
    else:
        print(summary.render_text(found, title))
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from geonox.plan import session_specs
    from geonox.prefix import PrefixEngine

    project = _project(args)
    config = project.config
    specs = session_specs(config, args.prefix)
    targets: list[dict[str, Any]] = []
    if args.arch and args.arch not in config.archs:
        raise UserError(
            f"--arch {args.arch} is not one of this project's archs "
            f"({', '.join(config.archs)}); pick one of them or drop --arch."
        )
    run = project.run("", print)
    for target in project.targets():
        if args.arch and target.arch != args.arch:
            continue
        entry: dict[str, Any] = {
            "arch": target.arch,
            "label": target.label,
            "policy": target.policy,
            "platform_tag": target.platform_tag,
        }
        try:
            with run.backend(target) as backend:
                entry["backend"] = backend.name
                prefix = PrefixEngine(run, backend).plan
            entry.update(
                prefix_key=prefix.key,
                prefix=str(prefix.path),
                cached=prefix.artifact.complete(),
                toolchain=prefix.manifest["toolchain"],
                artifacts=[
                    {
                        "name": b.name,
                        "version": b.spec.source.version,
                        "link": "tool" if b.recipe.build_tool else b.spec.link,
                        "key": b.key,
                        "path": str(b.path),
                        "cached": b.artifact.complete(),
                    }
                    for b in prefix.builds
                ],
            )
        except UserError as exc:
            entry["error"] = str(exc)
        targets.append(entry)
    deps = [
        {
            "name": d.name,
            "version": d.source.version,
            "sha256": d.source.sha256,
            "url": d.source.url,
            "options": dict(d.options),
            "link": d.link,
        }
        for d in config.deps
    ]
    pythons = [p.version for p in config.pythons]
    data = {
        "project": str(config.project),
        "name": config.name,
        "sdist": str(config.sdist) if config.sdist else None,
        "abi3": config.abi3,
        "pythons": pythons,
        "deps": deps,
        "wheelhouse": str(config.wheelhouse),
        "targets": targets,
        "sessions": [
            {"name": s.name, "requires": list(s.requires), "tags": list(s.tags)} for s in specs
        ],
    }
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"project   {config.name} ({config.project})")
    print(
        f"pythons   {', '.join(pythons)}"
        + (f"  (abi3 {config.abi3}: one build per arch)" if config.abi3 else "")
    )
    print("deps      " + ", ".join(f"{d['name']} {d['version']} ({d['link']})" for d in deps))
    print(f"wheelhouse {config.wheelhouse}")
    for t in targets:
        if "error" in t:
            print(f"target    {t['platform_tag']}: {t['error']}")
            continue
        state = "cached" if t["cached"] else "not built"
        print(
            f"target    {t['platform_tag']} backend={t['backend']} key={t['prefix_key']} "
            f"({state}) {t['toolchain']}"
        )
        for a in t["artifacts"]:
            print(
                f"  artifact {a['name']} {a['version']} ({a['link']}) key={a['key']} "
                f"({'cached' if a['cached'] else 'not built'})"
            )
    print("sessions")
    for s in specs:
        req = f"  <- {', '.join(s.requires)}" if s.requires else ""
        print(f"  {s.name}{req}")
    return 0


def _cmd_ci(args: argparse.Namespace) -> int:
    import geonox
    from geonox.ci import github_workflow, unpinned_images

    config = _project(args).config
    text = github_workflow(
        config,
        geonox_requirement=args.geonox or f"geonox=={geonox.__version__}",
        prefix=args.prefix,
    )
    unpinned = unpinned_images(config)
    if unpinned:
        print(
            f"note: on the runners the {', '.join(unpinned)} builds run in manylinux images "
            f'(backend "{config.backend}") that nothing pins yet, and would refuse to build: '
            f"run `python -m geonox pin` and commit geonox-images.lock.",
            file=sys.stderr,
        )
    if not args.output:
        print(text, end="")
        return 0
    from geonox.cache import write_atomic

    out = Path(args.output)
    write_atomic(out, text)
    print(f"wrote {out}")
    return 0


def _cmd_pin(args: argparse.Namespace) -> int:
    from geonox.steps.images import pin

    pin(_project(args), print)
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from geonox.verify import run_verify_command

    return run_verify_command(
        args.wheels,
        args.json,
        exit_zero=args.exit_zero,
        strict=args.strict,
        require_sbom=args.require_sbom,
    )


def _cmd_sbom(args: argparse.Namespace) -> int:
    import zipfile

    from geonox.sbom import read_wheel

    report: list[dict[str, Any]] = []
    for name in args.wheels:
        path = Path(name)
        try:
            components = read_wheel(path)
        except (OSError, zipfile.BadZipFile) as exc:
            raise UserError(
                f"{name}: cannot read it as a wheel ({exc}). Pass the path of a .whl file."
            ) from None
        report.append({"wheel": path.name, "components": [c.to_dict() for c in components]})
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for entry in report:
        print(
            f"{entry['wheel']}: {len(entry['components'])} bundled component(s)"
            + ("" if entry["components"] else " (no SBOM under .dist-info/sboms/)")
        )
        for c in entry["components"]:
            where = f"inside {c['inside']}" if c["inside"] else f"sha256 {c['sha256'] or '-'}"
            print(
                f"  {c['name']} {c['version'] or '-'}  {c['link'] or '-'}  {c['license'] or '-'}  "
                f"{where}  [{c['sbom'].split('/')[-1]}]"
            )
    return 0


def _cmd_diff(args: argparse.Namespace) -> int:
    from geonox.wheeldiff import diff_wheels, render

    diff = diff_wheels(Path(args.a), Path(args.b))
    print(json.dumps(diff.to_dict(), indent=2) if args.json else render(diff))
    return 0 if diff.identical else 1


def _ago(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"used {seconds / size:.0f} {unit} ago"
    return "used just now"


def _parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)i?[bB]?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 500M or 20G")
    return int(float(m.group(1)) * 1000 ** " kmgt".index(m.group(2).lower() or " "))


def _parse_days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days such as 30") from None
    if days < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: days cannot be negative")
    return days


def _cmd_cache(args: argparse.Namespace) -> int:
    from geonox.cache import CacheLayout, human_size

    if args.names and args.action != "check":
        raise UserError(
            f"cache {args.action} takes no artifact names ({' '.join(args.names)}): only "
            "cache check does (e.g. python -m geonox cache check geos)."
        )
    if args.action in ("push", "pull"):
        return _cache_remote(args)
    if args.action == "check":
        return _cache_check(args)
    cache = CacheLayout.from_env()
    if args.action == "verify":
        return _cache_verify(cache)
    if args.action == "list":
        items = cache.entries()
        now = time.time()
        print(f"{cache.root}: {len(items)} entries, {human_size(sum(e.size for e in items))}")
        for e in items:
            state = "in use" if cache.in_use(e) else _ago(now - e.last_used)
            print(f"  {e.kind:<9} {human_size(e.size):>9}  {state:<16} {e.description}")
            print(f"            {e.path}")
        return 0
    if args.action == "clear":
        result = cache.clear()
    else:
        older = (
            args.older_than
            if args.older_than is not None
            else (None if args.max_size is not None else 30.0)
        )
        result = cache.prune(
            older_than=None if older is None else older * 86400, max_size=args.max_size
        )
    for e in result.removed:
        print(f"  removed {e.kind} {e.path} ({human_size(e.size)})")
    for e in result.in_use:
        print(f"  kept {e.kind} {e.path}: in use (its lock is held)")
    print(
        f"{args.action}: {len(result.removed)} entries removed, {human_size(result.freed)} freed"
        + (f"; {len(result.in_use)} in use kept" if result.in_use else "")
    )
    return 0


def _cache_verify(cache: CacheLayout) -> int:
    """Re-hash the cache; name every file that changed.  Exit 1 if any did: such an entry
    is never used again (the next build makes it anew)."""
    from geonox.cache import human_size

    t0 = time.monotonic()
    found = cache.verify()
    bad = [v for v in found if v.changes]
    for v in bad:
        print(f"{v.entry.kind} {v.entry.path}:")
        for change in v.changes[:10]:
            print(f"  {change}")
        if len(v.changes) > 10:
            print(f"  and {len(v.changes) - 10} more")
    unrecorded = sum(1 for v in found if not v.recorded)
    size = human_size(sum(v.entry.size for v in found))
    print(
        f"verify: {len(found)} entries ({size}) hashed in {time.monotonic() - t0:.1f} s, "
        + (f"{len(bad)} changed: the next build makes them again" if bad else "none changed")
        + (f"; {unrecorded} made before artifacts recorded their files" if unrecorded else "")
    )
    return 1 if bad else 0


def _configured_remote(project: Project, *, push: bool, why: str = "") -> RemoteCache:
    """The project's remote store, or one paragraph saying how to configure one."""
    from geonox.prefix import remote_for

    remote = remote_for(project.config, push=push)
    if remote is None:
        raise UserError(
            f"no remote cache is configured{why}: set cache-remote = "
            '"oci://<registry>/<repository>" in [tool.geonox], or GEONOX_CACHE_REMOTE.'
        )
    return remote


def _engines(project: Project, arch: str | None) -> Iterator[tuple[Run, PrefixEngine]]:
    """The dependency prefix engine of each of the project's targets (``arch``: only that
    arch's), with the run it logs to, inside its backend."""
    from geonox.prefix import PrefixEngine

    for target in project.targets():
        if arch and target.arch != arch:
            continue
        run = project.run(target.label, print)
        with run.backend(target) as backend:
            yield run, PrefixEngine(run, backend)


def _cache_remote(args: argparse.Namespace) -> int:
    """push: every library artifact of the project's prefixes this cache holds; pull: every
    one it lacks, from the remote store (cache-remote / GEONOX_CACHE_REMOTE)."""
    project = _project(args)
    remote = _configured_remote(project, push=True)
    failed = 0
    for run, engine in _engines(project, args.arch):
        target = engine.backend.target
        moved = engine.push(remote) if args.action == "push" else engine.pull(remote)
        for t in moved:
            b = t.build
            if t.outcome == "pushed":
                run.log(f"pushed {b.label} to {t.detail}")
            elif t.outcome == "pulled":
                run.log(f"pulled {b.label} [{b.key}] from {remote}")
            elif t.outcome == "here":
                run.log(f"{b.label} [{b.key}] is here already")
            elif t.outcome == "absent" and t.push:
                run.log(f"{b.label} [{b.key}] is not built here: nothing to push")
            else:
                failed += 1
                why = (
                    t.detail
                    if t.outcome == "failed"
                    else f"not tried: {t.detail}"
                    if t.outcome == "skipped"
                    else f"{remote} has no {b.path.name}"
                )
                print(f"{target.label}: {b.label}: {why}", file=sys.stderr)
    return 1 if failed else 0


def _cache_check(args: argparse.Namespace) -> int:
    """Every library artifact of the project's prefixes that cache-remote holds, rebuilt
    here from verified sources and compared with the store's copy file by file.  Exit 1
    when one differs (or could not be read): the error names the artifact and the first
    differing file."""
    project = _project(args)
    config = project.config
    remote = _configured_remote(project, push=False, why=", so there is nothing to check")
    known = {d.name for d in config.deps}
    unknown = sorted(set(args.names) - known)
    if unknown:
        raise UserError(
            f"cache check: {', '.join(unknown)} is not a dependency of {config.name} "
            f"(its dependencies: {', '.join(sorted(known))})."
        )
    counts = {"same": 0, "differs": 0, "absent": 0, "failed": 0}
    for run, engine in _engines(project, args.arch):
        target = engine.backend.target
        for c in engine.check(remote, frozenset(args.names)):
            b = c.build
            counts[c.outcome] += 1
            if c.outcome == "same":
                run.log(f"{b.label} [{b.key}] in {remote} is what a build here makes")
            elif c.outcome == "absent":
                run.log(f"{b.label} [{b.key}] is not in {remote}: nothing to check")
            elif c.outcome == "failed":
                print(f"error: {target.label}: {b.label} [{b.key}]: {c.detail}", file=sys.stderr)
            else:
                more = f" (and {len(c.changes) - 1} more)" if len(c.changes) > 1 else ""
                print(
                    f"error: {target.label}: {b.label} [{b.key}] in {remote} is not what a "
                    f"build here makes from the same inputs: {c.changes[0]}{more}. Whoever "
                    f"pushed it built other files: do not pull from {remote} until that "
                    f"tag ({b.path.name}) is deleted there"
                    + (
                        "; this cache pulled it, so clear it too (python -m geonox cache clear)."
                        if c.pulled_here
                        else "."
                    ),
                    file=sys.stderr,
                )
    print(
        f"check: {counts['same']} the same, {counts['differs']} different, "
        f"{counts['failed']} unreadable, {counts['absent']} not in {remote}"
    )
    return 1 if counts["differs"] or counts["failed"] else 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    from geonox import sources
    from geonox.cache import write_atomic

    project = _project(args)
    config = project.config
    dest = Path(args.dest) if args.dest else None
    if dest:
        dest.mkdir(parents=True, exist_ok=True)
    for dep in config.deps:
        path = sources.fetch(
            dep.source,
            mirrors=config.mirrors,
            offline=config.offline,
            cache_dir=project.cache.sources,
        )
        if dest:
            target = dest / dep.source.filename
            write_atomic(target, path.read_bytes())  # a mirror never shows half a file
            print(f"{dep.name} {dep.source.version}: {target}")
        else:
            print(f"{dep.name} {dep.source.version}: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m geonox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def project_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--project", default=".", help="extension project directory (default: .)")

    p = sub.add_parser("plan", help="show targets, sessions and dependency cache keys")
    project_arg(p)
    p.add_argument("--prefix", default="", help="session name prefix, as register(prefix=...)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--arch", help="only this arch's target (its backend alone is asked)")
    p.set_defaults(func=_cmd_plan)

    p = sub.add_parser(
        "summary", help="what the latest run built, reused and shipped (as wheels-ARCH ends)"
    )
    project_arg(p)
    p.add_argument("--arch", help="only this arch")
    form = p.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="machine-readable output")
    form.add_argument("--markdown", action="store_true", help="GitHub-flavoured Markdown")
    p.set_defaults(func=_cmd_summary)

    p = sub.add_parser(
        "ci",
        help="write a CI workflow from the plan: one job per arch on its "
        "native runner, the dependency cache, publishing on tags",
    )
    p.add_argument("provider", choices=("github",))
    project_arg(p)
    p.add_argument(
        "--output",
        metavar="PATH",
        help="write it there (e.g. .github/workflows/wheels.yml); default: stdout",
    )
    p.add_argument("--prefix", default="", help="session name prefix, as register(prefix=...)")
    p.add_argument(
        "--geonox",
        metavar="REQUIREMENT",
        help="how the jobs install geonox (default: this version from PyPI)",
    )
    p.set_defaults(func=_cmd_ci)

    p = sub.add_parser("verify", help="check every ELF file of wheels against their tag's policy")
    p.add_argument("wheels", nargs="+", metavar="WHEEL")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--exit-zero",
        action="store_true",
        help="exit 0 even when a rule is broken (for scripts that read --json)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="fail on warnings too (house style: extra exports, unversioned imports "
        "that the policy's glibc has)",
    )
    p.add_argument(
        "--require-sbom",
        action="store_true",
        help="a bundled PROJ/GEOS/SQLite that no SBOM of the wheel names is an error "
        "(geonox's own gate does this; a warning otherwise)",
    )
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser(
        "sbom",
        help="list what wheels say they bundle (their CycloneDX SBOMs: geonox's and auditwheel's)",
    )
    p.add_argument("wheels", nargs="+", metavar="WHEEL")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_sbom)

    p = sub.add_parser(
        "diff",
        help="where two wheels differ: the first differing member and, "
        "for ELF files, the sections (exit 1 when they differ)",
    )
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_diff)

    p = sub.add_parser(
        "pin", help="resolve each arch's build image to its digest and write geonox-images.lock"
    )
    project_arg(p)
    p.set_defaults(func=_cmd_pin)

    p = sub.add_parser(
        "fetch",
        help="download and verify every source the config uses "
        "(seed an offline cache, or a mirror directory with --dest)",
    )
    project_arg(p)
    p.add_argument("--dest", help="also copy the verified files here, under upstream names")
    p.set_defaults(func=_cmd_fetch)

    p = sub.add_parser(
        "cache",
        help="list, verify (re-hash), prune or clear the geonox cache (GEONOX_CACHE_DIR); "
        "push or pull a project's artifacts to/from cache-remote, or check what it holds "
        "against builds here",
    )
    p.add_argument("action", choices=("list", "verify", "prune", "clear", "push", "pull", "check"))
    p.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="check: only these dependencies (default: every library of the prefixes)",
    )
    project_arg(p)
    p.add_argument("--arch", help="push/pull/check: only this arch's artifacts")
    p.add_argument(
        "--older-than",
        type=_parse_days,
        metavar="DAYS",
        help="prune: remove entries not used for DAYS days (default 30, or none "
        "when only --max-size is given)",
    )
    p.add_argument(
        "--max-size",
        type=_parse_size,
        metavar="SIZE",
        help="prune: then remove the least recently used entries until the cache "
        "holds at most SIZE (e.g. 20G)",
    )
    p.set_defaults(func=_cmd_cache)
    return parser


def main(argv: list[str] | None = None) -> int:
    from geonox.signals import stop_on_signals

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # names after options (cache check --arch x86_64 geos): argparse gives the positional
    # list its (empty) value before the options, and the names after them back as extra
    if extra and args.func is _cmd_cache and not any(e.startswith("-") for e in extra):
        args.names = [*args.names, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        with stop_on_signals():
            code: int = args.func(args)
            return code
    except UserError as exc:
        print(f"geonox: {exc}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        print(
            f"geonox: stopped by signal {exc.signum}; nothing was marked complete", file=sys.stderr
        )
        return 128 + exc.signum
