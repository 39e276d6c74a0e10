"""Classical baselines on hand-made series and on the real sample, numpy and dask."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xcloudfree
from xcloudfree.fills import baselines
from xcloudfree.fills.baselines import BASELINES, _fit, _pair_stats, fill


def series(values, clouds, days):
    values = np.asarray(values, dtype="float32")
    data = xr.DataArray(
        values.reshape(len(values), 1, 1, 1),
        dims=("time", "band", "y", "x"),
        coords={"time": pd.Timestamp("2024-01-01") + pd.to_timedelta(days, unit="D")},
    )
    mask = xr.DataArray(np.asarray(clouds).reshape(-1, 1, 1), dims=("time", "y", "x"))
    return data, mask


def test_nearest_interpolate_median_on_one_pixel():
    data, mask = series(
        [0.1, 0.9, 0.9, 0.4, 0.3], [False, True, True, False, False], [0, 2, 7, 10, 20]
    )
    nearest, q = fill(data, mask, "nearest")
    assert nearest.values.ravel().tolist() == pytest.approx([0.1, 0.1, 0.4, 0.4, 0.3])
    interp, _ = fill(data, mask, "interpolate")
    assert interp.values.ravel().tolist() == pytest.approx([0.1, 0.16, 0.31, 0.4, 0.3])
    median, _ = fill(data, mask, "median")
    assert median.values.ravel().tolist() == pytest.approx([0.1, 0.3, 0.3, 0.4, 0.3])
    # quality: 1 where observed, decays with the gap to the source date
    np.testing.assert_allclose(q.values.ravel(), [1, 1 / (1 + 2 / 30), 1 / (1 + 3 / 30), 1, 1])


def test_nearest_breaks_ties_to_the_earlier_date():
    data, mask = series([0.1, 0.9, 0.5], [False, True, False], [0, 5, 10])
    out, _ = fill(data, mask, "nearest")
    assert out.values.ravel()[1] == pytest.approx(0.1)


def test_no_clear_observation_keeps_input_and_says_so():
    data, mask = series([0.7, 0.8], [True, True], [0, 5])
    for method in BASELINES:
        out, q = fill(data, mask, method)
        np.testing.assert_array_equal(out.values, data.values)
        np.testing.assert_array_equal(q.values.ravel(), [0, 0])


def test_nan_input_stays_nan_and_is_not_a_source():
    data, mask = series([0.2, np.nan, 0.9, 0.4], [False, False, True, False], [0, 5, 10, 15])
    for method in BASELINES:
        out, q = fill(data, mask, method)
        assert np.isnan(out.values.ravel()[1])
        assert np.isnan(q.values.ravel()[1])
        assert np.isfinite(out.values.ravel()[[0, 2, 3]]).all()


def test_pair_stats_match_a_direct_computation():
    rng = np.random.default_rng(0)
    data = rng.random((4, 2, 5, 6)).astype("float32")
    valid = rng.random((4, 5, 6)) > 0.3
    stats = _pair_stats(data, valid)
    t, s, k = 2, 0, 1
    both = valid[t] & valid[s]
    xs, xt = data[s, k][both].astype(float), data[t, k][both].astype(float)
    expected = [both.sum(), xs.sum(), xt.sum(), (xs**2).sum(), (xs * xt).sum(), (xt**2).sum()]
    np.testing.assert_allclose(stats[t, s, k], expected, rtol=1e-10)


def test_a_gain_fitted_on_a_few_dull_pixels_stays_near_one():
    """An overcast target's clear strip (few pixels that barely vary, with noise) says
    little about the gain: it is drawn most of the way back to 1 and the line still
    passes through the strip's means, while many varied pixels keep their least-squares
    gain."""
    rng = np.random.default_rng(1)
    x = rng.uniform(0.0, 0.4, (2, 1, 100, 100)).astype("float32")
    x[1] = 0.8 * x[0] + 0.03  # the target: a well-determined gain of 0.8 everywhere
    # 240 dull pixels, where the target is only noise around 0.05: least squares says ~0.
    x[0, 0, :3, :80] = 0.02 + 0.004 * rng.random((3, 80))
    x[1, 0, :3, :80] = 0.05 + 0.004 * rng.random((3, 80))
    many = np.ones((2, 100, 100), dtype=bool)
    many[:, :3, :80] = False
    few = np.zeros((2, 100, 100), dtype=bool)
    few[:, :3, :80] = True
    gain, offset, _, _ = _fit(_pair_stats(x, many))
    assert gain[1, 0, 0] == pytest.approx(0.8, abs=1e-3)
    gain, offset, _, _ = _fit(_pair_stats(x, few))
    xs, xt = x[0, 0][few[0]].astype(float), x[1, 0][few[0]].astype(float)
    assert abs(np.polyfit(xs, xt, 1)[0]) < 0.3  # least squares alone
    assert 0.7 < gain[1, 0, 0] <= 1.0
    assert offset[1, 0, 0] + gain[1, 0, 0] * xs.mean() == pytest.approx(xt.mean(), abs=1e-5)


def test_regression_recovers_a_linear_radiometric_change(sample):
    """A date that is a gain/offset of its neighbour is filled exactly by the regression."""
    base = sample.isel(time=[13, 14, 16]).copy(deep=True)  # three clear summer dates
    values = base.values
    values[1] = 0.8 * values[0] + 0.03  # the target date, with a known change
    cloud = np.zeros((3, *values.shape[2:]), dtype=bool)
    cloud[1, 50:150, 40:200] = True
    truth = values[1].copy()
    values[1][:, cloud[1]] = 0.9  # a bright cloud over the known surface
    mask = xr.DataArray(cloud, dims=("time", "y", "x"))
    reg, _ = fill(base, mask, "regression")
    near, _ = fill(base, mask, "nearest")
    err_reg = np.abs(reg.values[1][:, cloud[1]] - truth[:, cloud[1]]).max()
    err_near = np.abs(near.values[1][:, cloud[1]] - truth[:, cloud[1]]).max()
    assert err_reg < 0.02
    assert err_near > 0.02


@pytest.mark.parametrize("method", BASELINES)
def test_real_clouds_filled_better_than_left(sample, method):
    sim = xcloudfree.simulate_clouds(sample, targets=3, seed=2)
    out, quality = fill(sim.cloudy, sim.true_mask, method)
    pick = {"time": sim.targets}
    under = sim.mask.sel(pick).values[:, None] & np.ones((1, sample.sizes["band"], 1, 1), bool)
    truth = sim.truth.sel(pick).values[under]
    before = np.sqrt(np.mean((sim.cloudy.sel(pick).values[under] - truth) ** 2))
    after = np.sqrt(np.mean((out.sel(pick).values[under] - truth) ** 2))
    assert after < before / 3
    # clear pixels pass through untouched
    clear = ~sim.true_mask.values
    np.testing.assert_array_equal(
        out.values.transpose(1, 0, 2, 3)[:, clear],
        sim.cloudy.values.transpose(1, 0, 2, 3)[:, clear],
    )
    assert float(quality.min()) >= 0 and float(quality.max()) <= 1


def test_regression_beats_nearest_on_real_clouds(sample):
    sim = xcloudfree.simulate_clouds(sample, targets=4, seed=0)
    pick = {"time": sim.targets}
    errors = {}
    for method in ("nearest", "regression"):
        out, _ = fill(sim.cloudy, sim.true_mask, method)
        diff = (out.sel(pick) - sim.truth.sel(pick)).where(sim.mask.sel(pick))
        errors[method] = float(np.sqrt((diff**2).mean()))
    assert errors["regression"] < errors["nearest"]


def _gradient_under_a_cloud(sample):
    """Three dates, each a gain and offset of one clear image, the middle one also with a
    haze gradient across the scene (0 to 0.03) that no scene-wide fit can follow, and a
    cloud over its left part."""
    cube = sample.isel(time=[13, 14, 16]).copy(deep=True)
    values = cube.values
    ground = values[0].copy()
    gradient = np.linspace(0.0, 0.03, values.shape[-1], dtype="float32")
    values[1] = 0.9 * ground + 0.02 + gradient
    values[2] = 1.1 * ground
    truth = values[1].copy()
    cloud = np.zeros((3, *values.shape[2:]), dtype=bool)
    cloud[1, 100:150, 20:70] = True
    values[1] = np.where(cloud[1], 0.8, truth)
    return cube, xr.DataArray(cloud, dims=("time", "y", "x")), truth, cloud[1]


def test_local_fill_learns_a_change_from_the_clear_pixels_around_the_cloud(sample):
    cube, mask, truth, under = _gradient_under_a_cloud(sample)
    errors = {}
    for method in ("regression", "local"):
        out, _ = fill(cube, mask, method)
        errors[method] = float(np.abs(out.values[1][:, under] - truth[:, under]).mean())
    # The scene-wide fit puts the gradient's mean everywhere; the cloud's surroundings
    # show it is lower on the left.
    assert errors["regression"] > 0.005
    assert errors["local"] < 0.4 * errors["regression"]
    out, _ = fill(cube, mask, "local")
    np.testing.assert_array_equal(out.values[:, :, ~under], cube.values[:, :, ~under])


def test_local_fill_does_not_spread_a_cloud_the_mask_missed(sample, monkeypatch):
    cube, mask, _, under = _gradient_under_a_cloud(sample)
    missed = cube.copy(deep=True)
    missed.values[1][:, 92:98, 20:70] += 0.3  # a cloud rim the mask missed, beside it
    without, _ = fill(cube, mask, "local")
    with_rim, _ = fill(missed, mask, "local")
    shift = np.abs(with_rim.values[1][:, under] - without.values[1][:, under])
    assert shift.max() < 0.005
    # Spread like any other residual, the rim would brighten the fill.
    monkeypatch.setattr(baselines, "LOCAL_OUTLIER", np.inf)
    spread, _ = fill(missed, mask, "local")
    assert np.abs(spread.values[1][:, under] - without.values[1][:, under]).max() > 0.05


@pytest.mark.parametrize("method", BASELINES)
@pytest.mark.parametrize("chunks", [{"y": 64, "x": 100}, {"y": 37, "x": 256, "time": 7}])
def test_dask_is_lazy_and_equals_numpy(small, method, chunks):
    mask = xcloudfree.cloud_mask(small)
    eager, q_eager = fill(small, mask, method)
    lazy, q_lazy = fill(small.chunk(chunks), mask.chunk({k: v for k, v in chunks.items()}), method)
    assert lazy.chunks is not None and q_lazy.chunks is not None
    np.testing.assert_allclose(lazy.values, eager.values, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(q_lazy.values, q_eager.values, atol=1e-6, equal_nan=True)


def test_simulation_target_not_in_the_cube(sample):
    with pytest.raises(ValueError, match="not in the cube"):
        xcloudfree.simulate_clouds(sample, targets=["2018-01-07"])


def test_regression_expected_error_grows_where_its_two_sources_disagree():
    rng = np.random.default_rng(0)
    ground = rng.uniform(0.05, 0.3, (1, 4, 24, 24)).astype("float32")
    data = np.concatenate([ground, ground, ground]) + rng.normal(0, 0.002, (3, 4, 24, 24))
    data[2, :, 5, 5] += 0.2  # this pixel changed between the two clear dates; (15, 15) did not
    cube = xr.DataArray(
        data.astype("float32"), dims=("time", "band", "y", "x"),
        coords={"time": pd.to_datetime(["2024-01-01", "2024-01-11", "2024-01-21"]),
                "band": ["B02", "B03", "B04", "B08"]},
    )  # fmt: skip
    cloud = xr.zeros_like(cube.isel(band=0), dtype=bool)
    cloud[1] = True
    out = xcloudfree.remove(cube, method="regression", mask=cloud)
    err, q = out["expected_error"][1], out["quality"][1]
    assert float(err[5, 5]) > 10 * float(err[15, 15]) > 0
    assert float(q[5, 5]) < float(q[15, 15]) < 1
    np.testing.assert_allclose(q, 1 / (1 + err / 0.01), rtol=1e-5)
    # observed pixels: no error, quality 1
    assert float(abs(out["expected_error"][[0, 2]]).max()) == 0
    assert float(out["quality"][[0, 2]].min()) == 1


def test_expected_error_is_nan_where_there_is_nothing_to_fill_from(small):
    cloud = xr.ones_like(small.isel(band=0), dtype=bool)
    out = xcloudfree.remove(small, method="regression", mask=cloud)
    assert float(out["quality"].max()) == 0
    assert bool(out["expected_error"].isnull().all())
    np.testing.assert_array_equal(out["reflectance"], small)  # the input is kept
