"""The summary a wheels session ends with, from the records steps leave (the main job's
test in test_e2e.py reads the real one, terminal and Markdown; the container tests build
in an image).  Here: records of a docker build, two Pythons, one dependency of each
outcome, through the same functions the session uses."""

from __future__ import annotations

from pathlib import Path

from geonox import summary

WHEEL = "shapely-2.1.2-cp312-cp312-manylinux_2_31_x86_64.whl"
DIGEST = "sha256:" + "0123456789abcdef" * 4


def _records(workdir: Path) -> None:
    common = {"arch": "x86_64", "target": "x86_64"}
    summary.record(
        workdir,
        "deps-x86_64",
        dict(
            common,
            step="deps",
            python=None,
            seconds=200.0,
            where=f"docker 127.0.0.1:5000/standin@{DIGEST} (x86_64)",
            artifacts=[
                {"name": "geos", "version": "3.13.1", "link": "shared", "key": "a" * 16,
                 "outcome": "built", "seconds": 95.2},
                {"name": "sqlite", "version": "3.52.0", "link": "static", "key": "b" * 16,
                 "outcome": "pulled", "seconds": 0.4},
                {"name": "proj", "version": "9.1.1", "link": "shared", "key": "c" * 16,
                 "outcome": "reused", "seconds": None},
            ],
        ),
    )  # fmt: skip
    summary.record(
        workdir,
        "build-x86_64-3.12",
        dict(common, step="build", python="3.12", build="cp312", seconds=40.0,
             where=f"docker 127.0.0.1:5000/standin@{DIGEST} (x86_64)"),
    )  # fmt: skip
    facts = {"wheel": WHEEL, "size": 2_400_000, "tags": ["manylinux_2_31_x86_64"],
             "bundles": [{"name": "geos", "version": "3.13.1", "link": "shared"}]}  # fmt: skip
    summary.record(
        workdir,
        "repair-x86_64-3.12",
        dict(common, step="repair", python="3.12", build="cp312", seconds=3.0, **facts),
    )
    summary.record(
        workdir,
        "ldd-x86_64-3.12",
        dict(common, step="ldd", python="3.12", seconds=1.5, wheel=WHEEL, errors=0, warnings=2),
    )
    summary.record(
        workdir,
        "test-x86_64-3.12",
        dict(common, step="test", python="3.12", seconds=30.0, wheel=WHEEL, tested=True),
    )


def test_the_summary_of_a_run_fits_100_columns_and_says_what_each_step_did(tmp_path):
    _records(tmp_path)
    found = summary.collect(summary.records(tmp_path, this_run=True), "x86_64")
    text = summary.render_text(found, "wheels-x86_64")
    assert max(len(line) for line in text.splitlines()) <= 100, text
    assert [d["outcome"] for d in found["dependencies"]] == ["built", "pulled", "reused"]
    assert "geos 3.13.1 (shared)" in text and "95.2 s" in text
    # the image digest is cut in the terminal, whole in the Markdown
    assert "@sha256:0123456789ab… (x86_64)" in text and DIGEST not in text
    (wheel,) = found["wheels"]
    assert wheel["steps"] == {"build": 40.0, "repair": 3.0, "ldd": 1.5, "test": 30.0}
    assert wheel["verify"] == {"errors": 0, "warnings": 2}
    assert "verify    passed: 0 errors, 2 warnings" in text
    markdown = summary.render_markdown(found, "wheels-x86_64")
    assert DIGEST in markdown and f"| `{WHEEL}` | 2.4 MB | geos 3.13.1 (shared) |" in markdown
    assert "| geos 3.13.1 (shared) | x86_64 | built | 95.2 s |" in markdown
    # another arch's records are not this one's; an earlier run's are not this run's
    assert summary.collect(summary.records(tmp_path, this_run=True), "aarch64")["wheels"] == []
    summary.STARTED, started = summary.STARTED + 3600, summary.STARTED
    try:
        assert summary.records(tmp_path, this_run=True) == []
        assert len(summary.records(tmp_path, this_run=False)) == 5
    finally:
        summary.STARTED = started
