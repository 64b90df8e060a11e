"""What verify says about a wheel: violations, per-file facts, the report, as a table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

RULES = (
    "architecture",
    "needed-library",
    "glibc-version",
    "cxx-runtime-version",
    "unversioned-libc",
    "rpath",
    "musl-relr",
    "exported-library-api",
    "exported-symbols",
    "duplicate-library",
    "undeclared-bundle",
    "record",
    "ldd",
)


@dataclass(frozen=True)
class Violation:
    rule: str  # one of RULES
    file: str  # path inside the wheel, e.g. "geodemo/_geodemo.abi3.so"
    detail: str  # a sentence naming the offending value(s) and the limit
    severity: str = "error"  # "error": fails on a system the tag admits; "warning": style


@dataclass
class FileReport:
    path: str  # path inside the wheel
    machine: str  # "x86_64", "aarch64", ... (raw e_machine if unknown)
    kind: str  # "extension", "shared-library", "executable", "object"
    soname: str | None = None
    needed: list[str] = field(default_factory=list)
    max_versions: dict[str, str] = field(default_factory=dict)  # {"GLIBC": "2.17", ...}
    rpath: list[str] = field(default_factory=list)  # DT_RPATH + DT_RUNPATH entries
    exported: list[str] = field(default_factory=list)  # defined dynamic symbols (minus linker ones)
    ldd_checked: bool = False
    size: int = 0  # bytes
    libraries: list[str] = field(default_factory=list)  # known libraries it carries ("geos_c")
    loaded_by: str | None = None  # the module whose loader context checked it (a shipped library)


@dataclass
class WheelReport:
    wheel: str  # file name
    tag_policy: str  # "manylinux_2_28", "linux", "any"
    arch: str  # "x86_64", ... ("any" for a pure wheel)
    files: list[FileReport] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    platform_tags: list[str] = field(default_factory=list)
    path: str = ""

    @property
    def errors(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "error"]

    @property
    def warnings(self) -> list[Violation]:
        return [v for v in self.violations if v.severity != "error"]

    @property
    def ok(self) -> bool:
        """No errors (warnings are shown, not failed on)."""
        return not self.errors

    def passes(self, strict: bool = False) -> bool:
        return not (self.violations if strict else self.errors)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WheelReport:
        """The inverse of :meth:`to_dict` (a report made where the wheel could run)."""
        return cls(
            wheel=data["wheel"],
            tag_policy=data["tag_policy"],
            arch=data["arch"],
            files=[FileReport(**f) for f in data.get("files", [])],
            violations=[Violation(**x) for x in data.get("violations", [])],
            platform_tags=list(data.get("platform_tags", [])),
            path=data.get("path", ""),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "wheel": self.wheel,
            "path": self.path,
            "tag_policy": self.tag_policy,
            "arch": self.arch,
            "platform_tags": list(self.platform_tags),
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "files": [asdict(f) for f in self.files],
            "violations": [asdict(v) for v in self.violations],
        }


def _file_status(report: WheelReport, path: str) -> str:
    errors = sorted({v.rule for v in report.errors if v.file == path})
    warnings = sorted({v.rule for v in report.warnings if v.file == path} - set(errors))
    return ",".join(errors + [f"{w}?" for w in warnings]) or "ok"


def _size(n: int) -> str:
    return f"{n / 1048576:.1f} MiB" if n >= 1048576 else f"{n / 1024:.0f} KiB"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def format_table(reports: Sequence[WheelReport]) -> str:
    """A plain-text table per wheel, for people."""
    blocks = []
    for report in reports:
        lines = [report.wheel]
        tags = ", ".join(report.platform_tags)
        if report.tag_policy == "any":
            lines.append(f"  policy: none (pure wheel, tags: {tags})")
        else:
            lines.append(f"  policy: {report.tag_policy}_{report.arch} (tags: {tags})")
        header = ("FILE", "MACHINE", "GLIBC", "GLIBCXX", "NEEDED", "EXPORTS", "STATUS")
        rows = [
            (
                f.path,
                f.machine,
                f.max_versions.get("GLIBC", "-"),
                f.max_versions.get("GLIBCXX", "-"),
                str(len(f.needed)),
                str(len(f.exported)),
                _file_status(report, f.path),
            )
            for f in report.files
        ]
        if rows:
            widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
            for row in [header, *rows]:
                lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        else:
            lines.append("  (no ELF files)")
        shipped = [f for f in report.files if f.kind == "shared-library"]
        if shipped:
            lines.append(
                "  bundled libraries: "
                + ", ".join(
                    f"{f.path} ({_size(f.size)}"
                    + (f", {'+'.join(f.libraries)})" if f.libraries else ")")
                    for f in shipped
                )
            )
        if report.violations:
            width = max(len(v.rule) for v in report.violations)
            for v in report.errors + report.warnings:
                mark = "error  " if v.severity == "error" else "warning"
                lines.append(f"  {mark}  {v.rule.ljust(width)}  {v.file}: {v.detail}")
            ne, nw = len(report.errors), len(report.warnings)
            lines.append(
                f"  {_plural(ne, 'error')}, {_plural(nw, 'warning')}"
                + ("" if ne else " (OK; --strict fails on warnings)")
            )
        else:
            lines.append("  OK")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
