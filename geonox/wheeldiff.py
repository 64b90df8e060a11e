"""Where two wheels differ: ``python -m geonox diff A.whl B.whl``.

A reproducible build gives byte-identical wheels; when it does not, this names the first
member that differs (in A's order: added, removed, reordered, zip metadata or bytes) and,
for an ELF member, the sections whose bytes differ, so the cause (a build path in
``.debug_str`` or ``.rodata``, a timestamp, a build-id) can be read off.  diffoscope says
more, slowly; this says enough to start, with pyelftools only.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elftools.elf.elffile import ELFFile

from geonox.errors import UserError


@dataclass
class MemberDiff:
    name: str
    what: str  # "only in A", "only in B", "order", "zip metadata", "bytes"
    detail: str = ""
    sections: list[str] = field(default_factory=list)  # ELF sections whose bytes differ

    def to_dict(self) -> dict[str, Any]:
        return {
            "member": self.name,
            "what": self.what,
            "detail": self.detail,
            "sections": self.sections,
        }


@dataclass
class WheelDiff:
    a: Path
    b: Path
    identical: bool
    sha256: tuple[str, str]
    members: list[MemberDiff]  # every member that differs, A's order first

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": str(self.a),
            "b": str(self.b),
            "identical": self.identical,
            "sha256": list(self.sha256),
            "members": [m.to_dict() for m in self.members],
        }


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def elf_sections_that_differ(a: bytes, b: bytes) -> list[str]:
    """Names of the sections of two ELF images whose contents (or size) differ, in A's
    section order; sections only one has are named with a ``+``/``-`` mark."""

    def sections(data: bytes) -> dict[str, bytes]:
        elf = ELFFile(io.BytesIO(data))
        out = {}
        for s in elf.iter_sections():
            if s.name:
                out[s.name] = b"" if s.header["sh_type"] == "SHT_NOBITS" else s.data()
        return out

    sa, sb = sections(a), sections(b)
    names = [n for n in sa if n not in sb or sa[n] != sb[n]]
    changed = [n if n in sb else f"-{n}" for n in names]
    changed += [f"+{n}" for n in sb if n not in sa]
    if not changed and a != b:
        changed = ["(headers or padding)"]
    return changed


def _zip_meta(info: zipfile.ZipInfo) -> tuple[Any, ...]:
    return (info.date_time, info.external_attr, info.compress_type, info.create_system)


def diff_wheels(a: Path, b: Path) -> WheelDiff:
    for path in (a, b):
        if not path.is_file():
            raise UserError(
                f"{path}: no such wheel. Pass two .whl files: python -m geonox diff A.whl B.whl"
            )
    try:
        za, zb = zipfile.ZipFile(a), zipfile.ZipFile(b)
    except zipfile.BadZipFile as exc:
        raise UserError(f"not a wheel (zip): {exc}. Pass two .whl files.") from None
    with za, zb:
        ia = {i.filename: i for i in za.infolist()}
        ib = {i.filename: i for i in zb.infolist()}
        out: list[MemberDiff] = []
        order_a = [n for n in ia if n in ib]
        order_b = [n for n in ib if n in ia]
        for name in ia:
            if name not in ib:
                out.append(MemberDiff(name, "only in A"))
                continue
            da, db = za.read(name), zb.read(name)
            if da != db:
                sections: list[str] = []
                if da[:4] == b"\x7fELF" and db[:4] == b"\x7fELF":
                    try:
                        sections = elf_sections_that_differ(da, db)
                    except Exception as exc:  # a damaged ELF file still differs
                        sections = [f"(unreadable ELF: {exc})"]
                out.append(MemberDiff(name, "bytes", f"{len(da)} vs {len(db)} bytes", sections))
            elif _zip_meta(ia[name]) != _zip_meta(ib[name]):
                out.append(
                    MemberDiff(
                        name,
                        "zip metadata",
                        f"date/mode/compression {_zip_meta(ia[name])} vs {_zip_meta(ib[name])}",
                    )
                )
        for name in ib:
            if name not in ia:
                out.append(MemberDiff(name, "only in B"))
        if order_a != order_b:
            first = next(i for i, (x, y) in enumerate(zip(order_a, order_b)) if x != y)
            out.append(
                MemberDiff(
                    order_a[first],
                    "order",
                    f"member {first} is {order_a[first]} in A, {order_b[first]} in B",
                )
            )
    sha = (_sha(a), _sha(b))
    return WheelDiff(a, b, sha[0] == sha[1], sha, out)


def render(diff: WheelDiff) -> str:
    if diff.identical:
        return f"identical: sha256 {diff.sha256[0]}"
    lines = [f"A {diff.a}: sha256 {diff.sha256[0]}", f"B {diff.b}: sha256 {diff.sha256[1]}"]
    if not diff.members:
        lines.append(
            "every member and its zip metadata are equal: the archives differ in "
            "their zip headers or comment only"
        )
    shown = 8
    for i, m in enumerate(diff.members[:shown]):
        mark = "first difference" if i == 0 else "also"
        line = f"{mark}: {m.name}: {m.what}" + (f" ({m.detail})" if m.detail else "")
        if m.sections:
            line += f"; ELF sections that differ: {', '.join(m.sections)}"
        lines.append(line)
    if len(diff.members) > shown:
        rest = diff.members[shown:]
        kinds = sorted({m.what for m in rest})
        lines.append(
            f"and {len(rest)} more member(s) differ ({', '.join(kinds)}); --json lists them all"
        )
    return "\n".join(lines)
