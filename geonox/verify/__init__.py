"""Check the ELF files of a wheel against the manylinux policy its platform tag claims.

:func:`verify_wheel` unpacks a wheel, reads every ELF file in it (:mod:`.facts`, with
pyelftools through :mod:`geonox.elf`), applies the rule table (:mod:`.rules`) against
auditwheel's policy data (:mod:`geonox.policy`) and, where the files can run on this
machine, ``ldd -r`` (:mod:`.ldd`).  :mod:`.report` holds what it says.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from geonox.cores import usable_cores
from geonox.errors import UserError
from geonox.policy import wheel_platform_tags, wheel_policy
from geonox.recipes import registry
from geonox.sbom import read_wheel
from geonox.verify.facts import LINKER_SYMBOLS, WheelFacts, check_wheel_file, kind_of, unpack
from geonox.verify.ldd import ldd_findings, should_run
from geonox.verify.report import RULES, FileReport, Violation, WheelReport, format_table
from geonox.verify.rules import RULE_TABLE, SEVERITY, WHEEL_RULES

__all__ = [
    "RULES",
    "FileReport",
    "Violation",
    "WheelReport",
    "format_table",
    "run_verify_command",
    "verify_wheel",
]


def verify_wheel(
    path: str | os.PathLike[str], *, run_ldd: bool | None = None, require_sbom: bool = False
) -> WheelReport:
    """Check every ELF file in the wheel at ``path``.

    ``run_ldd``: ``None`` runs ``ldd -r`` on files this machine can load (same arch, ldd
    present); ``True`` insists on ldd (error if missing); ``False`` never runs it.
    ``require_sbom``: a bundled library no SBOM names is an error, not a warning.
    """
    wheel_path = Path(path)
    check_wheel_file(wheel_path)
    platforms = wheel_platform_tags(wheel_path.name)
    policy = wheel_policy(wheel_path.name)
    ldd = shutil.which("ldd")
    if run_ldd and ldd is None:
        raise UserError(
            "geonox verify was asked to run ldd, but no ldd is on PATH; install "
            "glibc's ldd (libc-bin) or pass run_ldd=False."
        )
    report = WheelReport(
        wheel=wheel_path.name,
        tag_policy=policy.name if policy else "any",
        arch=policy.arch if policy else "any",
        platform_tags=platforms,
        path=str(wheel_path.resolve()),
    )
    found: list[Violation] = []
    with tempfile.TemporaryDirectory(prefix="geonox-verify-") as tmp:
        root = Path(tmp).resolve()
        try:
            record = Record.read(wheel_path)
            digests = unpack(wheel_path, root, record.algorithms)
        except zipfile.BadZipFile as exc:
            raise UserError(f"{wheel_path} is not a readable wheel ({exc}); rebuild it.") from exc
        facts = WheelFacts.collect(root, policy)
        facts.require_sbom = require_sbom
        components = read_wheel(wheel_path)
        facts.declared = {c.name for c in components}
        facts.sboms = sorted({c.sbom for c in components})
        facts.record_problems = record_problems(wheel_path, digests, record)
        for rel, reason in facts.broken.items():
            found.append(
                Violation(
                    "architecture",
                    rel,
                    f"starts with the ELF magic but cannot be "
                    f"parsed ({reason}), so no loader can load it.",
                )
            )
        for rel, info in facts.files.items():
            kind = kind_of(rel, info)
            file_report = FileReport(
                path=rel,
                machine=info.arch or info.machine,
                kind=kind,
                soname=info.soname,
                needed=list(info.needed),
                max_versions=facts.max_versions(info),
                rpath=info.search_paths,
                exported=[s.name for s in info.exported if s.name not in LINKER_SYMBOLS],
                size=(root / rel).stat().st_size,
                libraries=sorted(facts.contains.get(rel, {})),
                loaded_by=facts.loaded_by.get(rel),
            )
            for rule, kinds, needs_policy in RULE_TABLE:
                if kind in kinds and (policy is not None or not needs_policy):
                    found.extend(_violation(rel, *finding) for finding in rule(facts, rel, info))
            report.files.append(file_report)
        if policy is not None:
            for wheel_rule in WHEEL_RULES:
                found.extend(_violation(*finding) for finding in wheel_rule(facts))
        # ldd -r in the loader's context: on every module (it loads, and so checks, the
        # wheel's libraries through the module's RPATH, as Python's import does), and on
        # the shipped libraries no module loads, on their own.
        by_path = {f.path: f for f in report.files}
        to_check = [
            rel
            for rel, info in facts.files.items()
            if policy is not None
            and by_path[rel].kind != "object"
            and rel not in facts.loaded_by
            and ldd is not None
            and should_run(facts, info, run_ldd, ldd)
        ]
        # one ldd per file, as many at once as there are cores (each is a loader process
        # resolving every relocation: most of verify's time on a wheel of many modules)
        for rel, findings in zip(to_check, _in_parallel(facts, to_check, ldd or "ldd")):
            by_path[rel].ldd_checked = True
            found.extend(_violation(owner, "ldd", *finding) for owner, *finding in findings)
        for rel, loader in facts.loaded_by.items():
            by_path[rel].ldd_checked = by_path[loader].ldd_checked
    order = {rule: i for i, rule in enumerate(RULES)}
    unique = list(dict.fromkeys(found))
    report.violations = sorted(unique, key=lambda v: (v.file, order.get(v.rule, 99)))
    return report


def _in_parallel(facts: WheelFacts, rels: list[str], ldd: str) -> list[list[tuple[str, ...]]]:
    """``ldd_findings`` of each file, in order; one thread per core when there are several
    (concurrent.futures is imported only then: it costs a small wheel's verify 10 %)."""
    if len(rels) < 2:
        return [list(ldd_findings(facts, rel, ldd)) for rel in rels]
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(max_workers=usable_cores()) as pool:
        return list(pool.map(lambda rel: list(ldd_findings(facts, rel, ldd)), rels))


def bundled_libraries(wheel: Path) -> dict[str, set[str]]:
    """Which recipes' libraries the ELF files of ``wheel`` carry (verify's evidence: an
    exported API symbol, or bytes only the implementation holds), per recipe name:
    {"proj": {"geodemo/_geodemo.abi3.so"}, ...}.  The SBOM names what this finds."""
    owner = {lib.name: recipe.name for recipe in registry().values() for lib in recipe.libraries}
    found: dict[str, set[str]] = {}
    with tempfile.TemporaryDirectory(prefix="geonox-bundled-") as tmp:
        root = Path(tmp)
        unpack(wheel, root)
        facts = WheelFacts.collect(root, None)
        for rel, libs in facts.contains.items():
            for lib in libs:
                found.setdefault(owner[lib], set()).add(rel)
    return found


def _violation(file: str, rule: str, detail: str, severity: str | None = None) -> Violation:
    return Violation(rule, file, detail, severity or SEVERITY[rule])


@dataclass(frozen=True)
class Record:
    """A wheel's ``.dist-info/RECORD``, read once: its member name(s) (one, in a sound
    wheel), its rows by path, and the wheel's file members."""

    records: list[str]
    rows: dict[str, list[str]]
    names: list[str]

    @classmethod
    def read(cls, wheel: Path) -> Record:
        with zipfile.ZipFile(wheel) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/")]
            records = [n for n in names if n.count("/") == 1 and n.endswith(".dist-info/RECORD")]
            if len(records) != 1:
                return cls(records, {}, names)
            text = zf.read(records[0]).decode("utf-8", "replace")
        return cls(records, {r[0]: r for r in csv.reader(io.StringIO(text)) if r}, names)

    @property
    def algorithms(self) -> dict[str, str]:
        """member -> the hashlib algorithm RECORD gives it (what :func:`unpack` hashes)."""
        return {name: algo for name, row in self.rows.items() if (algo := _usable_algo(row))}


def _usable_algo(row: list[str]) -> str | None:
    algo = (row[1] if len(row) > 1 else "").partition("=")[0]
    ok = algo in hashlib.algorithms_guaranteed and algo not in ("md5", "sha1")
    return algo if ok else None


def record_problems(
    wheel: Path,
    digests: dict[str, tuple[bytes, int]] | None = None,
    record: Record | None = None,
) -> list[tuple[str, str]]:
    """Every member RECORD does not vouch for: unlisted, or a wrong sha256 or size.
    ``digests``: what :func:`~geonox.verify.facts.unpack` hashed while unpacking (each
    member inflated once); members it did not hash are read here.  ``record``: RECORD as
    the caller read it already."""
    record = record or Record.read(wheel)
    if len(record.records) != 1:
        return [(wheel.name, f"has {len(record.records)} .dist-info/RECORD files, not one")]
    digests = dict(digests or {})
    problems = []
    with zipfile.ZipFile(wheel) as zf:
        for name in record.names:
            if name == record.records[0] or name.endswith(
                (".dist-info/RECORD.jws", ".dist-info/RECORD.p7s")
            ):
                continue
            row = record.rows.get(name)
            if row is None:
                problems.append((name, "is not listed in RECORD"))
                continue
            algo = _usable_algo(row)
            if algo is None:
                problems.append(
                    (name, f"has no usable hash in RECORD ({row[1] if len(row) > 1 else ''!r})")
                )
                continue
            if name not in digests:
                data = zf.read(name)
                digests[name] = (hashlib.new(algo, data).digest(), len(data))
            digest, size = digests[name]
            got = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if got != row[1].partition("=")[2]:
                problems.append((name, f"does not match its {algo} in RECORD"))
            elif len(row) > 2 and row[2] and row[2] != str(size):
                problems.append((name, f"is {size} bytes, RECORD says {row[2]}"))
    return problems


def run_verify_command(
    wheels: Sequence[str],
    as_json: bool,
    exit_zero: bool = False,
    strict: bool = False,
    require_sbom: bool = False,
) -> int:
    """``python -m geonox verify``: print a table (or JSON); 0 if no wheel has an error
    (``strict``: nor a warning), else 1 (``exit_zero``: 0 either way, for callers that read
    the JSON)."""
    if not wheels:
        raise UserError("geonox verify needs at least one wheel path, e.g. wheelhouse/*.whl.")
    for wheel in wheels:
        check_wheel_file(Path(wheel))
        wheel_platform_tags(Path(wheel).name)
    reports = [verify_wheel(w, require_sbom=require_sbom) for w in wheels]
    if as_json:
        print(json.dumps([r.to_dict() for r in reports], indent=2))
    else:
        print(format_table(reports))
    return 0 if exit_zero or all(r.passes(strict) for r in reports) else 1
