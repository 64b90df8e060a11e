"""The summary a ``wheels-…`` session ends with: each wheel (its tags, size, what it bundles,
verify's verdict, where it was built, the time of each step) and each dependency (built,
pulled or reused, and how long).

Every step leaves a record of what it did in the project's work dir when it succeeds
(``summary/<session>.json``: :func:`record`, called by the session runner with the facts
the step put in ``run.facts``); the summary is read back from the records of this
process's run (:data:`STARTED`), so it says what this run did, whichever sessions it ran.
Printed in the terminal (inside 100 columns), appended as Markdown to
``$GITHUB_STEP_SUMMARY`` when that is set (GitHub's job summary page), and given as JSON
by ``python -m geonox summary --json`` (for dashboards), which reads the latest records.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from geonox.cache import human_size, write_atomic

#: when this process started running sessions: records older than it are another run's
STARTED = time.time()
WIDTH = 100
STEPS = ("build", "repair", "ldd", "test")  # a wheel's, in the order they run


def record(workdir: Path, session: str, fields: dict[str, Any]) -> None:
    """What ``session`` did, for the summary (written atomically; the latest run wins)."""
    data = dict(fields, session=session, run=STARTED, finished=time.time())
    write_atomic(workdir / "summary" / f"{session}.json", json.dumps(data, indent=2) + "\n")


def wheel_facts(wheel: Path) -> dict[str, Any]:
    """A repaired wheel as the summary shows it: name, size, platform tags, and what
    geonox's SBOM in it says it bundles."""
    from packaging.utils import parse_wheel_filename

    from geonox.sbom import read_wheel

    tags = sorted({t.platform for t in parse_wheel_filename(wheel.name)[3]})
    bundles = [
        {"name": c.name, "version": c.version, "link": c.link}
        for c in read_wheel(wheel)
        if c.sbom.endswith("geonox.cdx.json") and c.link and not c.inside
    ]
    return {"wheel": wheel.name, "size": wheel.stat().st_size, "tags": tags, "bundles": bundles}


def records(workdir: Path, *, this_run: bool) -> list[dict[str, Any]]:
    """The steps' records: of this process's run, or the latest of each session."""
    out = []
    for path in sorted((workdir / "summary").glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not this_run or data.get("run", 0) >= STARTED:
            out.append(data)
    return out


def collect(
    entries: Iterable[dict[str, Any]], arch: str | None = None, target: str | None = None
) -> dict[str, Any]:
    """The summary of an arch (every arch: None), or of one target (its label), from the
    steps' records, as JSON."""
    entries = [
        e
        for e in entries
        if (arch is None or e.get("arch") == arch) and (target is None or e.get("target") == target)
    ]
    deps = []
    for e in entries:
        if e.get("step") == "deps":
            for a in e.get("artifacts", []):
                deps.append(dict(a, target=e["target"], where=e.get("where", "")))
    wheels: dict[str, dict[str, Any]] = {}
    builds = {(e["target"], e.get("build")): e for e in entries if e.get("step") == "build"}
    for e in entries:
        if e.get("step") != "repair" or not e.get("wheel"):
            continue
        built = builds.get((e["target"], e.get("build")), {})
        w = wheels.setdefault(
            e["wheel"],
            {
                "wheel": e["wheel"],
                "target": e["target"],
                "tags": e.get("tags", []),
                "size": e.get("size"),
                "bundles": e.get("bundles", []),
                "built_on": built.get("where", ""),
                "verify": None,
                "steps": {},
                "tested_on": [],
            },
        )
        if built:
            w["steps"]["build"] = built["seconds"]
    for e in entries:  # every Python's repair, ldd and test of one wheel: summed
        wheel = wheels.get(e.get("wheel", ""))
        if wheel is None or e.get("step") not in ("repair", "ldd", "test"):
            continue
        step = e["step"]
        wheel["steps"][step] = round(wheel["steps"].get(step, 0.0) + e["seconds"], 1)
        if step == "ldd" and e.get("errors") is not None:
            wheel["verify"] = {"errors": e["errors"], "warnings": e["warnings"]}
        elif step == "test" and e.get("tested"):
            wheel["tested_on"].append({"python": e["python"], "seconds": e["seconds"]})
    for w in wheels.values():
        w["steps"] = {s: w["steps"][s] for s in STEPS if s in w["steps"]}
        w["tested_on"].sort(key=lambda t: _version(t["python"]))
    return {"arch": arch, "dependencies": deps, "wheels": sorted(wheels.values(), key=_by_name)}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", text))


def _by_name(w: dict[str, Any]) -> str:
    return str(w["wheel"])


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} s"


def _short(where: str) -> str:
    """An image reference with its digest cut to 12 hex digits (the terminal's width)."""
    return re.sub(r"@sha256:([0-9a-f]{12})[0-9a-f]{52}", r"@sha256:\1…", where)


def _verdict(verify: dict[str, int] | None) -> str:
    if verify is None:
        return "not checked in this run"
    errors, warnings = verify["errors"], verify["warnings"]
    return (
        f"{'passed' if not errors else 'FAILED'}: {_count(errors, 'error')}, "
        f"{_count(warnings, 'warning')}"
    )


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _tested(w: dict[str, Any]) -> str:
    return ", ".join(f"{t['python']} ({_seconds(t['seconds'])})" for t in w["tested_on"])


def _wrap(label: str, text: str) -> list[str]:
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=f"    {label:<10}",
        subsequent_indent=" " * 14,
        break_on_hyphens=False,
    ) or [f"    {label}"]


def render_text(summary: dict[str, Any], title: str) -> str:
    lines = [f"summary of {title}"]
    if summary["dependencies"]:
        lines.append(f"  {'dependency':<40}{'target':<20}{'outcome':<10}{'time':>10}")
        for d in summary["dependencies"]:
            name = f"{d['name']} {d['version']} ({d['link']})"
            lines.append(
                f"    {name:<38}{d['target']:<20}{d['outcome']:<10}{_seconds(d['seconds']):>10}"
            )
    for w in summary["wheels"]:
        lines.append(f"  {w['wheel']}  {human_size(w['size']) if w['size'] else ''}".rstrip())
        lines += _wrap("built on", _short(w["built_on"]) or "?")
        bundles = ", ".join(f"{b['name']} {b['version']} ({b['link']})" for b in w["bundles"])
        lines += _wrap("bundles", bundles or "nothing")
        lines += _wrap("verify", _verdict(w["verify"]))
        if w["tested_on"]:
            lines += _wrap("tested on", "CPython " + _tested(w))
        steps = ", ".join(f"{k} {_seconds(v)}" for k, v in w["steps"].items())
        lines += _wrap("time", steps)
    return "\n".join(lines)


def render_markdown(summary: dict[str, Any], title: str) -> str:
    out = [f"### geonox: {title}", ""]
    if summary["wheels"]:
        out += [
            "| wheel | size | bundles | verify | built on | tested on | time |",
            "|---|---:|---|---|---|---|---|",
        ]
        for w in summary["wheels"]:
            bundles = ", ".join(f"{b['name']} {b['version']} ({b['link']})" for b in w["bundles"])
            steps = ", ".join(f"{k} {_seconds(v)}" for k, v in w["steps"].items())
            cells = [
                f"`{w['wheel']}`",
                human_size(w["size"]) if w["size"] else "",
                bundles or "nothing",
                _verdict(w["verify"]),
                f"`{w['built_on']}`",
                _tested(w),
                steps,
            ]
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        out.append("")
    if summary["dependencies"]:
        out += ["| dependency | target | outcome | time |", "|---|---|---|---:|"]
        for d in summary["dependencies"]:
            out.append(
                f"| {d['name']} {d['version']} ({d['link']}) | {d['target']} | {d['outcome']} "
                f"| {_seconds(d['seconds'])} |"
            )
        out.append("")
    return "\n".join(out) + "\n"


def publish(
    workdir: Path, arch: str, title: str, out: Any, target: str | None = None
) -> dict[str, Any]:
    """This run's summary for ``arch`` (or one target of it): printed through ``out``, and
    appended as Markdown to ``$GITHUB_STEP_SUMMARY`` when set."""
    summary = collect(records(workdir, this_run=True), arch, target)
    out(render_text(summary, title))
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if target:
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(render_markdown(summary, title))
    return summary
