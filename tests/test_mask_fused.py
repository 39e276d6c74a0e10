"""The default mask: ukis-csmask's detector on a fixed tile grid, joined with the series."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import xcloudfree
from xcloudfree.masking import classes as mc
from xcloudfree.masking import detector, fused, mask_classes


@pytest.fixture(scope="module")
def tiled(sample):
    """Three real dates (partly cloudy, overcast, clear) tiled 3 x 3: 768 px, 2 x 2 tiles."""
    cube = sample.sel(time=["2018-01-21", "2018-04-11", "2018-07-30"])
    big = xr.concat([xr.concat([cube] * 3, "x")] * 3, "y")
    big = big.assign_coords(x=cube.x[0].item() + np.arange(768) * 1e-4,
                            y=cube.y[0].item() - np.arange(768) * 1e-4)  # fmt: skip
    big.attrs = cube.attrs
    return big.rio.write_crs(cube.rio.crs)


def test_default_mask_is_fused(sample):
    cube = sample.isel(time=slice(12, 18))
    out = xcloudfree.remove(cube, "nearest", progress=False)
    assert out.attrs["mask"].startswith("ukis-csmask joined with")
    assert out.mask_class.attrs["description"] == out.attrs["mask"]


def test_a_cube_too_small_for_the_detector_gets_the_series_alone_and_says_so(sample):
    # 64 px at 10 m is 21 detector pixels: mostly mirror image in its 256 px tile.
    small = sample.isel(time=slice(12, 18), y=slice(0, 64), x=slice(0, 64))
    fused = mask_classes(small, progress=False)
    alone = mask_classes(small, "temporal", progress=False)
    np.testing.assert_array_equal(fused["mask_class"].values, alone["mask_class"].values)
    assert (
        "ukis-csmask not joined: the cube is under 64" in fused["cloud_mask"].attrs["description"]
    )


@pytest.mark.parametrize("chunks", [(300, 300), (500, 200)])
def test_detector_does_not_depend_on_the_chunks(tiled, chunks):
    eager = mask_classes(tiled, "csmask", progress=False)["mask_class"]
    lazy = mask_classes(tiled.chunk(y=chunks[0], x=chunks[1]), "csmask", progress=False)
    assert lazy["mask_class"].chunks is not None
    np.testing.assert_array_equal(lazy["mask_class"].values, eager.values)
    # The overcast date is cloud, the clear one is not (the sample's own dates).
    share = (eager == mc.THICK).mean(("y", "x")).values
    assert share[1] > 0.95 and share[2] < 0.02


def test_detector_tiles_read_their_neighbours(tiled):
    # A tile's margin comes from the next tile: cutting the cube at a tile border
    # changes the classes near it, so the halo is not cosmetic.
    values = tiled.sel(band=detector.detector_inputs(tiled.band.values)[0]).values
    coarse = detector.coarsen(values, 3)
    whole = detector.classify(coarse, level="l1c")
    cut = detector.classify(coarse[..., : detector.CORE], level="l1c")
    assert not np.array_equal(whole[..., : detector.CORE], cut)


def test_fused_lazy_equals_eager_on_several_tiles(tiled):
    eager = mask_classes(tiled, progress=False)
    lazy = mask_classes(tiled.chunk(y=256, x=384), progress=False).compute()
    np.testing.assert_array_equal(lazy["mask_class"].values, eager["mask_class"].values)
    np.testing.assert_array_equal(lazy["cloud_mask"].values, eager["cloud_mask"].values)


def test_a_single_date_has_no_haze_from_the_series(sample):
    # Haze is a departure from the pixel's clear history: one date has none, so only
    # the detector's cloud and shadow are masked (bright fields stay clear).
    one = mask_classes(sample.sel(time=["2018-07-30"]), dilate=0, progress=False)
    assert not (one["mask_class"] == mc.THIN).any()
    assert float(one["cloud_mask"].mean()) < 0.02


def _pixel(values):
    return np.asarray(values, np.float32)[:, :, None, None]


def test_a_thick_cloud_darker_than_its_ground_is_not_cloud():
    ground = [0.04, 0.06, 0.05, 0.30]
    x = _pixel([ground, ground, [0.02, 0.03, 0.03, 0.20], ground])  # a dark winter date
    temporal = np.array([0, 0, 1, 0], np.uint8)[:, None, None]
    single = np.zeros_like(temporal)
    out = fused.fuse(temporal, single, x, np.arange(4) * 10)
    assert out[:, 0, 0].tolist() == [0, 0, 0, 0]
    brighter = x.copy()
    brighter[2] = _pixel([[0.30, 0.31, 0.32, 0.40]])[0]
    assert fused.fuse(temporal, single, brighter, np.arange(4) * 10)[2, 0, 0] == mc.THICK


def test_haze_over_vegetation_is_kept_and_bare_soil_is_not():
    # A white veil over vegetation moves red more than blue by at most
    # ground_blue - ground_red; soil appearing moves red far more.
    veg = [0.06, 0.07, 0.03, 0.35]  # L1C-like vegetation: blue above red
    a = 0.2  # opacity of a veil of reflectance 0.4
    veil = [v + a * (0.4 - v) for v in veg]
    soil = [0.09, 0.11, 0.13, 0.28]
    x = _pixel([veg, veg, veil, veg, soil, soil])
    temporal = np.array([0, 0, 2, 0, 2, 0], np.uint8)[:, None, None]
    out = fused.fuse(temporal, np.zeros_like(temporal), x, np.arange(6) * 10)
    assert out[:, 0, 0].tolist() == [0, 0, mc.THIN, 0, 0, 0]


def test_nodata_stays_nodata_and_snow_stays_snow():
    x = _pixel([[0.04, 0.06, 0.05, 0.30]] * 3)
    temporal = np.array([mc.NODATA, mc.SNOW, 0], np.uint8)[:, None, None]
    single = np.array([mc.THICK, 0, 0], np.uint8)[:, None, None]
    out = fused.fuse(temporal, single, x, np.arange(3) * 10)
    assert out[:, 0, 0].tolist() == [mc.NODATA, mc.SNOW, 0]
