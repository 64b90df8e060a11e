"""Source tarballs: what a source is (:mod:`.model`), fetching it verified into the
cache (:mod:`.download`, with :mod:`.progress`), and extracting it safely (:mod:`.archives`)."""
from __future__ import annotations

from geonox.sources.download import fetch
from geonox.sources.archives import extract
from geonox.sources.model import CachedSource, Source, cached_sources, mirror_urls

__all__ = ["CachedSource", "Source", "cached_sources", "extract", "fetch", "mirror_urls"]
