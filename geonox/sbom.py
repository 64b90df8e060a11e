"""What a wheel bundles, said the way scanners read it: a CycloneDX 1.6 SBOM (PEP 770,
``<name>.dist-info/sboms/geonox.cdx.json``) with one component per bundled dependency,
static or grafted, and the dependencies' license texts under ``.dist-info/licenses/``.

auditwheel (6.5+) writes its own SBOM for grafted libraries an OS package manager owns;
libraries built from source are invisible to it, and static copies to everyone.  This
module writes geonox's beside it (never over it) and reads both back (``geonox sbom``).

The document is a function of its inputs only (no clock, no random serial number): the
serial number is a UUID derived from the content, the timestamp ``SOURCE_DATE_EPOCH``'s.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import re
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from geonox.recipes import SOURCES_READ, Embedded, Recipe, cpe23
from geonox.sources.model import Source
from geonox.wheelfile import rewriting

SBOM_NAME = "geonox.cdx.json"
SPEC_VERSION = "1.6"
#: A namespace of geonox's own for content-derived serial numbers.
_SERIAL_NAMESPACE = uuid.UUID("0b5c3e5e-6a7e-4c41-9d0a-6e6f78736f6d")


@dataclass(frozen=True)
class Bundled:
    """One dependency inside a wheel, and where it came from."""

    name: str  # "proj"
    version: str  # "9.1.1"
    url: str  # the upstream source archive
    sha256: str  # of that archive, as verified before the build read it
    link: str  # "static" or "shared"
    license: str  # an SPDX license expression: "MIT", "LGPL-2.1-or-later", "blessing"
    supplier: str  # "OSGeo"
    cpe: str  # "cpe:2.3:a:osgeo:proj:9.1.1:*:*:*:*:*:*:*"
    depends: tuple[str, ...] = ()  # names of other bundled dependencies it links
    #: license texts: (file name under licenses/<name>/, bytes)
    license_files: tuple[tuple[str, bytes], ...] = ()
    #: a copy compiled into another bundled dependency (GDAL's libtiff: "gdal@3.10.3"), its
    #: source that one's archive (``url``, ``sha256``); "" for a dependency of its own
    inside: str = ""

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}" if self.version else self.name

    @property
    def purl(self) -> str:
        at = f"@{self.version}" if self.version else ""
        if self.inside:  # its bytes are not at url: that is the archive it came inside
            return f"pkg:generic/{self.name}{at}"
        url = quote(self.url, safe="")
        query = f"download_url={url}&checksum=sha256:{self.sha256}"
        return f"pkg:generic/{self.name}{at}?{query}"


@dataclass(frozen=True)
class BuildFacts:
    """Who built the wheel, with what: the SBOM's metadata."""

    geonox_version: str
    toolchain: str  # the toolchain identity ("gcc-… (cc (Debian 12.2.0-14) 12.2.0)")
    image: str | None = None  # the container image digest that built it, if one did
    source_date_epoch: int | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    tools: Mapping[str, str] = field(
        default_factory=dict
    )  # the pinned build tools: name -> version


def _license(expression: str) -> list[dict[str, Any]]:
    if any(op in expression for op in (" AND ", " OR ", " WITH ", "(")):
        return [{"expression": expression}]
    if expression.startswith("LicenseRef-"):  # not an SPDX id: named, its text beside
        return [{"license": {"name": expression}}]
    return [{"license": {"id": expression}}]


def license_paths(dist_info: str, dep: Bundled) -> list[str]:
    return [f"{dist_info}/licenses/{dep.name}/{name}" for name, _text in dep.license_files]


def document(
    dist: str, version: str, dist_info: str, deps: Sequence[Bundled], facts: BuildFacts
) -> dict[str, Any]:
    """The CycloneDX 1.6 document for wheel ``dist`` ``version`` bundling ``deps``."""
    top = f"pkg:pypi/{dist.lower().replace('_', '-')}@{version}"
    components = []
    for dep in deps:
        properties = [{"name": "geonox:link", "value": dep.link}]
        if dep.inside:
            properties.append({"name": "geonox:compiled-into", "value": dep.inside})
        properties += [
            {"name": "geonox:license-file", "value": p} for p in license_paths(dist_info, dep)
        ]
        component: dict[str, Any] = {
            "type": "library",
            "bom-ref": dep.ref,
            "supplier": {"name": dep.supplier},
            "name": dep.name,
            "licenses": _license(dep.license),
            "purl": dep.purl,
            "externalReferences": [
                {
                    "type": "source-distribution",
                    "url": dep.url,
                    "hashes": [{"alg": "SHA-256", "content": dep.sha256}],
                    **({"comment": f"inside {dep.inside}'s source"} if dep.inside else {}),
                }
            ],
            "properties": properties,
        }
        if dep.version:
            component["version"] = dep.version
        if dep.cpe:
            component["cpe"] = dep.cpe
        components.append(component)
    names = {d.name: d for d in deps}
    dependencies = [{"ref": top, "dependsOn": [d.ref for d in deps]}]
    dependencies += [
        {"ref": d.ref, "dependsOn": [names[n].ref for n in d.depends if n in names]} for d in deps
    ]
    properties = [{"name": "geonox:toolchain", "value": facts.toolchain}]
    if facts.image:
        properties.append({"name": "geonox:image", "value": facts.image})
    properties += [{"name": f"geonox:{k}", "value": v} for k, v in sorted(facts.extra.items())]
    epoch = facts.source_date_epoch if facts.source_date_epoch is not None else 0
    metadata = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)),
        "tools": {
            "components": [
                {"type": "application", "name": "geonox", "version": facts.geonox_version},
                *(
                    {
                        "type": "application",
                        "name": name,
                        "version": version,
                        "purl": f"pkg:pypi/{name}@{version}",
                    }
                    for name, version in sorted(facts.tools.items())
                ),
            ]
        },
        "component": {
            "type": "library",
            "bom-ref": top,
            "name": dist,
            "version": version,
            "purl": top,
        },
        "properties": properties,
    }
    body = {"metadata": metadata, "components": components, "dependencies": dependencies}
    serial = uuid.uuid5(_SERIAL_NAMESPACE, json.dumps(body, sort_keys=True))
    return {
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": serial.urn,
        "version": 1,
        **body,
    }


def dist_info_dir(names: Sequence[str]) -> str:
    """The wheel's ``*.dist-info`` directory (the one holding WHEEL)."""
    found = sorted(
        {
            PurePosixPath(n).parts[0]
            for n in names
            if PurePosixPath(n).parts[0].endswith(".dist-info") and PurePosixPath(n).name == "WHEEL"
        }
    )
    if len(found) != 1:
        raise ValueError(f"expected one .dist-info directory with a WHEEL file, found {found}")
    return found[0]


def add_to_wheel(wheel: Path, deps: Sequence[Bundled], facts: BuildFacts) -> str:
    """Write the SBOM and the license texts into ``wheel`` (in place; RECORD rewritten with
    their hashes and sizes, entries stamped with the facts' time).  Returns the SBOM's path
    inside the wheel."""
    with zipfile.ZipFile(wheel) as zf:
        dist_info = dist_info_dir(zf.namelist())
    dist, version = dist_info[: -len(".dist-info")].split("-", 1)
    doc = document(dist, version, dist_info, deps, facts)
    with rewriting(wheel, facts.source_date_epoch) as root:
        sbom = root / dist_info / "sboms" / SBOM_NAME
        sbom.parent.mkdir(parents=True, exist_ok=True)
        sbom.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        for dep in deps:
            for name, text in dep.license_files:
                path = root / dist_info / "licenses" / dep.name / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(text)
    return f"{dist_info}/sboms/{SBOM_NAME}"


def bundled(
    present: Collection[str],
    deps: Sequence[tuple[Recipe, Source, str, Path]],
    archive_of: Callable[[Source], Path],
) -> list[Bundled]:
    """A :class:`Bundled` for each dependency (recipe, verified source, link mode, its
    built artifact) whose library the wheel carries (``present``: recipe names, as verify
    finds them in its ELF files), its license texts read from its verified source archive;
    then one for each third-party copy it compiled in (:attr:`Recipe.embedded`, as its
    artifact's list of the source files its build read says)."""
    out = []
    for recipe, source, link, artifact in deps:
        prov = recipe.provenance
        if recipe.name not in present or prov is None:
            continue
        archive = archive_of(source)
        inner = embedded(recipe, artifact)
        licenses = [*prov.license_files, *(p for e in inner for p in e.license_files)]
        versions = [e.version_file for e in inner if e.version_file]
        with extracted(archive, [*licenses, *versions]) as src:
            texts = dict(zip(licenses, license_texts(src, licenses)))
            said = {p: (src / p).read_text(errors="replace") for p in versions}
        out.append(
            Bundled(
                name=recipe.name,
                version=source.version,
                url=source.url,
                sha256=source.sha256,
                link=link,
                license=prov.license,
                supplier=prov.supplier,
                cpe=prov.cpe(source.version),
                depends=tuple(d for d in recipe.depends if d in present)
                + tuple(e.name for e in inner),
                license_files=tuple(texts[p] for p in prov.license_files),
            )
        )
        for e in inner:
            version = e.version(said[e.version_file]) if e.version_file else ""
            out.append(
                Bundled(
                    name=e.name,
                    version=version,
                    url=source.url,
                    sha256=source.sha256,
                    link="static",
                    license=e.license,
                    supplier=e.supplier,
                    cpe=cpe23(*e.cpe, version or "*") if e.cpe else "",
                    license_files=tuple(texts[p] for p in e.license_files),
                    inside=f"{recipe.name}@{source.version}",
                )
            )
    return out


def embedded(recipe: Recipe, artifact: Path) -> list[Embedded]:
    """The third-party copies ``recipe``'s build compiled in: those of
    :attr:`Recipe.embedded` whose files the build read, by the list its artifact holds."""
    if not recipe.embedded:
        return []
    listing = artifact / SOURCES_READ.format(name=recipe.name)
    if not listing.is_file():
        raise FileNotFoundError(f"{listing}: the build of {recipe.name} did not list its sources")
    # the compilers name some files through ".." ("port/../third_party/fast_float/...")
    read = {posixpath.normpath(p) for p in listing.read_text().split()}
    return [e for e in recipe.embedded if e.used_by(read)]


@dataclass(frozen=True)
class Component:
    """One component some SBOM in a wheel names (geonox's or auditwheel's)."""

    name: str
    version: str
    sha256: str | None
    license: str | None
    link: str | None
    purl: str | None
    sbom: str  # the SBOM file it was read from
    inside: str | None = None  # compiled into that other component ("gdal@3.10.3")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "license": self.license,
            "link": self.link,
            "purl": self.purl,
            "sbom": self.sbom,
            "inside": self.inside,
        }


def _component(raw: dict[str, Any], sbom: str) -> Component:
    sha = None
    for ref in raw.get("externalReferences", []):
        for h in ref.get("hashes", []):
            if h.get("alg") == "SHA-256":
                sha = h.get("content")
    for h in raw.get("hashes", []):
        if sha is None and h.get("alg") == "SHA-256":
            sha = h.get("content")
    licenses = []
    for entry in raw.get("licenses", []):
        if "expression" in entry:
            licenses.append(entry["expression"])
        elif "license" in entry:
            lic = entry["license"]
            licenses.append(lic.get("id") or lic.get("name") or "")
    props = {p.get("name"): p.get("value") for p in raw.get("properties", [])}
    return Component(
        name=raw.get("name", "?"),
        version=raw.get("version", ""),
        sha256=sha,
        license=" AND ".join(x for x in licenses if x) or None,
        link=props.get("geonox:link"),
        purl=raw.get("purl"),
        sbom=sbom,
        inside=props.get("geonox:compiled-into"),
    )


def read_wheel(wheel: Path) -> list[Component]:
    """Every component of every CycloneDX JSON SBOM under ``*.dist-info/sboms/``."""
    found: list[Component] = []
    with zipfile.ZipFile(wheel) as zf:
        for name in sorted(zf.namelist()):
            parts = PurePosixPath(name).parts
            if (
                len(parts) == 3
                and parts[0].endswith(".dist-info")
                and parts[1] == "sboms"
                and name.endswith(".json")
            ):
                try:
                    doc = json.loads(zf.read(name))
                except ValueError:
                    continue
                if doc.get("bomFormat") != "CycloneDX":
                    continue
                # auditwheel names the wheel itself among its components: not bundled
                itself = (doc.get("metadata") or {}).get("component", {}).get("bom-ref")
                found += [
                    _component(c, name)
                    for c in doc.get("components", [])
                    if itself is None or c.get("bom-ref") != itself
                ]
    return found


#: Source files whose license notice (a comment near the head) stands for a license text.
SOURCE_SUFFIXES = (".c", ".h", ".cpp", ".hpp")
NOTICE_RE = rb"disclaims copyright|[Ll]icen[sc]e|Permission (?:is |to use|granted)"


def license_texts(src: Path, paths: Sequence[str]) -> tuple[tuple[str, bytes], ...]:
    """The license texts at ``paths`` of an extracted source tree, as (file name, bytes).
    A C source file stands for its first comment block that states a license or
    disclaims copyright (SQLite's blessing, near the head of sqlite3.c; the 9 MB around
    it is not a license text).  Nested paths keep their
    directories in the name (``src/deps/ryu/LICENSE`` -> ``src-deps-ryu-LICENSE``)."""
    texts = []
    for rel in paths:
        path = src / rel
        data = path.read_bytes()
        name = rel.replace("/", "-")
        if rel.endswith(SOURCE_SUFFIXES):
            head = data[:200_000]
            blocks = re.findall(rb"/\*.*?\*/", head, flags=re.S)
            blocks += re.findall(rb"(?:^//[^\n]*\n)+", head, flags=re.M)  # // headers
            notice = [b for b in blocks if re.search(NOTICE_RE, b)]
            data = (notice or blocks)[0].rstrip(b"\n") + b"\n"
            name = rel.rsplit("/", 1)[-1].rsplit(".", 1)[0] + "-LICENSE"
        texts.append((name, data))
    return tuple(texts)


@contextlib.contextmanager
def extracted(archive: Path, paths: Collection[str]) -> Iterator[Path]:
    """The files at ``paths`` under a (verified) source archive's one top-level
    directory, extracted in one pass into a temporary tree (yielded: that directory)."""
    wanted = set(paths)
    import tarfile  # only here: verify imports this module and never reads an archive

    with tempfile.TemporaryDirectory(prefix="geonox-licenses-") as tmp, tarfile.open(archive) as tf:
        top = None
        for member in tf:  # one pass: a compressed stream read backwards is read again
            top = top or member.name.split("/")[0]
            if member.name.startswith(f"{top}/") and member.name[len(top) + 1 :] in wanted:
                tf.extract(member, tmp, filter="data")
                wanted.discard(member.name[len(top) + 1 :])
        if wanted:
            raise FileNotFoundError(f"{archive.name} has no {', '.join(sorted(wanted))}")
        yield Path(tmp) / str(top)
