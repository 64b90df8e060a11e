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


def _cmd_verify(args: argparse.Namespace) -> int:
    from geonox.verify import run_verify_command

    return run_verify_command(args.wheels, args.json)


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
    return parser


def main(argv: "list[str] | None" = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"geonox: {exc}", file=sys.stderr)
        return 2
