"""The ``ldd`` rule: ``ldd -r`` on a file of the unpacked wheel, where this machine can
load it, with the wheel's own directory as the working directory.

On a musl machine ``ldd`` is musl's loader in list mode (Alpine's ``ldd`` is
``ld-musl-<arch>.so.1 --list``): it has no ``-r`` ("cannot load -r"), and needs none, since
musl binds every symbol at load time and reports each one it cannot resolve as
``Error relocating <file>: <symbol>: symbol not found``.

A symbol ``ldd -r`` calls undefined is an error, but for one the interpreter has loaded
anyway: CPython links libc and libm, so a module that calls ``nextafter`` without libm in
its DT_NEEDED (pandas' wheels do) works in every Python process; that is a warning, with
the fix (``-lm``), when the policy's glibc has the symbol."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

from geonox.elf import ElfInfo
from geonox.targets import host_arch, host_libc
from geonox.verify.facts import WheelFacts, short_list
from geonox.verify.glibc import INTERPRETER_LIBS, glibc_has
from geonox.verify.rules import PYTHON_SYMBOL_RE


def should_run(facts: WheelFacts, info: ElfInfo, run_ldd: bool | None, ldd: str | None) -> bool:
    if run_ldd is False or ldd is None:
        return False
    if info.arch != host_arch():
        return False  # cannot load a foreign-arch file here
    if run_ldd is None and facts.policy is not None and facts.policy.libc == "musl":
        return host_libc() == "musl"
    return True


def _owner(root: Path, reported: str, default: str) -> str:
    try:
        return Path(reported.strip()).resolve().relative_to(root).as_posix()
    except ValueError:
        return default


def _interpreter_has(facts: WheelFacts, symbol: str) -> bool:
    """Whether every Python process the wheel's tag admits has ``symbol`` loaded: libc's or
    libm's, at a version the policy's glibc has."""
    policy = facts.policy
    if policy is None or policy.libc != "glibc" or "@" in symbol:
        return False
    try:
        glibc = policy.glibc
    except ValueError:  # "linux": no glibc ceiling, any glibc that has it
        glibc = (999, 0)
    return glibc_has(symbol, policy.arch, glibc, INTERPRETER_LIBS)


def ldd_findings(facts: WheelFacts, rel: str, ldd: str) -> Iterator[tuple[str, ...]]:
    """``(file, detail)`` (or ``(file, detail, severity)``) for everything ``ldd -r``
    reports missing."""
    target = facts.root / rel
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("LD_LIBRARY_PATH", "LD_PRELOAD", "LD_AUDIT")
    }
    env["LC_ALL"] = "C"
    argv = [ldd, str(target)] if host_libc() == "musl" else [ldd, "-r", str(target)]
    try:
        proc = subprocess.run(
            argv,
            cwd=str(facts.root),
            env=env,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        yield rel, "ldd -r did not finish within 120 s."
        return
    output = proc.stdout + proc.stderr
    if "not a dynamic executable" in output or "statically linked" in output:
        return
    missing: list[str] = []
    undefined: dict[str, list[str]] = {}
    versions: dict[str, list[str]] = {}
    interpreter_symbols = False  # musl exits 1 on a module's Py* symbols: no failure
    for line in output.splitlines():
        m = re.match(r"^\s*(\S+) => not found", line) or re.match(
            r"^Error loading shared library (\S+): ",
            line,  # musl's
        )
        if m:
            missing.append(m.group(1))
            continue
        m = re.match(r"^Error relocating (.+): (\S+): symbol not found", line)  # musl's
        if m:
            symbol, owner = m.group(2), _owner(facts.root, m.group(1), rel)
            if PYTHON_SYMBOL_RE.match(symbol):
                interpreter_symbols = True
            else:
                undefined.setdefault(owner, []).append(symbol)
            continue
        m = re.search(r"undefined symbol: ([^\s,]+)(?:, version (\S+))?\s*\((.*)\)", line)
        if m:
            symbol, owner = m.group(1), _owner(facts.root, m.group(3), rel)
            if not PYTHON_SYMBOL_RE.match(symbol):
                undefined.setdefault(owner, []).append(
                    symbol + (f"@{m.group(2)}" if m.group(2) else "")
                )
            continue
        m = re.search(r"version [`']([^']+)' not found \(required by (.+)\)", line)
        if m:
            versions.setdefault(_owner(facts.root, m.group(2), rel), []).append(m.group(1))
    if missing:
        yield (
            rel,
            (
                f"ldd -r cannot find {short_list(sorted(set(missing)))} with the wheel unpacked; "
                "ship it in the wheel (auditwheel repair) or fix the $ORIGIN RUNPATH."
            ),
        )
    for owner, names in versions.items():
        yield (
            owner,
            f"ldd -r: this machine's libraries lack version(s) {short_list(sorted(set(names)))}.",
        )
    for owner, names in undefined.items():
        loaded = sorted({n for n in names if _interpreter_has(facts, n)})
        missing_now = sorted(set(names) - set(loaded))
        if missing_now:
            yield (
                owner,
                (
                    f"ldd -r reports undefined symbol(s) {short_list(missing_now)}; they are "
                    "provided by no library the file loads."
                ),
            )
        if loaded:
            yield (
                owner,
                (
                    f"ldd -r reports undefined symbol(s) {short_list(loaded)}, which glibc's "
                    "libc/libm provide and every Python process has loaded (the interpreter "
                    "links them): it works, but link the file with -lm (or -lc) so that its "
                    "DT_NEEDED says so."
                ),
                "warning",
            )
    if proc.returncode != 0 and not (missing or versions or undefined or interpreter_symbols):
        tail = " ".join(output.strip().splitlines()[-3:])[:300]
        yield rel, f"{' '.join(argv[:-1])} failed (exit {proc.returncode}): {tail}"
