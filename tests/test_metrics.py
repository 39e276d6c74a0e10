"""Tests of xcloudfree.metrics, checked against scikit-image on real Sentinel-2 data."""

from __future__ import annotations

import math

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from xcloudfree import metrics
from xcloudfree.errors import CubeError, DimensionError, DTypeError

DATES = ("2018-01-06", "2018-03-22", "2018-04-26", "2018-06-10")
BANDS = ("B02", "B03", "B04", "B08")


@pytest.fixture(scope="module")
def cube(sample) -> xr.DataArray:
    """Real cube (time=4, band=4, y=256, x=256), float32 reflectance: the embedded
    sample (ROI 146 of SEN12MS-CR-TS), so these comparisons never skip."""
    return sample.sel(time=list(DATES), band=list(BANDS)).drop_vars("spatial_ref")


@pytest.fixture(scope="module")
def noisy(cube: xr.DataArray) -> xr.DataArray:
    rng = np.random.default_rng(42)
    return cube + rng.normal(0, 0.02, cube.shape).astype(np.float32)


def _sk_ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return structural_similarity(
        a.astype(np.float64), b.astype(np.float64), data_range=1.0, full=True
    )[1]


# ----------------------------------------------------------------------- against skimage


@pytest.mark.parametrize("band", BANDS)
def test_psnr_ssim_match_skimage_between_dates(cube: xr.DataArray, band: str) -> None:
    a = cube.sel(band=band).isel(time=0)
    b = cube.sel(band=band).isel(time=1).drop_vars("time")
    a = a.drop_vars("time")
    want_ssim = structural_similarity(a.values, b.values, data_range=1)
    want_psnr = peak_signal_noise_ratio(b.values, a.values, data_range=1)
    assert float(metrics.ssim(a, b)) == pytest.approx(want_ssim, abs=1e-4)
    assert float(metrics.psnr(a, b)) == pytest.approx(want_psnr, abs=1e-4)
    assert 0 < want_ssim < 1  # two different dates: a real, non-trivial comparison


def test_psnr_ssim_match_skimage_noised_copy(cube: xr.DataArray, noisy: xr.DataArray) -> None:
    for t in range(2):
        for band in BANDS:
            a = cube.isel(time=t).sel(band=band)
            b = noisy.isel(time=t).sel(band=band)
            want_ssim = structural_similarity(a.values, b.values, data_range=1)
            want_psnr = peak_signal_noise_ratio(a.values, b.values, data_range=1)
            assert float(metrics.ssim(b, a)) == pytest.approx(want_ssim, abs=1e-4)
            assert float(metrics.psnr(b, a)) == pytest.approx(want_psnr, abs=1e-4)


def test_full_ssim_map_equals_skimage(cube: xr.DataArray) -> None:
    a = cube.isel(time=0, band=2)
    b = cube.isel(time=2, band=2)
    got = metrics.ssim(a, b, dims=())  # no reduction: the local map, border included
    assert got.dims == ("y", "x")
    np.testing.assert_allclose(got.values, _sk_ssim_map(a.values, b.values), atol=1e-10)


# ----------------------------------------------------------------------- mask, maps, dates


def test_mask_restricts_computation(cube: xr.DataArray, noisy: xr.DataArray) -> None:
    a = cube.isel(time=0, band=1)
    b = noisy.isel(time=0, band=1)
    yy, xx = np.mgrid[:256, :256]
    blob = (yy - 90) ** 2 + (xx - 150) ** 2 < 60**2  # a round "cloud"
    mask = xr.DataArray(blob, dims=("y", "x"), coords={"y": a.y, "x": a.x})

    diff = b.values.astype(np.float64) - a.values.astype(np.float64)
    want_mse = np.mean(diff[blob] ** 2)
    assert float(metrics.mse(b, a, mask=mask)) == pytest.approx(want_mse, rel=1e-12)
    assert float(metrics.mae(b, a, mask=mask)) == pytest.approx(
        np.mean(np.abs(diff[blob])), rel=1e-12
    )
    assert float(metrics.psnr(b, a, mask=mask)) == pytest.approx(
        10 * np.log10(1 / want_mse), abs=1e-9
    )
    # SSIM under the mask: skimage's map, cropped like skimage, averaged under the mask.
    smap = _sk_ssim_map(b.values, a.values)
    want_ssim = smap[3:-3, 3:-3][blob[3:-3, 3:-3]].mean()
    assert float(metrics.ssim(b, a, mask=mask)) == pytest.approx(want_ssim, abs=1e-10)
    # ... and it differs from the unmasked value, so the mask did something.
    assert abs(float(metrics.ssim(b, a)) - want_ssim) > 1e-4


def test_mask_with_time_dim_on_cube(cube: xr.DataArray, noisy: xr.DataArray) -> None:
    rng = np.random.default_rng(1)
    m = rng.random((cube.sizes["time"], 256, 256)) < 0.3
    mask = xr.DataArray(m, dims=("time", "y", "x"), coords={"time": cube.time})
    diff = noisy.values.astype(np.float64) - cube.values.astype(np.float64)
    full = np.broadcast_to(m[:, None], diff.shape)
    assert float(metrics.mse(noisy, cube, mask=mask)) == pytest.approx(
        np.mean(diff[full] ** 2), rel=1e-12
    )


def test_per_pixel_maps(cube: xr.DataArray, noisy: xr.DataArray) -> None:
    got = metrics.ssim(noisy, cube, dims=("time", "band"))
    assert got.dims == ("y", "x") and got.shape == (256, 256)
    xr.testing.assert_equal(got.y, cube.y)
    want = np.mean(
        [
            _sk_ssim_map(noisy.values[t, b], cube.values[t, b])
            for t in range(cube.sizes["time"])
            for b in range(cube.sizes["band"])
        ],
        axis=0,
    )
    np.testing.assert_allclose(got.values, want, atol=1e-10)

    pmap = metrics.psnr(noisy, cube, dims=("time", "band"))
    assert pmap.dims == ("y", "x")
    diff = noisy.values.astype(np.float64) - cube.values.astype(np.float64)
    np.testing.assert_allclose(pmap.values, 10 * np.log10(1 / np.mean(diff**2, axis=(0, 1))))


def test_per_date_values(cube: xr.DataArray, noisy: xr.DataArray) -> None:
    got_psnr = metrics.psnr(noisy, cube, dims=("band", "y", "x"))
    got_ssim = metrics.ssim(noisy, cube, dims=("band", "y", "x"))
    assert got_psnr.dims == ("time",) and got_ssim.dims == ("time",)
    xr.testing.assert_equal(got_psnr.time, cube.time)
    for t in range(cube.sizes["time"]):
        want_psnr = peak_signal_noise_ratio(cube.values[t], noisy.values[t], data_range=1)
        want_ssim = np.mean(
            [
                structural_similarity(noisy.values[t, b], cube.values[t, b], data_range=1)
                for b in range(cube.sizes["band"])
            ]
        )
        assert float(got_psnr[t]) == pytest.approx(want_psnr, abs=1e-4)
        assert float(got_ssim[t]) == pytest.approx(want_ssim, abs=1e-4)


# ----------------------------------------------------------------------- dask


class _CountingScheduler:
    """A dask scheduler that counts how often something is computed."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, dsk, keys, **kwargs):
        self.calls += 1
        return dask.get(dsk, keys, **kwargs)


def test_dask_inputs_give_lazy_equal_results(cube: xr.DataArray, noisy: xr.DataArray) -> None:
    # Chunks smaller than the 256 x 256 image, with edges that do not fall on the SSIM
    # window; few of them, as every chunk adds dask overhead to this test's runtime.
    chunks = {"time": 2, "band": 4, "y": 128, "x": 100}
    lazy_p, lazy_r = noisy.chunk(chunks), cube.chunk(chunks)
    rng = np.random.default_rng(3)
    mask = xr.DataArray(rng.random((4, 256, 256)) < 0.5, dims=("time", "y", "x"))
    lazy_mask = mask.chunk({"time": 2, "y": 128, "x": 100})
    calls = {
        "psnr": lambda p, r, m: metrics.psnr(p, r),
        "psnr_date": lambda p, r, m: metrics.psnr(p, r, dims=("band", "y", "x")),
        "mae_mask": lambda p, r, m: metrics.mae(p, r, mask=m),
        "ssim_mask": lambda p, r, m: metrics.ssim(p, r, mask=m),
        "ssim_map": lambda p, r, m: metrics.ssim(p, r, dims=("time", "band")),
        "ssim_date": lambda p, r, m: metrics.ssim(p, r, dims=("band", "y", "x")),
        "sam": lambda p, r, m: metrics.sam(p, r, dims=("time",)),
        "tc_mad": lambda p, r, m: metrics.temporal_consistency(p, dims=("band", "y", "x")),
        "tc_ssim": lambda p, r, m: metrics.temporal_consistency(p, r, method="ssim"),
        "summary": lambda p, r, m: metrics.summary(p, r, m),
    }
    counter = _CountingScheduler()
    with dask.config.set(scheduler=counter):
        lazy = {k: f(lazy_p, lazy_r, lazy_mask) for k, f in calls.items()}
    assert counter.calls == 0, "a metric computed its dask input"
    lazy_arrays = [lazy["summary"][v] for v in lazy["summary"].data_vars]
    lazy_arrays += [v for k, v in lazy.items() if k != "summary"]
    for value in lazy_arrays:
        assert isinstance(value.data, da.Array), value.name
    (computed,) = dask.compute(lazy)  # one pass over the graph, shared by all metrics
    for name, f in calls.items():
        want = f(noisy, cube, mask)
        got = computed[name]
        for var in want.data_vars if name == "summary" else [None]:
            w, g = (want, got) if var is None else (want[var], got[var])
            np.testing.assert_allclose(g.values, w.values, rtol=0, atol=1e-6, err_msg=name)


def test_dask_ssim_map_with_nan_and_tiny_chunks() -> None:
    rng = np.random.default_rng(0)
    a = xr.DataArray(rng.random((2, 30, 41)), dims=("band", "y", "x"))
    b = a + rng.normal(0, 0.05, a.shape)
    b[0, 5, 7] = np.nan
    b[1, 0, 0] = np.nan
    want = metrics.ssim(a, b, dims=())
    got = metrics.ssim(a.chunk({"y": 4, "x": 5}), b.chunk({"y": 7, "x": 3}), dims=())
    assert isinstance(got.data, da.Array)
    np.testing.assert_allclose(got.values, want.values, rtol=0, atol=1e-6)


# ----------------------------------------------------------------------- NaN


def test_nan_is_excluded_not_zero() -> None:
    rng = np.random.default_rng(0)
    a = xr.DataArray(rng.random((3, 10, 10)), dims=("band", "y", "x"))
    p = a + 0.1
    p[0, 2, 3] = np.nan
    ref = a.copy()
    ref[1, 4, 4] = np.nan
    assert float(metrics.mae(p, ref)) == pytest.approx(0.1)
    assert float(metrics.mse(p, ref)) == pytest.approx(0.01)
    assert float(metrics.psnr(p, ref)) == pytest.approx(20.0)
    # The same as masking the NaN elements out by hand.
    valid = p.notnull() & ref.notnull()
    assert float(metrics.mse(p.fillna(0), ref.fillna(0), mask=valid)) == pytest.approx(
        float(metrics.mse(p, ref))
    )
    # No valid element: NaN, not 0 or inf.
    assert np.isnan(float(metrics.mse(p * np.nan, ref)))
    assert np.isnan(float(metrics.psnr(p * np.nan, ref)))
    per_band = metrics.mae(p, ref.where(ref.band != 2), dims=("y", "x"))
    assert np.isnan(per_band.values[2]) and per_band.values[0] == pytest.approx(0.1)


def test_ssim_nan_uses_valid_window_pixels() -> None:
    rng = np.random.default_rng(1)
    a = xr.DataArray(rng.random((20, 20)), dims=("y", "x"))
    b = a * 0.7 + rng.normal(0, 0.05, a.shape)
    clean = metrics.ssim(a, b, dims=())
    b_nan = b.copy()
    b_nan[10, 10] = np.nan
    smap = metrics.ssim(a, b_nan, dims=())
    assert np.isnan(smap.values[10, 10])
    assert np.isfinite(float(metrics.ssim(a, b_nan)))
    # Windows that do not see the NaN are unchanged.
    far = np.ones((20, 20), dtype=bool)
    far[7:14, 7:14] = False
    np.testing.assert_allclose(smap.values[far], clean.values[far], atol=1e-12)
    # A window that sees it uses its 48 valid pixels, with sample covariance.
    win_a = a.values[8:15, 7:14].ravel()  # window centred on (11, 10)
    win_b = b_nan.values[8:15, 7:14].ravel()
    ok = np.isfinite(win_b)
    x, y = win_a[ok], win_b[ok]
    c1, c2 = 0.01**2, 0.03**2
    cov = np.cov(x, y)  # ddof=1
    want = ((2 * x.mean() * y.mean() + c1) * (2 * cov[0, 1] + c2)) / (
        (x.mean() ** 2 + y.mean() ** 2 + c1) * (cov[0, 0] + cov[1, 1] + c2)
    )
    assert smap.values[11, 10] == pytest.approx(want, abs=1e-10)


def test_psnr_identical_is_inf_and_ssim_one() -> None:
    a = xr.DataArray(np.random.default_rng(0).random((9, 9)), dims=("y", "x"))
    assert math.isinf(float(metrics.psnr(a, a)))
    assert float(metrics.ssim(a, a)) == pytest.approx(1.0)


# ----------------------------------------------------------------------- SAM


def test_sam_identical_orthogonal_and_radians() -> None:
    p = xr.DataArray(
        [[0.1, 0.2, 0.3], [1.0, 0.0, 0.0], [0.2, 0.4, 0.6], [0.0, 0.0, 0.0]],
        dims=("x", "band"),
    )
    r = xr.DataArray(
        [[0.1, 0.2, 0.3], [0.0, 1.0, 0.0], [0.1, 0.2, 0.3], [0.1, 0.1, 0.1]],
        dims=("x", "band"),
    )
    got = metrics.sam(p, r, dims=())
    assert got.dims == ("x",)
    assert got.values[0] == 0.0  # identical spectra
    assert got.values[1] == pytest.approx(np.pi / 2)  # orthogonal
    assert got.values[2] == pytest.approx(0.0, abs=1e-7)  # same direction, other brightness
    assert np.isnan(got.values[3])  # all-zero spectrum: undefined, skipped
    assert got.attrs["units"] == "rad"
    assert float(metrics.sam(p, r)) == pytest.approx(np.pi / 6)  # mean of 0, pi/2, 0


def test_sam_nan_band_and_mask() -> None:
    p = xr.DataArray([[1.0, 0.0], [1.0, np.nan], [0.0, 1.0]], dims=("x", "band"))
    r = xr.DataArray([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]], dims=("x", "band"))
    assert float(metrics.sam(p, r)) == pytest.approx(np.pi / 4)  # NaN pixel skipped
    mask = xr.DataArray([False, True, True], dims="x")
    assert float(metrics.sam(p, r, mask=mask)) == pytest.approx(0.0)
    with pytest.raises(DimensionError, match="band"):
        metrics.sam(p, r, mask=xr.DataArray(np.ones((3, 2), bool), dims=("x", "band")))


# ----------------------------------------------------------------------- temporal


def _series(values: np.ndarray) -> xr.DataArray:
    t = pd.date_range("2024-01-01", periods=values.shape[0], freq="5D")
    return xr.DataArray(values, dims=("time", "band", "y", "x"), coords={"time": t})


def test_temporal_consistency_constant_series() -> None:
    frame = np.random.default_rng(0).random((2, 12, 12))
    cube = _series(np.stack([frame] * 4))
    assert float(metrics.temporal_consistency(cube)) == 0.0
    assert float(metrics.temporal_consistency(cube, method="ssim")) == pytest.approx(1.0)
    per_pair = metrics.temporal_consistency(cube, method="ssim", dims=("band", "y", "x"))
    assert per_pair.sizes["time"] == 3
    xr.testing.assert_equal(per_pair.time, cube.time[1:])  # labelled with the later date
    np.testing.assert_allclose(per_pair.values, 1.0)


def test_temporal_consistency_values_and_reference() -> None:
    vals = np.zeros((3, 1, 8, 8))
    vals[1] += 0.2
    vals[2] += 0.1
    cube = _series(vals)
    per_pair = metrics.temporal_consistency(cube, dims=("band", "y", "x"))
    np.testing.assert_allclose(per_pair.values, [0.2, 0.1])
    assert float(metrics.temporal_consistency(cube)) == pytest.approx(0.15)
    pmap = metrics.temporal_consistency(cube, dims=("time", "band"))
    assert pmap.dims == ("y", "x")
    np.testing.assert_allclose(pmap.values, 0.15)
    # Against a reference: the difference of the changes.
    assert float(metrics.temporal_consistency(cube, cube + 5.0)) == pytest.approx(0, abs=1e-12)
    ref = _series(np.zeros_like(vals))
    assert float(metrics.temporal_consistency(cube, ref)) == pytest.approx(0.15)
    assert float(metrics.temporal_consistency(cube, cube, method="ssim")) == 0.0
    # A time mask counts a pair only where both dates are selected.
    mask = xr.DataArray([True, True, False], dims="time", coords={"time": cube.time})
    assert float(metrics.temporal_consistency(cube, mask=mask)) == pytest.approx(0.2)
    bare = xr.DataArray([False, True, True], dims="time")  # no time labels
    assert float(metrics.temporal_consistency(cube, mask=bare)) == pytest.approx(0.1)
    unlabelled = cube.drop_vars("time")
    assert float(metrics.temporal_consistency(unlabelled, mask=bare)) == pytest.approx(0.1)


# ----------------------------------------------------------------------- mask scores


def test_precision_recall_f1_hand_computed() -> None:
    pred = xr.DataArray(
        [[[1, 1, 1], [0, 0, 0]], [[1, 0, 0], [1, 1, 0]]], dims=("time", "y", "x")
    ).astype(bool)
    ref = xr.DataArray(
        [[[1, 0, 0], [1, 0, 0]], [[1, 0, 0], [1, 1, 0]]], dims=("time", "y", "x")
    ).astype(bool)
    # time 0: tp=1 fp=2 fn=1; time 1: tp=3 fp=0 fn=0; all: tp=4 fp=2 fn=1
    assert float(metrics.precision(pred, ref)) == pytest.approx(4 / 6)
    assert float(metrics.recall(pred, ref)) == pytest.approx(4 / 5)
    p, r = 4 / 6, 4 / 5
    assert float(metrics.f1(pred, ref)) == pytest.approx(2 * p * r / (p + r))
    np.testing.assert_allclose(metrics.precision(pred, ref, dims=("y", "x")).values, [1 / 3, 1])
    np.testing.assert_allclose(metrics.recall(pred, ref, dims=("y", "x")).values, [1 / 2, 1])
    np.testing.assert_allclose(metrics.f1(pred, ref, dims=("y", "x")).values, [0.4, 1.0])
    # mask: only the first row counts -> time 0: tp=1 fp=2, time 1: tp=1
    row = xr.DataArray([True, False], dims="y")
    assert float(metrics.precision(pred, ref, mask=row)) == pytest.approx(2 / 4)


def test_mask_scores_zero_division_and_nan() -> None:
    none = xr.DataArray(np.zeros((2, 2), bool), dims=("y", "x"))
    some = xr.DataArray(np.array([[True, False], [False, False]]), dims=("y", "x"))
    # Nothing predicted, nothing true: every score is 0/0 -> NaN.
    for func in (metrics.precision, metrics.recall, metrics.f1):
        assert np.isnan(float(func(none, none)))
    # Nothing predicted, something true: precision 0/0 = NaN, recall 0, F1 0.
    assert np.isnan(float(metrics.precision(none, some)))
    assert float(metrics.recall(none, some)) == 0.0
    assert float(metrics.f1(none, some)) == 0.0
    # Float masks: NaN elements are left out of all counts.
    pred = xr.DataArray([1.0, 1.0, np.nan, 0.0], dims="x")
    ref = xr.DataArray([1.0, 0.0, 1.0, np.nan], dims="x")
    assert float(metrics.recall(pred, ref)) == 1.0  # the missed positive is NaN in pred
    assert float(metrics.precision(pred, ref)) == 0.5
    with pytest.raises(ValueError, match="threshold"):
        metrics.f1(xr.DataArray([0.2, 0.7], dims="x"), xr.DataArray([0, 1], dims="x"))


# ----------------------------------------------------------------------- summary


def test_summary_variables() -> None:
    rng = np.random.default_rng(0)
    ref = _series(rng.random((2, 3, 10, 10)))
    pred = ref + 0.05
    s = metrics.summary(pred, ref)
    assert set(s.data_vars) == {"psnr", "ssim", "mae", "mse", "rmse", "sam"}
    assert all(v.ndim == 0 for v in s.data_vars.values())
    assert float(s.mae) == pytest.approx(0.05)
    assert s.psnr.attrs["units"] == "dB" and s.sam.attrs["units"] == "rad"
    mask = xr.DataArray(rng.random((2, 10, 10)) < 0.5, dims=("time", "y", "x"))
    sm = metrics.summary(pred, ref, mask)
    assert set(sm.data_vars) == {
        *s.data_vars,
        *(f"{k}_masked" for k in ("psnr", "ssim", "mae", "mse", "rmse", "sam")),
    }
    assert float(sm.mse_masked) == pytest.approx(float(metrics.mse(pred, ref, mask=mask)))
    # Without y/x or band, the metrics that need them are left out.
    flat = xr.DataArray(rng.random(5), dims="x")
    assert set(metrics.summary(flat, flat)) == {"psnr", "mae", "mse", "rmse"}


# ----------------------------------------------------------------------- errors


def test_errors_name_problem_and_fix() -> None:
    a = xr.DataArray(np.zeros((2, 8, 8)), dims=("band", "y", "x"))
    with pytest.raises(DimensionError, match="same dims"):
        metrics.psnr(a, a.isel(band=0))
    with pytest.raises(DimensionError, match=r"differ in size \(y: 8 vs 7"):
        metrics.mse(a, a.isel(y=slice(0, 7)))
    with pytest.raises(ValueError, match="different coordinate labels"):
        metrics.mae(a.assign_coords(x=np.arange(8)), a.assign_coords(x=np.arange(8) + 1))
    with pytest.raises(DimensionError, match=r"mask has dims .*'time'"):
        metrics.mse(a, a, mask=xr.DataArray(np.ones((2, 8, 8), bool), dims=("time", "y", "x")))
    with pytest.raises(DTypeError, match="threshold"):
        metrics.mse(a, a, mask=xr.DataArray(np.ones((8, 8)), dims=("y", "x")))
    with pytest.raises(DimensionError, match="cannot reduce over"):
        metrics.ssim(a, a, dims=("time",))
    with pytest.raises(DimensionError, match="at least 7 pixels"):
        metrics.ssim(a[:, :5], a[:, :5])
    with pytest.raises(DimensionError, match="needs 'y' and 'x'"):
        metrics.ssim(a.rename(y="lat"), a.rename(y="lat"))
    with pytest.raises(DimensionError, match="'time' dim"):
        metrics.temporal_consistency(a)
    with pytest.raises(DTypeError):
        metrics.psnr(a > 0, a)
    with pytest.raises(DimensionError, match="DataArray"):
        metrics.psnr(a.values, a)
    # All are ValueErrors and xcloudfree errors.
    assert issubclass(DimensionError, ValueError) and issubclass(DimensionError, CubeError)


def test_reference_transposed_and_coords_kept() -> None:
    t = pd.date_range("2024-01-01", periods=2)
    a = xr.DataArray(
        np.random.default_rng(0).random((2, 2, 8, 8)),
        dims=("time", "band", "y", "x"),
        coords={"time": t, "band": ["B04", "B08"], "y": np.arange(8.0), "x": np.arange(8.0)},
    )
    b = (a + 0.1).transpose("x", "y", "band", "time")
    got = metrics.mae(a, b, dims=("y", "x"))
    assert got.dims == ("time", "band")
    assert got.band.values.tolist() == ["B04", "B08"]
    np.testing.assert_allclose(got.values, 0.1)
