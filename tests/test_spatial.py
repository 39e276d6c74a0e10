"""Filling from the same date's surroundings where no other date is clear (issue 12)."""

import numpy as np
import pytest
import xarray as xr

import xcloudfree
from xcloudfree.errors import OptionError
from xcloudfree.fills import spatial

CLEAR = "2018-08-09"  # a clear date of the sample (0.0 % masked)
DONOR = "2018-01-21"  # a partly cloudy date: its own mask is a real cloud shape


@pytest.fixture(scope="module")
def holed(sample):
    """One clear date as a single-date cube, with a real cloud shape as the user's mask."""
    one = sample.sel(time=[CLEAR])
    # The donor's mask in its series (alone, the one-date mask sees less of its haze).
    shape = xcloudfree.cloud_mask(sample, progress=False).sel(time=[DONOR]).values
    mask = xr.DataArray(shape, dims=("time", "y", "x"), coords={"time": one.time})
    return one, mask


def _psnr(a, b):
    return float(10 * np.log10(1 / np.mean((a - b) ** 2)))


def test_a_holed_single_date_keeps_its_clear_pixels_and_says_how_sure_the_fill_is(holed):
    one, mask = holed
    hole = mask.values[0]
    assert 0.2 < hole.mean() < 0.8
    out = xcloudfree.remove(one, method="regression", mask=mask, progress=False)
    truth = one.transpose("time", "band", "y", "x").values[0]
    got = out.reflectance.transpose("time", "band", "y", "x").values[0]
    np.testing.assert_array_equal(got[:, ~hole], truth[:, ~hole])  # clear pixels untouched
    assert (out.fill_source.values[0][hole] == 2).all()
    assert (out.fill_source.values[0][~hole] == 0).all()
    # expected_error: the fitted error of the scale each pixel was filled at...
    expected = out.expected_error.values[0][hole]
    table = np.asarray(spatial.ERROR_BY_SCALE)
    assert np.isclose(np.unique(expected)[:, None], table, rtol=1e-4).any(axis=1).all()
    real = np.abs(got[:, hole] - truth[:, hole]).mean(axis=0)
    assert 0.5 < expected.mean() / real.mean() < 2.0, (expected.mean(), real.mean())
    # ... and it ranks: pixels filled at finer scales (nearer clear ones) are better
    fine = expected <= np.median(expected)
    assert real[fine].mean() < real[~fine].mean()


def test_a_cloudy_single_date_comes_back_closer_to_the_clear_date_after(sample):
    # One real cloudy date alone (no other date to fill from), scored under its own
    # mask against the next clear date, 15 days on: the cloud is gone, not kept.
    one, after = sample.sel(time=["2018-07-05"]), sample.sel(time="2018-07-20")
    truth = after.transpose("band", "y", "x").values
    out = xcloudfree.remove(one, progress=False)
    hole = out.cloud_mask.values[0]
    assert hole.mean() > 0.1 and (out.fill_source.values[0][hole] == 2).all()
    got = out.reflectance.transpose("time", "band", "y", "x").values[0]
    cloudy = one.transpose("time", "band", "y", "x").values[0]
    gain = _psnr(got[:, hole], truth[:, hole]) - _psnr(cloudy[:, hole], truth[:, hole])
    assert gain > 3.0, gain  # measured: 4.98 dB


def test_keep_and_nan_leave_the_cloud_or_blank_it_and_say_so(holed):
    one, mask = holed
    hole = mask.values[0]
    kept = xcloudfree.remove(one, method="nearest", mask=mask, fallback="keep", progress=False)
    np.testing.assert_array_equal(kept.reflectance.values, one.values)
    assert (kept.fill_source.values[0][hole] == 3).all()
    assert float(kept.quality.values[0][hole].max()) == 0.0
    blank = xcloudfree.remove(one, method="nearest", mask=mask, fallback="nan", progress=False)
    assert np.isnan(blank.reflectance.values[0][:, hole]).all()
    assert np.isfinite(blank.reflectance.values[0][:, ~hole]).all()


def test_dask_chunks_narrower_than_the_reach_give_the_eager_result(holed):
    one, mask = holed
    assert spatial.REACH > 64
    eager = xcloudfree.remove(one, method="regression", mask=mask, progress=False)
    lazy = xcloudfree.remove(
        one.chunk({"y": 64, "x": 100}), method="regression", mask=mask.chunk({"y": 64}),
        progress=False,
    )  # fmt: skip
    assert lazy.reflectance.chunks is not None
    lazy = lazy.compute()
    for name in ("reflectance", "quality", "fill_source", "expected_error"):
        np.testing.assert_array_equal(lazy[name].values, eager[name].values, err_msg=name)


def test_a_date_with_nothing_clear_is_kept_and_marked_not_filled(sample):
    cloudy = sample.sel(time=["2018-01-06"]).isel(y=slice(0, 64), x=slice(0, 64))
    everything = xr.ones_like(cloudy.isel(band=0, drop=True), dtype=bool)
    out = xcloudfree.remove(cloudy, method="regression", mask=everything, progress=False)
    np.testing.assert_array_equal(out.reflectance.values, cloudy.values)
    assert (out.fill_source.values == 3).all()


def test_a_series_inpaints_never_clear_pixels_and_says_so(sample):
    # Default: "inpaint", with a warning giving the share; "keep" can be asked for.
    scene = sample.isel(time=slice(0, 3), y=slice(0, 64), x=slice(0, 64))
    mask = xr.zeros_like(scene.isel(band=0, drop=True), dtype=bool)
    mask[:, 20:30, 20:30] = True  # cloudy on every date there, clear around
    mask[1, 40:44, 40:44] = True  # cloudy on one date: the other dates fill it
    with pytest.warns(xcloudfree.UnfilledWarning, match=r"94\.9% of the masked pixels"):
        filled = xcloudfree.remove(scene, "nearest", mask=mask, progress=False)
    assert (filled.fill_source.values[:, 20:30, 20:30] == 2).all()
    assert (filled.fill_source.values[1, 40:44, 40:44] == 1).all()
    with pytest.warns(xcloudfree.UnfilledWarning, match="left as they were"):
        kept = xcloudfree.remove(scene, "nearest", mask=mask, fallback="keep", progress=False)
    assert (kept.fill_source.values[:, 20:30, 20:30] == 3).all()
    np.testing.assert_array_equal(
        kept.reflectance.values[:, :, 20:30, 20:30], scene.values[:, :, 20:30, 20:30]
    )


def test_a_pixel_another_date_can_fill_is_never_inpainted(sample):
    # Every cloudy pixel of the sample has a clear date somewhere: nothing is inpainted,
    # and the result equals the fill with fallback="keep".
    scene = sample.isel(time=slice(0, 10), y=slice(0, 96), x=slice(0, 96))
    out = xcloudfree.remove(scene, method="regression", progress=False)
    kept = xcloudfree.remove(scene, method="regression", fallback="keep", progress=False)
    assert not (out.fill_source == 2).any()
    assert (out.fill_source.values == np.where(out.cloud_mask.values, 1, 0)).all()
    np.testing.assert_array_equal(out.reflectance.values, kept.reflectance.values)


def test_inpaint_reaches_no_farther_than_its_reach():
    values = np.full((2, 8, 1000), 0.2, "f4")
    source = np.zeros((8, 1000), bool)
    source[:, :10] = True
    filled, scale = spatial.inpaint(values, source, ~source)
    assert (scale[:, 10 : 9 + spatial.REACH] >= 0).all()
    assert (scale[:, 10 + spatial.REACH :] == -1).all()
    assert np.isnan(filled[:, :, 10 + spatial.REACH :]).all()
    np.testing.assert_allclose(filled[:, :, 10 : 9 + spatial.REACH], 0.2, rtol=1e-5)


def test_a_bad_fallback_names_the_choices(sample):
    with pytest.raises(OptionError, match=r"'inpaint'.*'keep'.*'nan'"):
        xcloudfree.remove(sample.isel(time=[0]), fallback="zero")


def test_no_data_stays_no_data_and_is_neither_source_nor_hole(holed):
    one, mask = holed
    hole = mask.values[0]
    gap = one.copy(data=one.values.copy())
    y, x = np.argwhere(hole)[len(np.argwhere(hole)) // 2]
    gap.values[0, :, y, x] = np.nan  # no data under the cloud
    cy, cx = np.argwhere(~hole)[0]
    gap.values[0, :, cy, cx] = np.nan  # and where it is clear
    out = xcloudfree.remove(gap, method="regression", mask=mask, progress=False)
    assert np.isnan(out.reflectance.values[0, :, y, x]).all()
    assert np.isnan(out.reflectance.values[0, :, cy, cx]).all()
    assert out.fill_source.values[0, y, x] == 0 and out.fill_source.values[0, cy, cx] == 0
    others = hole.copy()
    others[y, x] = False
    assert (out.fill_source.values[0][others] == 2).all()
    assert np.isfinite(out.reflectance.values[0][:, others]).all()


def test_chunks_wider_than_the_reach_read_their_neighbours_and_give_the_eager_result(holed):
    # 2 x 3 chunks (one column narrower than the reach): a fill reads across chunk edges.
    one, mask = holed
    big = one.pad(y=(0, 644), x=(0, 644), mode="reflect")
    big = big.assign_coords(y=np.arange(900), x=np.arange(900))
    hole = np.pad(mask.values[0], ((0, 644), (0, 644)), mode="wrap")
    hole[300:600, 250:550] = True  # across the chunk corner, filled at the coarse scales
    big_mask = xr.DataArray(hole[None], dims=("time", "y", "x"), coords={"time": one.time})
    eager = xcloudfree.remove(big, method="nearest", mask=big_mask, progress=False)
    lazy = xcloudfree.remove(
        big.chunk({"y": 450, "x": 400}), method="nearest", mask=big_mask.chunk({"y": 450}),
        progress=False,
    )  # fmt: skip
    assert lazy.reflectance.data.numblocks[2:] == (2, 3)
    lazy = lazy.compute()
    assert (eager.fill_source.values == 2).sum() == hole.sum()
    for name in ("reflectance", "quality", "fill_source"):
        np.testing.assert_array_equal(lazy[name].values, eager[name].values, err_msg=name)


def test_a_stored_cube_is_read_inside_the_tasks_and_gives_the_eager_result(holed, tmp_path):
    # From storage, the tasks that find what to fill and cut the strips read the cube
    # themselves (halo.inline_reader) instead of holding a read for their neighbours.
    one, mask = holed
    one.to_dataset(name="r").chunk({"y": 128, "x": 128}).to_zarr(tmp_path / "one.zarr")
    stored = xr.open_zarr(tmp_path / "one.zarr")["r"]
    lazy = xcloudfree.remove(stored, method="regression", mask=mask, progress=False)
    eager = xcloudfree.remove(one, method="regression", mask=mask, progress=False)
    lazy = lazy.compute()
    for name in ("reflectance", "quality", "fill_source"):
        np.testing.assert_array_equal(lazy[name].values, eager[name].values, err_msg=name)
