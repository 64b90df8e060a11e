"""``python -m geonox``: plan, verify, fetch and cache, usable without nox."""
from __future__ import annotations

import argparse
import json
import sys

from geonox.errors import UserError


def _cmd_plan(args: argparse.Namespace) -> int:
    from geonox.config import load_config
    from geonox.plan import session_specs
    from geonox.steps import Pipeline
    from geonox.steps.deps import is_complete, planned_prefix

    config = load_config(args.project)
    pipe = Pipeline(config)
    specs = session_specs(config, args.prefix)
    targets = []
    for arch in config.archs:
        entry = {"arch": arch, "policy": config.policy, "platform_tag": pipe.target(arch).platform_tag}
        try:
            entry["backend"] = pipe.backend(arch)
            prefix = planned_prefix(pipe, arch)
            entry.update(prefix_key=prefix.key, prefix=str(prefix.path),
                         cached=is_complete(prefix), toolchain=prefix.manifest["toolchain"])
        except UserError as exc:
            entry["error"] = str(exc)
        targets.append(entry)
    data = {
        "project": str(config.project), "name": config.name,
        "abi3": config.abi3, "pythons": [p.version for p in config.pythons],
        "deps": [{"name": d.name, "version": d.source.version, "sha256": d.source.sha256,
                  "url": d.source.url, "options": dict(d.options)} for d in config.deps],
        "wheelhouse": str(config.wheelhouse), "targets": targets,
        "sessions": [{"name": s.name, "requires": list(s.requires), "tags": list(s.tags)}
                     for s in specs],
    }
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"project   {config.name} ({config.project})")
    print(f"pythons   {', '.join(data['pythons'])}" + (f"  (abi3 {config.abi3}: one build per arch)"
                                                        if config.abi3 else ""))
    print("deps      " + ", ".join(f"{d['name']} {d['version']}" for d in data["deps"]))
    print(f"wheelhouse {config.wheelhouse}")
    for t in targets:
        if "error" in t:
            print(f"target    {t['platform_tag']}: {t['error']}")
        else:
            state = "cached" if t["cached"] else "not built"
            print(f"target    {t['platform_tag']} backend={t['backend']} key={t['prefix_key']} "
                  f"({state}) {t['toolchain']}")
    print("sessions")
    for s in specs:
        req = f"  <- {', '.join(s.requires)}" if s.requires else ""
        print(f"  {s.name}{req}")
    return 0


def _cmd_pin(args: argparse.Namespace) -> int:
    from geonox.config import load_config
    from geonox.images import pin_images

    from geonox.steps import Pipeline

    config = load_config(args.project)
    archs = Pipeline(config).image_archs()
    if not archs:
        print("no configured arch runs in a container image; nothing to pin")
        return 0
    pin_images(config.project, config.policy, archs, dict(config.images))
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from geonox.verify import run_verify_command

    return run_verify_command(args.wheels, args.json)


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _references(project: str) -> "tuple[dict, list[str]]":
    """Cache paths the project's current config uses -> what uses them.

    Without a loadable config nothing is referenced (and the reason is returned)."""
    from geonox import cache
    from geonox.config import load_config
    from geonox.steps import Pipeline
    from geonox.steps.deps import planned_prefix

    refs: dict = {}
    notes: list[str] = []
    try:
        config = load_config(project)
    except UserError as exc:
        return refs, [f"no project config read ({exc}); nothing counts as referenced"]
    for dep in config.deps:
        path = cache.sources_dir() / dep.source.sha256 / dep.source.filename
        refs.setdefault(path, []).append(f"{config.name}: {dep.name} {dep.source.version}")
    pipe = Pipeline(config)
    refs[pipe.work_dir] = [f"{config.name}: work dir"]
    for arch in config.archs:
        try:
            prefix = planned_prefix(pipe, arch)
        except UserError as exc:
            notes.append(f"{arch}: {exc}")
            continue
        refs[prefix.path] = [f"{config.name}: deps-{arch}"]
        refs[cache.cache_root() / "logs" / prefix.path.name] = [f"{config.name}: deps-{arch} logs"]
    return refs, notes


def _cmd_cache(args: argparse.Namespace) -> int:
    from geonox import cache

    if args.action == "clear":
        freed = cache.clear()
        print(f"cleared {cache.cache_root()}: {_human(freed)} freed")
        return 0
    refs, notes = _references(args.project)
    for note in notes:
        print(f"note: {note}")
    if args.action == "list":
        items = cache.entries()
        total = sum(e.size for e in items)
        print(f"{cache.cache_root()}: {len(items)} entries, {_human(total)}")
        for e in items:
            used = "; ".join(refs.get(e.path, [])) or "-"
            print(f"  {e.kind:<7} {_human(e.size):>9}  {e.description:<48} used by: {used}")
            print(f"          {e.path}")
        return 0
    removed = cache.prune(set(refs))
    print(f"pruned {len(removed)} entries not used by {args.project!r}'s config")
    for path in removed:
        print(f"  removed {path}")
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    import shutil
    from pathlib import Path

    from geonox import sources
    from geonox.config import load_config

    config = load_config(args.project)
    mirrors = [*sources.mirrors_from_env(), *config.mirrors]
    offline = config.offline or sources.offline_from_env()
    dest = Path(args.dest) if args.dest else None
    if dest:
        dest.mkdir(parents=True, exist_ok=True)
    for dep in config.deps:
        path = sources.fetch(dep.source, mirrors=mirrors, offline=offline)
        if dest:
            target = dest / dep.source.filename
            tmp = dest / f".{dep.source.filename}.tmp"
            shutil.copyfile(path, tmp)
            tmp.replace(target)  # a mirror directory never shows a half-copied file
            print(f"{dep.name} {dep.source.version}: {target}")
        else:
            print(f"{dep.name} {dep.source.version}: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m geonox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("plan", help="show targets, sessions and dependency cache keys")
    p.add_argument("--project", default=".", help="extension project directory (default: .)")
    p.add_argument("--prefix", default="", help="session name prefix, as register(prefix=...)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_plan)

    p = sub.add_parser("verify", help="check every ELF file of wheels against their tag's policy")
    p.add_argument("wheels", nargs="+", metavar="WHEEL")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("pin", help="resolve each arch's build image to its digest and write "
                                   "geonox-images.lock")
    p.add_argument("--project", default=".", help="extension project directory (default: .)")
    p.set_defaults(func=_cmd_pin)

    p = sub.add_parser("fetch", help="download and verify every source the config uses "
                                     "(seed an offline cache, or a mirror directory with --dest)")
    p.add_argument("--project", default=".", help="extension project directory (default: .)")
    p.add_argument("--dest", help="also copy the verified files here, under upstream names")
    p.set_defaults(func=_cmd_fetch)

    p = sub.add_parser("cache", help="list, prune or clear the geonox cache")
    p.add_argument("action", choices=("list", "prune", "clear"))
    p.add_argument("--project", default=".",
                   help="project whose config decides what is in use (default: .)")
    p.set_defaults(func=_cmd_cache)
    return parser


def main(argv: "list[str] | None" = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"geonox: {exc}", file=sys.stderr)
        return 2
