"""Write the generated parts of the documentation: the options table of
docs/configuration.md (from geonox.config.OPTIONS and geonox.environment.VARIABLES).
tests/test_project_files.py fails when the page and the code disagree; run this then."""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from geonox.config import options_markdown  # noqa: E402

PAGE = REPO / "docs" / "configuration.md"
BLOCK = re.compile(r"(<!-- options: generated -->\n).*?(<!-- /options -->)", re.S)


def generated(text: str) -> str:
    """``text`` with the generated block written from the code."""
    return BLOCK.sub(lambda m: m.group(1) + options_markdown() + m.group(2), text)


if __name__ == "__main__":
    new = generated(PAGE.read_text())
    PAGE.write_text(new)
    print(f"wrote {PAGE.relative_to(REPO)}")
