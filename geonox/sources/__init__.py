"""Source tarballs: what a source is (:mod:`.model`), fetching it verified into the
cache (:mod:`.download`, with :mod:`.progress`), and extracting it safely (:mod:`.archives`).

``fetch`` is imported on first use: the recipes (and through them ``geonox verify``, which
also runs inside build containers with only auditwheel's packages) need :mod:`.model`
without requests."""

from __future__ import annotations

from typing import Any

from geonox.sources.archives import extract
from geonox.sources.model import Source, mirror_urls

__all__ = ["Source", "extract", "fetch", "mirror_urls"]


def __getattr__(name: str) -> Any:
    if name == "fetch":
        from geonox.sources.download import fetch

        return fetch
    raise AttributeError(f"module 'geonox.sources' has no attribute {name!r}")
