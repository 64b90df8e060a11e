"""A smoke suite for a rasterio wheel, run from an empty directory against the installed
wheel (rasterio's sdist leaves its own test rasters out: ``recursive-exclude tests/data
*.tif``).  ``GEONOX_EXPECT_GDAL`` names the GDAL version the wheel must carry; no
``GDAL_DATA`` or ``PROJ_DATA`` may be set: the data must come from the wheel."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.env
from affine import Affine
from rasterio import features, warp
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

SITE = Path(rasterio.__file__).resolve().parent


def test_no_data_path_from_the_environment():
    assert not {"GDAL_DATA", "PROJ_DATA", "PROJ_LIB"} & set(os.environ)


def test_gdal_version_is_the_built_one():
    assert rasterio.__gdal_version__ == os.environ["GEONOX_EXPECT_GDAL"]


def test_data_comes_from_the_wheel():
    # rasterio points GDAL and PROJ at the copies its wheel carries (PACKAGE_DATA), and
    # GDAL itself knows no other place (no path into the build machine compiled in)
    from rasterio._env import GDALDataFinder, PROJDataFinder, get_gdal_config

    assert (SITE / "gdal_data" / "header.dxf").is_file()
    assert (SITE / "proj_data" / "proj.db").is_file()
    assert Path(GDALDataFinder().search_wheel()).resolve() == SITE / "gdal_data"
    assert Path(PROJDataFinder().search_wheel()).resolve() == SITE / "proj_data"
    assert Path(get_gdal_config("GDAL_DATA")).resolve() == SITE / "gdal_data"


def _profile(**extra):
    return dict(
        {"driver": "GTiff", **extra},
        width=256,
        height=256,
        count=1,
        dtype="uint16",
        crs="EPSG:4326",
        transform=Affine(0.01, 0, 10.0, 0, -0.01, 50.0),
    )


def _ramp():
    return (np.arange(256 * 256, dtype="uint16").reshape(256, 256) % 4000).astype("uint16")


def test_compressed_gtiff_roundtrip_and_windowed_read(tmp_path):
    path = tmp_path / "ramp.tif"
    data = _ramp()
    tiles = dict(compress="deflate", tiled=True, blockxsize=64, blockysize=64)
    with rasterio.open(path, "w", **_profile(**tiles)) as dst:
        dst.write(data, 1)
    with rasterio.open(path) as src:
        assert src.compression.name == "deflate" and src.block_shapes == [(64, 64)]
        assert np.array_equal(src.read(1), data)
        window = src.read(1, window=Window(10, 20, 30, 40))
        assert window.shape == (40, 30) and np.array_equal(window, data[20:60, 10:40])
        assert src.crs.to_epsg() == 4326


def test_cog(tmp_path):
    path = tmp_path / "cog.tif"
    with rasterio.open(path, "w", **_profile(driver="COG", compress="lzw", blocksize=64)) as dst:
        dst.write(_ramp(), 1)
    with rasterio.open(path) as src:
        assert src.driver == "GTiff" and src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.overviews(1)  # a COG carries its overviews


def test_reproject_4326_to_3857_uses_proj_db_from_the_wheel():
    src = _ramp().astype("float32")
    transform, width, height = warp.calculate_default_transform(
        "EPSG:4326", "EPSG:3857", 256, 256, left=10.0, bottom=47.44, right=12.56, top=50.0
    )
    dst = np.zeros((height, width), dtype="float32")
    warp.reproject(
        src,
        dst,
        src_transform=_profile()["transform"],
        src_crs="EPSG:4326",
        dst_transform=transform,
        dst_crs="EPSG:3857",
        resampling=Resampling.bilinear,
    )
    assert dst.max() > 0
    x, y = warp.transform("EPSG:4326", "EPSG:3857", [10.0], [50.0])
    assert x[0] == pytest.approx(1113194.9, abs=1) and y[0] == pytest.approx(6446275.8, abs=1)
    assert "Pseudo-Mercator" in CRS.from_epsg(3857).to_wkt()  # read from the wheel's proj.db


def test_shapes_and_rasterize():
    image = np.zeros((20, 20), dtype="uint8")
    image[5:15, 5:15] = 1
    shapes = [(g, v) for g, v in features.shapes(image) if v == 1]
    assert len(shapes) == 1 and shapes[0][0]["type"] == "Polygon"
    burned = features.rasterize([(shapes[0][0], 7)], out_shape=(20, 20), fill=0, dtype="uint8")
    assert int((burned == 7).sum()) == 100


def test_vrt(tmp_path):
    path = tmp_path / "ramp.tif"
    with rasterio.open(path, "w", **_profile()) as dst:
        dst.write(_ramp(), 1)
    with rasterio.open(path) as src, WarpedVRT(src, crs="EPSG:3857") as vrt:
        assert vrt.crs.to_epsg() == 3857 and vrt.read(1).max() > 0
    vrt_xml = f"""<VRTDataset rasterXSize="256" rasterYSize="256">
  <VRTRasterBand dataType="UInt16" band="1">
    <SimpleSource><SourceFilename>{path}</SourceFilename><SourceBand>1</SourceBand></SimpleSource>
  </VRTRasterBand>
</VRTDataset>"""
    (tmp_path / "a.vrt").write_text(vrt_xml)
    with rasterio.open(tmp_path / "a.vrt") as vrt:
        assert vrt.driver == "VRT" and np.array_equal(vrt.read(1), _ramp())
