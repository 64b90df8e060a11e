"""What a source is: one upstream release file pinned by sha256, and where to look for it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from geonox.errors import SourceError

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Source:
    """One upstream release file, pinned by sha256."""

    name: str  # "proj"
    version: str  # "9.1.1"
    url: str  # upstream URL
    sha256: str  # lowercase hex

    def __post_init__(self) -> None:
        digest = self.sha256.strip().lower() if isinstance(self.sha256, str) else ""
        if not SHA256_RE.match(digest):
            shown = self.sha256 if self.sha256 else "(empty)"
            raise SourceError(
                f"source {self.name} {self.version} ({self.url}) has no valid sha256: got "
                f"{shown!r}, expected 64 hex digits. Set sha256 in "
                f"[tool.geonox.sources.{self.name}] to the checksum upstream publishes."
            )
        object.__setattr__(self, "sha256", digest)
        name = self.filename
        if not name or name in (".", "..") or "\\" in name or "\x00" in name:
            raise SourceError(
                f"source {self.name} {self.version}: cannot take a file name from URL "
                f"{self.url!r}; the URL must end in the archive's file name "
                f"(e.g. .../proj-9.1.1.tar.gz)."
            )

    @property
    def filename(self) -> str:
        """The basename of the URL path (percent-decoded)."""
        path = urlsplit(self.url).path if "://" in self.url else self.url
        return unquote(path.rstrip("/").rsplit("/", 1)[-1]) if path.strip("/") else ""

    def __str__(self) -> str:
        return f"{self.name} {self.version} ({self.filename})"


def mirror_urls(source: Source, mirrors: Sequence[str]) -> list[str]:
    """Candidate locations, in order: each mirror base + "/" + file name, then upstream.

    A base is ``http(s)://…``, ``file://…`` or a plain directory (absolute or relative,
    resolved against the current directory when fetching).  Duplicates are dropped.
    """
    out = [base.strip().rstrip("/") + "/" + source.filename for base in mirrors if base.strip()]
    out.append(source.url)
    return list(dict.fromkeys(out))
