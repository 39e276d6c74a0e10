"""Quality-weighted composites of a removal result: values, laziness, coordinates, errors."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import xcloudfree
from xcloudfree.errors import CubeError, OptionError


@pytest.fixture(scope="module")
def spring(sample):
    """March to May of the sample, 96 x 80 px: cloudy and clear dates in each month."""
    return sample.sel(time=slice("2018-03", "2018-05")).isel(y=slice(80, 176), x=slice(40, 120))


@pytest.fixture(scope="module")
def result(spring):
    return xcloudfree.remove(spring, method="regression", progress=False)


def test_monthly_composite_is_the_quality_weighted_mean(result):
    monthly = xcloudfree.composite(result, "1MS")
    assert [str(t)[:7] for t in monthly.time.values] == ["2018-03", "2018-04", "2018-05"]
    assert monthly.reflectance.dims == ("time", "band", "y", "x")
    assert monthly.reflectance.dtype == np.float32
    # One pixel by hand: the mean of April's dates weighted by their quality.
    april = result.sel(time="2018-04").isel(y=10, x=20)
    w = april.quality.values
    expected = (april.reflectance.values * w[:, None]).sum(0) / w.sum()
    got = monthly.reflectance.sel(time="2018-04-01").isel(y=10, x=20).values
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert int(monthly["count"].sel(time="2018-04-01").isel(y=10, x=20)) == (w > 0).sum()
    assert monthly.rio.crs == result.rio.crs
    assert monthly.attrs["method"] == "regression" and "1MS" in monthly.attrs["composite"]


def test_observed_only_composite_and_empty_periods(result):
    # min_quality=1 keeps observed clear pixels only: a masked mean composite.
    clear_only = xcloudfree.composite(result, "1MS", min_quality=1)
    april = result.sel(time="2018-04")
    clear = (april.quality == 1).values
    y, x = np.argwhere(clear.any(0))[0]
    keep = clear[:, y, x]
    expected = april.reflectance.values[keep, :, y, x].mean(0)
    got = clear_only.reflectance.sel(time="2018-04-01").values[:, y, x]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # A pixel no clear date reaches in a month (about half of cloudy March) is NaN, never
    # a cloud averaged in.
    march = (result.sel(time="2018-03").quality == 1).values
    none = ~march.any(0)
    assert none.mean() > 0.25
    month = clear_only.reflectance.sel(time="2018-03-01").values
    assert np.isnan(month[:, none]).all() and np.isfinite(month[:, ~none]).all()
    assert float(clear_only.quality.max()) == 1.0


def test_lazy_composite_equals_eager(spring, result):
    lazy = xcloudfree.remove(spring.chunk({"y": 48, "x": 80}), method="regression")
    monthly = lazy.cloudfree.composite("1MS")
    assert all(v.chunks is not None for v in monthly.data_vars.values())
    xr.testing.assert_allclose(monthly.compute(), xcloudfree.composite(result, "1MS"), atol=1e-6)


def test_cube_accessor_removes_then_composites(spring, result):
    via_cube = spring.cloudfree.composite("QS-DEC", method="regression", progress=False)
    xr.testing.assert_identical(via_cube, xcloudfree.composite(result, "QS-DEC"))
    assert [str(t)[:10] for t in via_cube.time.values] == ["2018-03-01"]  # spring: MAM


def test_bad_composite_input(result, spring):
    with pytest.raises(OptionError, match="not a pandas frequency"):
        xcloudfree.composite(result, "monthly")
    with pytest.raises(OptionError, match="outside 0-1"):
        xcloudfree.composite(result, "1MS", min_quality=2)
    with pytest.raises(CubeError, match="remove"):
        xcloudfree.composite(spring.to_dataset(name="cube"), "1MS")
