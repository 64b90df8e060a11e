"""What the repository says of itself agrees with the code: the noxfile's PEP 723 header
and pyproject's dependencies, every relative link of the README and docs/, the generated
options table, the module map, and the options table against the Config it fills."""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

from test_layers import LAYERS

from geonox.config import OPTIONS, Config, options_markdown

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted((REPO / "docs").glob("*.md"))
PAGES = [REPO / "README.md", *DOCS]


def test_the_noxfiles_header_brings_what_geonox_needs():
    """The repo noxfile's PEP 723 header lists geonox's own dependencies, nox among them (so
    a nox alone can run it), exactly as pyproject does: neither drifts from the other."""
    from nox.project import load_toml
    from packaging.requirements import Requirement
    from packaging.version import Version

    header = [Requirement(r) for r in load_toml(str(REPO / "noxfile.py"))["dependencies"]]
    project = [
        Requirement(r)
        for r in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    ]

    def by_name(reqs):
        return {r.name: (str(r.specifier), str(r.marker)) for r in reqs}

    assert by_name(header) == by_name(project)
    (nox_req,) = [r for r in header if r.name == "nox"]
    assert not nox_req.specifier.contains(Version("2024.10.9"))  # script mode: 2025.02.09


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    body = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {_slug(m) for m in re.findall(r"^#+ (.+)$", body, flags=re.M)}


def _links(page: Path) -> list[str]:
    body = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return re.findall(r"\]\(([^)\s]+)\)", body)


def test_every_relative_link_of_the_readme_and_docs_resolves():
    assert DOCS, "no docs/*.md"
    broken = []
    checked = 0
    for page in PAGES:
        for link in _links(page):
            if re.match(r"[a-z]+:", link):
                continue  # https:, mailto:
            target, _, anchor = link.partition("#")
            path = (page.parent / target).resolve() if target else page
            checked += 1
            if not path.exists():
                broken.append(f"{page.relative_to(REPO)}: {link} (no {target})")
            elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
                broken.append(f"{page.relative_to(REPO)}: {link} (no heading #{anchor})")
    assert broken == []
    assert checked >= len(DOCS)  # the README links every page, and they link each other


def test_the_link_check_fails_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](page.md#title) [gone](nothere.md) [anchor](page.md#nope)\n")
    assert _links(page) == ["page.md#title", "nothere.md", "page.md#nope"]
    assert "title" in _anchors(page) and "nope" not in _anchors(page)


def test_the_readme_is_short_and_every_docs_page_is_linked_from_it():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) < 200
    linked = {Path(link.partition("#")[0]).name for link in _links(REPO / "README.md")}
    assert {p.name for p in DOCS} <= linked


def test_the_options_table_in_the_docs_is_the_codes():
    """docs/configuration.md holds the table geonox.config.OPTIONS makes (scripts/docs.py
    writes it): an option added, removed or documented anew without it fails here."""
    page = (REPO / "docs" / "configuration.md").read_text()
    block = re.search(r"<!-- options: generated -->\n(.*?)<!-- /options -->", page, re.S)
    assert block, "docs/configuration.md lost its generated block"
    assert block.group(1) == options_markdown(), "run python scripts/docs.py"
    for option in OPTIONS:
        assert f"| `{option.key}` |" in block.group(1)


def test_every_option_fills_a_config_field_and_every_field_is_an_option_or_the_project():
    filled = [o.field for o in OPTIONS if o.parse]
    fields = [f.name for f in dataclasses.fields(Config)]
    assert len(filled) == len(set(filled))
    assert set(fields) - set(filled) == {"project", "name", "abi3", "sdist", "env"}
    assert set(filled) <= set(fields)
    # read by another option's parser: deps reads versions, sources, options, link
    assert {o.key for o in OPTIONS if not o.parse} == {
        "versions", "sources", "options", "link", "build-image"
    }  # fmt: skip


def test_the_module_map_in_the_docs_is_the_layer_checks():
    """docs/architecture.md's table and tests/test_layers.py's LAYERS say the same, and name
    every module of the package."""
    page = (REPO / "docs" / "architecture.md").read_text()
    rows = re.findall(r"^\| (\d+) \| `([\w.]+)` \|", page, flags=re.M)
    documented: dict[int, set[str]] = {}
    for layer, module in rows:
        documented.setdefault(int(layer), set()).add(module)
    assert documented == dict(enumerate(LAYERS))
    package = REPO / "geonox"
    modules = {p.stem for p in package.glob("*.py")} | {
        p.parent.name for p in package.glob("*/__init__.py")
    }
    assert modules == set().union(*LAYERS)
