"""Rewriting a wheel in place: auditwheel's ``InWheel`` unpacks it, the block changes its
files, and it is zipped back with its RECORD rewritten, every entry stamped with
``SOURCE_DATE_EPOCH`` (so two rewrites of the same wheel give the same bytes).  geonox's two
rewrites of a repaired wheel (the RPATH clean-up, the SBOM) go through :func:`rewriting`."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def rewriting(wheel: Path, epoch: int | None) -> Iterator[Path]:
    """The unpacked ``wheel`` (its root directory) for the block; zipped back into ``wheel``
    when the block ends without an exception, left unchanged when it raises."""
    # auditwheel's modules import nothing geonox's verify needs: loaded when a wheel changes
    from auditwheel.wheeltools import InWheel

    # its timings are debug lines, which nox's logging (level DEBUG under -v, and whatever a
    # maintainer's noxfile sets) would print in the repair session's output
    logging.getLogger("auditwheel").setLevel(logging.WARNING)
    tmp = wheel.with_name(wheel.name + ".rewrite")
    before = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None:
        os.environ["SOURCE_DATE_EPOCH"] = str(epoch)  # InWheel's zip stamps its entries so
    try:
        with InWheel(wheel, tmp):
            yield Path.cwd()
        os.replace(tmp, wheel)
    finally:
        tmp.unlink(missing_ok=True)
        if before is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
        else:
            os.environ["SOURCE_DATE_EPOCH"] = before
