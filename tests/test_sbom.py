"""The SBOM geonox writes into a wheel: CycloneDX 1.6, schema-valid (cyclonedx-python-lib's
validator), naming the mirror's real PROJ/GEOS/SQLite releases with their sha256, licenses
and license texts (taken from the real source archives), in a real repaired wheel that
pip still installs, with a RECORD that matches."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

import pytest
from conftest import rewrite_members

from geonox import __version__ as GEONOX_VERSION
from geonox.recipes import registry
from geonox.sbom import BuildFacts, Bundled, add_to_wheel, document, license_texts, read_wheel

MIRROR_FILES = {
    "proj": "proj-9.1.1.tar.gz",
    "geos": "geos-3.13.1.tar.bz2",
    "sqlite": "sqlite-autoconf-3520000.tar.gz",
}
VERSIONS = {"proj": "9.1.1", "geos": "3.13.1", "sqlite": "3.52.0"}


def bundled(mirror: Path, tmp_path: Path, link: str = "static") -> list[Bundled]:
    deps = []
    recipes = registry()
    for name in ("sqlite", "geos", "proj"):
        recipe, version = recipes[name], VERSIONS[name]
        source = recipe.releases[version]
        archive = mirror / MIRROR_FILES[name]
        assert hashlib.sha256(archive.read_bytes()).hexdigest() == source.sha256
        with tarfile.open(archive) as tf:
            top = tf.getnames()[0].split("/")[0]
            wanted = [f"{top}/{p}" for p in recipe.provenance.license_files]
            tf.extractall(
                tmp_path / "src", members=[tf.getmember(w) for w in wanted], filter="data"
            )
        prov = recipe.provenance
        deps.append(
            Bundled(
                name=name,
                version=version,
                url=source.url,
                sha256=source.sha256,
                link=link,
                license=prov.license,
                supplier=prov.supplier,
                cpe=prov.cpe(version),
                depends=recipe.depends,
                license_files=license_texts(tmp_path / "src" / top, prov.license_files),
            )
        )
    return deps


def test_sbom_is_schema_valid_cyclonedx_1_6(mirror, tmp_path):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    deps = bundled(mirror, tmp_path)
    doc = document(
        "geodemo",
        "0.1.0",
        "geodemo-0.1.0.dist-info",
        deps,
        BuildFacts(
            GEONOX_VERSION,
            "gcc-123 (cc 12.2.0)",
            image="sha256:" + "0" * 64,
            source_date_epoch=1700000000,
        ),
    )
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(doc))
    assert error is None, error
    by_name = {c["name"]: c for c in doc["components"]}
    assert by_name["proj"]["cpe"] == "cpe:2.3:a:osgeo:proj:9.1.1:*:*:*:*:*:*:*"
    assert by_name["geos"]["cpe"] == "cpe:2.3:a:osgeo:geos:3.13.1:*:*:*:*:*:*:*"
    assert by_name["sqlite"]["cpe"] == "cpe:2.3:a:sqlite:sqlite:3.52.0:*:*:*:*:*:*:*"
    assert (
        by_name["proj"]["externalReferences"][0]["hashes"][0]["content"]
        == "003cd4010e52bb5eb8f7de1c143753aa830c8902b6ed01209f294846e40e6d39"
    )
    assert by_name["proj"]["purl"].endswith(
        "checksum=sha256:003cd4010e52bb5eb8f7de1c143753aa830c8902b6ed01209f294846e40e6d39"
    )
    assert by_name["proj"]["licenses"] == [{"license": {"id": "MIT"}}]
    assert {"ref": "proj@9.1.1", "dependsOn": ["sqlite@3.52.0"]} in doc["dependencies"]
    assert doc["metadata"]["timestamp"] == "2023-11-14T22:13:20Z"
    # the same inputs, the same bytes (no clock, no random serial number)
    again = document(
        "geodemo",
        "0.1.0",
        "geodemo-0.1.0.dist-info",
        bundled(mirror, tmp_path / "b"),
        BuildFacts(
            GEONOX_VERSION,
            "gcc-123 (cc 12.2.0)",
            image="sha256:" + "0" * 64,
            source_date_epoch=1700000000,
        ),
    )
    assert json.dumps(again, sort_keys=True) == json.dumps(doc, sort_keys=True)


def _record_matches(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        record = next(n for n in zf.namelist() if n.endswith(".dist-info/RECORD"))
        rows = {r[0]: r for r in csv.reader(io.StringIO(zf.read(record).decode()))}
        for name in zf.namelist():
            if name == record or name.endswith("/"):
                continue
            data = zf.read(name)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert rows[name][1:] == [f"sha256={digest}", str(len(data))], name


@pytest.fixture
def main_job_wheel(main_job) -> Path:
    """The wheel the main job repaired (its SBOM written by geonox's repair step)."""
    result, wheelhouse = main_job
    assert result.returncode == 0, result.stdout[-3000:]
    (wheel,) = sorted(wheelhouse.glob("geodemo-*.whl"))
    return wheel


def without_sbom(wheel: Path, dest: Path) -> Path:
    """A copy of ``wheel`` with its SBOMs and bundled license texts removed (RECORD rewritten
    by auditwheel's InWheel): what a wheel looks like when nobody declared what it bundles."""
    from auditwheel.wheeltools import InWheel

    dest.mkdir(parents=True, exist_ok=True)
    out = dest / wheel.name
    with InWheel(wheel, out):
        for dist_info in Path.cwd().glob("*.dist-info"):
            for sub in ("sboms", "licenses"):
                shutil.rmtree(dist_info / sub, ignore_errors=True)
    with zipfile.ZipFile(out) as zf:
        assert not [n for n in zf.namelist() if "/sboms/" in n]
    return out


def test_the_main_jobs_wheel_declares_what_it_bundles(main_job_wheel, mirror):
    """The repair step of the main job wrote a schema-valid SBOM naming the mirror's PROJ,
    GEOS and SQLite with their sha256 and licenses, and their license texts; RECORD matches."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    wheel = main_job_wheel
    _record_matches(wheel)
    with zipfile.ZipFile(wheel) as zf:
        doc = zf.read("geodemo-0.1.0.dist-info/sboms/geonox.cdx.json").decode()
        names = zf.namelist()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(doc) is None
    assert "geodemo-0.1.0.dist-info/licenses/geos/COPYING" in names
    assert "geodemo-0.1.0.dist-info/licenses/sqlite/sqlite3-LICENSE" in names
    components = {c.name: c for c in read_wheel(wheel)}
    assert {n: c.version for n, c in components.items()} == VERSIONS
    for name, component in components.items():
        archive = mirror / MIRROR_FILES[name]
        assert component.sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()
        assert component.license == registry()[name].provenance.license
        assert component.link == "static"


def test_sbom_and_licenses_added_to_a_wheel_that_pip_installs(main_job_wheel, mirror, tmp_path):
    wheel = without_sbom(main_job_wheel, tmp_path / "plain")
    path = add_to_wheel(wheel, bundled(mirror, tmp_path), BuildFacts(GEONOX_VERSION, "gcc-x"))
    assert path == "geodemo-0.1.0.dist-info/sboms/geonox.cdx.json"
    _record_matches(wheel)
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert "geodemo-0.1.0.dist-info/licenses/geos/COPYING" in names
        assert b"GNU LESSER GENERAL PUBLIC LICENSE" in zf.read(
            "geodemo-0.1.0.dist-info/licenses/geos/COPYING"
        )
        blessing = zf.read("geodemo-0.1.0.dist-info/licenses/sqlite/sqlite3-LICENSE")
        assert b"May you do good and not evil" in blessing and len(blessing) < 4000
    components = {c.name: c for c in read_wheel(wheel)}
    assert set(components) == {"proj", "geos", "sqlite"}
    assert components["geos"].license == "LGPL-2.1-or-later AND (Apache-2.0 OR BSL-1.0)"
    assert components["sqlite"].sha256 == registry()["sqlite"].releases["3.52.0"].sha256
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    installed = subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel],
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stderr


def test_geonox_sbom_lists_what_a_wheel_says_it_bundles(main_job_wheel, mirror, tmp_path):
    """``python -m geonox sbom`` on a wheel with geonox's SBOM, and on one with none."""
    tagged = main_job_wheel
    plain = without_sbom(tagged, tmp_path / "plain")
    out = subprocess.run(
        [sys.executable, "-m", "geonox", "sbom", "--json", tagged, plain],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    listed = {c["name"]: c for c in report[0]["components"]}
    assert sorted(listed) == ["geos", "proj", "sqlite"]
    assert listed["proj"]["sha256"] == registry()["proj"].releases["9.1.1"].sha256
    assert listed["geos"]["link"] == "static"
    assert report[1]["components"] == []
    text = subprocess.run(
        [sys.executable, "-m", "geonox", "sbom", plain], capture_output=True, text=True
    )
    assert "0 bundled component(s) (no SBOM under .dist-info/sboms/)" in text.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "geonox", "sbom", tmp_path / "nope.whl"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "nope.whl" in bad.stderr


def test_verify_knows_undeclared_bundles_and_a_wrong_record(main_job_wheel, mirror, tmp_path):
    """verify: a wheel carrying PROJ/GEOS/SQLite with no SBOM naming them is an error where
    an SBOM is required (geonox's gate), a warning elsewhere; once the SBOM names them,
    nothing; a member changed behind RECORD's back is an error."""
    from geonox.verify import verify_wheel

    plain = without_sbom(main_job_wheel, tmp_path / "plain")

    def findings(wheel, rule, **kw):
        return [
            (v.severity, v.detail) for v in verify_wheel(wheel, **kw).violations if v.rule == rule
        ]

    required = findings(plain, "undeclared-bundle", require_sbom=True)
    assert sorted(d.split(" (")[0].removeprefix("carries ") for _s, d in required) == [
        "geos",
        "proj",
        "sqlite",
    ]
    assert {s for s, _d in required} == {"error"} and "no SBOM" in required[0][1]
    assert {s for s, _d in findings(plain, "undeclared-bundle")} == {"warning"}
    assert findings(plain, "record") == []
    declared = tmp_path / "sbom" / plain.name
    declared.parent.mkdir()
    declared.write_bytes(plain.read_bytes())
    add_to_wheel(declared, bundled(mirror, tmp_path), BuildFacts(GEONOX_VERSION, "gcc-x"))
    assert findings(declared, "undeclared-bundle", require_sbom=True) == []
    assert verify_wheel(declared, require_sbom=True).passes(False)
    # one component dropped from the SBOM: named as undeclared
    partial = tmp_path / "partial" / plain.name
    partial.parent.mkdir()
    partial.write_bytes(plain.read_bytes())
    add_to_wheel(
        partial,
        [d for d in bundled(mirror, tmp_path) if d.name != "geos"],
        BuildFacts(GEONOX_VERSION, "gcc-x"),
    )
    (only,) = findings(partial, "undeclared-bundle", require_sbom=True)
    assert only[1].startswith("carries geos") and "does not name it" in only[1]
    # a member rewritten without RECORD
    tampered = tmp_path / "tampered" / plain.name
    rewrite_members(
        declared,
        tampered,
        lambda name, data: data + b"\n# changed\n" if name.endswith("/__init__.py") else data,
    )
    problems = findings(tampered, "record")
    assert problems and all(s == "error" for s, _d in problems), problems
    assert any("does not match its sha256 in RECORD" in d for _s, d in problems)


GDAL_ARCHIVE = "gdal_3.10.3+dfsg.orig.tar.xz"


@pytest.fixture(scope="module")
def gdal_tree(mirror) -> list[str]:
    """The paths of the mirror's GDAL source tree, under its top-level directory."""
    with tarfile.open(mirror / GDAL_ARCHIVE) as tf:
        names = tf.getnames()
    top = names[0].split("/")[0]
    return [n[len(top) + 1 :] for n in names if n.startswith(top + "/")]


def test_every_third_party_copy_in_gdals_tree_is_named(gdal_tree):
    """A directory of GDAL's tree with a license file of its own holds someone else's code:
    each is one of the recipe's embedded libraries, whose license and version files exist
    (a GDAL release that vendors something new fails here, not silently in an SBOM)."""
    from geonox.recipes.gdal import EMBEDDED

    files = set(gdal_tree)
    licensed = {
        str(PurePosixPath(p).parent)
        for p in files
        if re.match(r"(LICEN[CS]E|COPYING)", PurePosixPath(p).name, re.I) and "/" in p
        and not p.startswith(("doc/", "autotest/", "swig/"))
    }  # fmt: skip
    assert len(licensed) >= 10, sorted(licensed)
    unnamed = [d for d in sorted(licensed) if not any(e.used_by([f"{d}/x"]) or any(
        p.startswith(f"{d}/") for p in e.paths) for e in EMBEDDED)]  # fmt: skip
    assert unnamed == []
    for e in EMBEDDED:
        assert all(f in files for f in e.license_files), e.name
        assert not e.version_file or e.version_file in files, e.name


def test_gdal_sbom_names_what_the_build_compiled_in(mirror, tmp_path):
    """The components inside GDAL are the embedded libraries whose files its build read
    (the artifact's list), with versions and license texts from the verified archive;
    the document stays schema-valid with components that name no version."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    from geonox.recipes import SOURCES_READ
    from geonox.sbom import bundled as sbom_bundled
    from geonox.sources.model import Source

    gdal = registry()["gdal"]
    archive = mirror / GDAL_ARCHIVE
    source = Source(
        "gdal", "3.10.3", archive.as_uri(), hashlib.sha256(archive.read_bytes()).hexdigest()
    )
    artifact = tmp_path / "artifact"
    listing = artifact / SOURCES_READ.format(name="gdal")
    listing.parent.mkdir(parents=True)
    listing.write_text(
        "frmts/gtiff/libtiff/tif_aux.c\nfrmts/gtiff/geotiff.cpp\nfrmts/zlib/adler32.c\n"
        "ogr/ogrsf_frmts/shape/shpopen.c\nogr/ogrsf_frmts/flatgeobuf/packedrtree.h\n"
        "gcore/gdaldataset.cpp\n"
    )
    deps = sbom_bundled({"gdal"}, [(gdal, source, "shared", artifact)], lambda s: archive)
    by_name = {d.name: d for d in deps}
    assert list(by_name) == ["gdal", "libtiff", "zlib", "shapelib", "flatgeobuf"]
    assert [by_name[n].version for n in by_name] == ["3.10.3", "4.6.0", "1.3.1", "1.6.0", ""]
    assert by_name["gdal"].depends == ("libtiff", "zlib", "shapelib", "flatgeobuf")
    libtiff = dict(by_name["libtiff"].license_files)
    assert list(libtiff) == ["tiff-LICENSE"]
    assert b"Sam Leffler" in libtiff["tiff-LICENSE"]
    assert b"typedef" not in libtiff["tiff-LICENSE"]  # the notice only
    doc = document("pyogrio", "0.13.0", "pyogrio-0.13.0.dist-info", deps,
                   BuildFacts(GEONOX_VERSION, "gcc-x"))  # fmt: skip
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(doc))
    assert error is None, error
    components = {c["bom-ref"]: c for c in doc["components"]}
    assert components["libtiff@4.6.0"]["purl"] == "pkg:generic/libtiff@4.6.0"
    assert components["libtiff@4.6.0"]["cpe"] == "cpe:2.3:a:libtiff:libtiff:4.6.0:*:*:*:*:*:*:*"
    assert "version" not in components["flatgeobuf"]
    assert {"name": "geonox:compiled-into", "value": "gdal@3.10.3"} in components["zlib@1.3.1"][
        "properties"
    ]
    # an artifact without the list (a build that did not write it) is an error, not an
    # SBOM that silently leaves GDAL's insides out
    listing.unlink()
    with pytest.raises(FileNotFoundError, match="did not list its sources"):
        sbom_bundled({"gdal"}, [(gdal, source, "shared", artifact)], lambda s: archive)
