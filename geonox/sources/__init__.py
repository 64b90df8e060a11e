"""Source tarballs: what a source is (:mod:`.model`), fetching it verified into the
cache (:mod:`.download`, with :mod:`.progress`), and extracting it safely (:mod:`.archives`).

``fetch`` and ``extract`` are imported on first use: the recipes (and through them
``geonox verify``, which also runs inside build containers with only auditwheel's
packages, and starts often) need :mod:`.model` without requests or tarfile."""

from __future__ import annotations

from typing import Any

from geonox.sources.model import Source, mirror_urls

__all__ = ["Source", "extract", "fetch", "mirror_urls"]


def __getattr__(name: str) -> Any:
    if name == "fetch":
        from geonox.sources.download import fetch

        return fetch
    if name == "extract":  # tarfile, lzma and bz2 too: nothing verify needs
        from geonox.sources.archives import extract

        return extract
    raise AttributeError(f"module 'geonox.sources' has no attribute {name!r}")
