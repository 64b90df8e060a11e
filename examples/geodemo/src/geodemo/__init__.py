"""geodemo: geonox's demo extension, statically linked against PROJ, GEOS and SQLite.

The wheel carries its own ``proj.db`` (``geodemo/proj_data``); the C module is
pointed at it on import, so PROJ never reads system data, ``PROJ_DATA`` /
``PROJ_LIB`` or the network.
"""

from __future__ import annotations

import math
import os

from . import _geodemo
from ._geodemo import (
    buffer_area,
    geos_version,
    proj_db_path,
    proj_version,
    sqlite_query,
    sqlite_version,
    transform,
)

__version__ = "0.1.0"
__all__ = [
    "PROJ_DATA_DIR",
    "buffer_area",
    "geos_version",
    "proj_db_path",
    "proj_version",
    "selftest",
    "sqlite_query",
    "sqlite_version",
    "transform",
]

PROJ_DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "proj_data")
_geodemo._set_data_dir(PROJ_DATA_DIR)

# Known truths for selftest().
_EARTH_RADIUS = 6378137.0  # EPSG:3857 sphere radius, metres
_PARIS = (2.3522, 48.8566)  # lon, lat in degrees
_XY_TOLERANCE = 0.5  # metres
_AREA_TOLERANCE = 1e-9


def _spherical_mercator(lon: float, lat: float) -> tuple[float, float]:
    x = _EARTH_RADIUS * math.radians(lon)
    y = _EARTH_RADIUS * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))
    return x, y


def selftest() -> str:
    """Check every library against known values; print and return a summary line.

    Raises AssertionError (explicitly, so it also works under ``python -O``)
    naming each value that is wrong.
    """
    problems = []

    lon, lat = _PARIS
    want_x, want_y = _spherical_mercator(lon, lat)
    x, y = transform(lon, lat)
    if abs(x - want_x) > _XY_TOLERANCE or abs(y - want_y) > _XY_TOLERANCE:
        problems.append(
            f"transform{_PARIS} = ({x:.3f}, {y:.3f}), expected "
            f"({want_x:.3f}, {want_y:.3f}) within {_XY_TOLERANCE} m"
        )

    db = proj_db_path()
    want_db = os.path.join(PROJ_DATA_DIR, "proj.db")
    if os.path.realpath(db) != os.path.realpath(want_db):
        problems.append(f"PROJ opened {db!r}, expected the bundled {want_db!r}")

    n = 4 * 8  # quadsegs=8 -> 32-gon
    want_area = 0.5 * n * math.sin(2 * math.pi / n)
    area = buffer_area(0.0, 0.0, 1.0, quadsegs=8)
    if abs(area - want_area) > _AREA_TOLERANCE:
        problems.append(
            f"buffer_area(0, 0, 1, quadsegs=8) = {area!r}, expected {want_area!r} "
            f"within {_AREA_TOLERANCE}"
        )

    answer = sqlite_query("select 6*7")
    if answer != "42":
        problems.append(f"sqlite_query('select 6*7') = {answer!r}, expected '42'")
    sqlite = sqlite_version()
    if not sqlite.startswith("3."):
        problems.append(f"sqlite_version() = {sqlite!r}, expected '3.*'")

    if problems:
        raise AssertionError("geodemo selftest failed:\n  " + "\n  ".join(problems))

    summary = (
        f"geodemo {__version__} OK: PROJ {proj_version()}, GEOS {geos_version()}, "
        f"SQLite {sqlite}; Paris -> ({x:.1f}, {y:.1f}) m; "
        f"32-gon area {area:.7f}; proj.db {db}"
    )
    print(summary)
    return summary
