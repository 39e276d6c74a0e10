"""The spectral cloud test: real reference mask, laziness, dilation, NaN (the temporal
mask has its own tests in test_mask_classes.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import shared_data

import xcloudfree
from xcloudfree.cube import BAND_IDS
from xcloudfree.masking import cloud_mask, cloud_probability, dilate_mask


def scene_cube():
    scene = np.load(shared_data("s2cloudless_scene", "scene.npz"))
    dn = np.moveaxis(scene["reflectance_x10000"], -1, 0)[None]
    cube = xr.DataArray(
        dn,
        dims=("time", "band", "y", "x"),
        coords={"time": [np.datetime64("2017-01-01", "ns")], "band": list(BAND_IDS)},
    )
    reference = xr.DataArray(scene["cloud_mask"][None].astype(bool), dims=("time", "y", "x"))
    return xcloudfree.as_cube(cube, scale=1e-4), reference


def test_f1_against_the_s2cloudless_reference_mask():
    cube, reference = scene_cube()
    mask = cloud_mask(cube, "spectral", dilate=0)
    assert float(xcloudfree.metrics.f1(mask, reference)) > 0.9
    # Without the cirrus band (an L2A / 4-band cube) the test still works.
    four = cloud_mask(cube.sel(band=["B02", "B03", "B04", "B8A"]), "spectral", dilate=0)
    assert float(xcloudfree.metrics.f1(four, reference)) > 0.85


def test_probability_thresholds_to_the_crisp_mask(small):
    mask, prob = cloud_mask(small, "spectral", dilate=0, return_probability=True)
    assert prob.dtype == np.float32
    assert float(prob.min()) >= 0 and float(prob.max()) <= 1
    np.testing.assert_array_equal(mask.values, (prob > 0.5).values)


def test_overcast_and_clear_dates_of_the_sample(sample):
    frac = cloud_mask(sample).mean(("y", "x")).to_series()
    for overcast in ("2018-01-31", "2018-04-11", "2018-11-27", "2018-12-22"):
        assert frac[overcast] > 0.95
    for clear in ("2018-04-26", "2018-06-10", "2018-08-24", "2018-10-08"):
        assert frac[clear] < 0.1


def test_dask_lazy_and_chunk_independent(small):
    eager = cloud_mask(small, "spectral", dilate=3)
    lazy = cloud_mask(small.chunk({"time": 2, "y": 20, "x": 17}), "spectral", dilate=3)
    assert lazy.chunks is not None
    np.testing.assert_array_equal(lazy.values, eager.values)


def test_dilation_grows_by_radius():
    m = xr.DataArray(np.zeros((2, 9, 9), bool), dims=("time", "y", "x"))
    m[0, 4, 4] = True
    grown = dilate_mask(m, 2)
    assert grown[0, 4, 2] and grown[0, 2, 4] and not grown[0, 4, 1]
    assert not grown[1].any(), "dilation never crosses dates"


def test_nan_is_never_cloud():
    data = np.full((1, 4, 3, 3), 0.5, dtype="float32")
    data[0, :, 1, 1] = np.nan
    cube = xr.DataArray(
        data, dims=("time", "band", "y", "x"),
        coords={"time": pd.to_datetime(["2024-01-01"]), "band": ["B02", "B03", "B04", "B08"]},
    )  # fmt: skip
    mask, prob = cloud_mask(cube, "spectral", dilate=0, return_probability=True)
    assert not mask.values[0, 1, 1] and mask.values[0, 0, 0]
    assert np.isnan(prob.values[0, 1, 1])


def test_needs_blue_and_red(small):
    with pytest.raises(xcloudfree.errors.BandError, match="B04"):
        cloud_probability(small.sel(band=["B02", "B03", "B08"]), "spectral")
