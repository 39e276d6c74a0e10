"""Unusual but legitimate input: nothing lost, nothing changed, or an error whose fix works.

Each case was found by trying it (issue 13): the test asserts the correct result, or an
``XCloudFreeError`` and then follows the fix it suggests.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xcloudfree
from xcloudfree.errors import CubeError, OptionError, ScaleError, TimeError, XCloudFreeError


@pytest.fixture(scope="module")
def cube(sample):
    """Eight dates, 96 x 96 px: clear and cloudy dates, every band."""
    return sample.isel(time=slice(10, 18), y=slice(0, 96), x=slice(0, 96)).copy()


@pytest.fixture(scope="module")
def clear_date(cube):
    return int(xcloudfree.cloud_mask(cube, progress=False).mean(("y", "x")).argmin("time"))


# ---------------------------------------------------------------- non-finite values


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan], ids=["+inf", "-inf", "nan"])
@pytest.mark.parametrize("method", ["hybrid", "regression"])
def test_a_non_finite_value_stays_in_its_pixel_and_band(cube, clear_date, value, method):
    bad = cube.copy(deep=True)
    bad[clear_date, 2, 40, 40] = value
    out = xcloudfree.remove(bad, method, progress=False)["reflectance"].values
    nonfinite = np.argwhere(~np.isfinite(out))
    # Only that one value (once a block of 85 x 85 px x 10 bands turned NaN with +inf).
    assert nonfinite.tolist() == [[clear_date, 2, 40, 40]]
    got = out[clear_date, 2, 40, 40]
    assert (np.isnan(got) and np.isnan(value)) or got == value  # given back as it was
    # The pixel's other bands are valid data and keep their values.
    np.testing.assert_array_equal(
        out[clear_date, [0, 1, 3], 40, 40], cube.values[clear_date, [0, 1, 3], 40, 40]
    )


def test_input_is_never_modified(cube):
    before = cube.copy(deep=True)
    bad = cube.copy(deep=True)
    bad[0, 0, 0, 0] = np.inf
    kept = bad.copy(deep=True)
    for method in ("hybrid", "regression"):
        xcloudfree.remove(bad, method, progress=False)
    xr.testing.assert_identical(bad, kept)
    xr.testing.assert_identical(cube, before)


# ---------------------------------------------------------------- nodata


def _nodata_cases(cube, clear_date):
    hole = cube.copy(deep=True)
    hole[clear_date, :, :8, :8] = 0.0
    written = hole.rio.write_nodata(0)
    attr = hole.assign_attrs(_FillValue=0.0)
    dn = (cube * 10000).round().astype("uint16")
    dn[clear_date, :, :8, :8] = 0  # Sentinel-2 "no data"
    return {
        "rio.write_nodata(0)": (written, {}),
        "_FillValue attribute": (attr, {}),
        "Sentinel-2 DN 0": (dn, {"scale": 1e-4}),
    }


@pytest.mark.parametrize("case", ["rio.write_nodata(0)", "_FillValue attribute", "Sentinel-2 DN 0"])
def test_declared_nodata_is_missing_never_ground(cube, clear_date, case):
    given, kw = _nodata_cases(cube, clear_date)[case]
    out = xcloudfree.remove(given, "regression", progress=False, **kw)
    hole = (clear_date, slice(None), slice(0, 8), slice(0, 8))
    assert np.isnan(out["reflectance"].values[hole]).all()
    assert np.isnan(out["quality"].values[clear_date, :8, :8]).all()  # not 0.99
    # The zeros are never a fill source: the other dates there come out as with a hole
    # of NaN (missing) there instead.
    missing = cube.copy(deep=True)
    missing[clear_date, :, :8, :8] = np.nan
    ref = xcloudfree.remove(missing, "regression", progress=False)
    others = [t for t in range(cube.sizes["time"]) if t != clear_date]
    np.testing.assert_allclose(
        out["reflectance"].values[others, :, :8, :8],
        ref["reflectance"].values[others, :, :8, :8],
        atol=2e-3,
    )
    assert np.isfinite(out["reflectance"].values[clear_date, :, 8:, 8:]).all()


# ---------------------------------------------------------------- scale, time, options


def test_scale_on_reflectance_is_refused_and_the_fix_works(cube):
    with pytest.raises(ScaleError, match=r"already holds 0-1 reflectance\. Drop scale="):
        xcloudfree.remove(cube, "nearest", scale=1e-4, progress=False)
    out = xcloudfree.remove(cube, "nearest", progress=False)  # the fix: no scale=
    assert 0.01 < float(out["reflectance"].mean()) < 1


def test_timezone_aware_dates_and_the_fix(cube):
    aware = cube.assign_coords(time=pd.DatetimeIndex(cube.time.values).tz_localize("UTC"))
    with pytest.raises(TimeError, match="timezone-aware") as info:
        xcloudfree.remove(aware, "nearest", progress=False)
    assert "tz_convert(None)" in str(info.value)
    fixed = aware.assign_coords(time=aware.indexes["time"].tz_convert(None))
    np.testing.assert_array_equal(fixed.time.values, cube.time.values)
    xcloudfree.remove(fixed, "nearest", progress=False)


def test_cftime_dates_and_the_fix(cube):
    cftime = pytest.importorskip("cftime")
    dates = [cftime.DatetimeGregorian(*map(int, str(t)[:10].split("-"))) for t in cube.time.values]
    cf = cube.assign_coords(time=dates)
    with pytest.raises(TimeError, match=r"convert_calendar\('standard', use_cftime=False\)"):
        xcloudfree.remove(cf, "nearest", progress=False)
    fixed = cf.convert_calendar("standard", use_cftime=False)
    np.testing.assert_array_equal(fixed.time.values, cube.time.values)
    xcloudfree.remove(fixed, "nearest", progress=False)


def test_options_of_the_hybrid_are_refused_for_classical_methods(cube):
    for kw in ({"batch_size": 4}, {"dtype": "bfloat16"}, {"stages": ("stgan",)}):
        with pytest.raises(OptionError, match=r"of method='hybrid', not of 'nearest': drop"):
            xcloudfree.remove(cube, "nearest", progress=False, **kw)
    with pytest.raises(OptionError, match="are options"):
        xcloudfree.remove(cube, "nearest", batch_size=2, dtype="bfloat16", progress=False)


def test_a_bad_stage_fails_before_any_work_on_dask(cube):
    lazy = cube.chunk({"y": 48, "x": 48})
    with pytest.raises(OptionError, match=r"stages=\('stgan', 'cyclgan'\)"):
        xcloudfree.remove(lazy, stages=("stgan", "cyclgan"))  # not only at compute()
    with pytest.raises(OptionError, match=r"stages=\(\)"):
        xcloudfree.remove(lazy, stages=())


# ---------------------------------------------------------------- metrics


def test_a_float_mask_in_the_mask_metrics_and_the_fix(cube):
    truth = xcloudfree.cloud_mask(cube, progress=False)
    soft = truth.astype(float) * 0.7
    with pytest.raises(CubeError, match=r"threshold it first, e\.g\. predicted > 0\.5"):
        xcloudfree.metrics.f1(soft, truth)
    assert float(xcloudfree.metrics.f1(soft > 0.5, truth)) == 1.0


def test_band_mismatch_in_metrics_names_the_right_fix(cube):
    prediction = cube.isel(band=slice(0, 4))
    with pytest.raises(XCloudFreeError, match=r"reference\.sel\(band=prediction\.band\)"):
        xcloudfree.metrics.psnr(prediction, cube)
    reference = cube
    assert float(xcloudfree.metrics.psnr(prediction, reference.sel(band=prediction.band))) == np.inf


# ---------------------------------------------------------------- output keeps the input's labels


@pytest.mark.parametrize(
    "labels",
    [
        ["b02", "b03", "b04", "b05", "b06", "b07", "b08", "b8a", "b11", "b12"],
        ["blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08",
         "swir16", "swir22"],
    ],
    ids=["lower-case IDs", "common names"],
)  # fmt: skip
@pytest.mark.parametrize("method", ["hybrid", "nearest"])
def test_band_labels_come_back_as_given(cube, labels, method):
    given = cube.assign_coords(band=labels)
    out = xcloudfree.remove(given, method, progress=False)
    assert out["reflectance"].band.values.tolist() == labels
    ref = xcloudfree.remove(cube, method, progress=False)
    np.testing.assert_array_equal(out["reflectance"].values, ref["reflectance"].values)


def test_a_crs_given_in_attrs_reaches_every_variable(cube):
    given = cube.drop_vars("spatial_ref").assign_attrs(crs="EPSG:4326")
    out = xcloudfree.remove(given, "nearest", progress=False)
    for name in out.data_vars:
        assert out[name].rio.crs == "EPSG:4326", name


# ---------------------------------------------------------------- model files and writing


def test_a_model_file_rewritten_at_the_same_path_is_reloaded(tmp_path):
    import os

    import torch

    from xcloudfree.inference.modelcache import get_model
    from xcloudfree.models import pretrained

    path = tmp_path / "model.pt"
    net = pretrained()
    net.save(path)
    first = get_model(str(path), "cpu")
    changed = type(net)(net.config)
    changed.load_state_dict(net.state_dict())
    with torch.no_grad():
        next(changed.parameters()).add_(0.5)
    changed.save(path)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a later write
    second = get_model(str(path), "cpu")
    assert second is not first
    torch.testing.assert_close(next(second.parameters()), next(changed.parameters()))
    assert get_model(str(path), "cpu") is second  # unchanged file: still cached


def test_a_failed_zarr_write_leaves_the_old_store_and_no_partial_one(cube, tmp_path):
    import dask.array as dsa

    store = tmp_path / "out.zarr"
    good = xcloudfree.remove(cube, "nearest", progress=False)
    good.cloudfree.to_zarr(store, progress=False)

    def explode(block):
        raise RuntimeError("disk full")

    broken = good.copy()
    data = broken["reflectance"].chunk({"y": 48}).data
    broken["reflectance"] = broken["reflectance"].copy(
        data=dsa.map_blocks(explode, data, dtype=data.dtype)
    )
    with pytest.raises(RuntimeError, match="disk full"):
        broken.cloudfree.to_zarr(store, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr"]
    back = xr.open_zarr(store, consolidated=False)
    np.testing.assert_array_equal(back["reflectance"].values, good["reflectance"].values)


# ---------------------------------------------------------------- valid but unusual cubes


def _days_apart(c):
    return c.assign_coords(time=pd.date_range("2016-01-01", periods=c.sizes["time"], freq="180D"))


def _lower(c):
    return c.assign_coords(band=[str(b).lower() for b in c.band.values])


#: Legitimate cubes a user may well hand in: name -> (make from a clean cube, options).
ODD_CASES = {
    "float64": (lambda c: c.astype("float64"), {}),
    "float16": (lambda c: c.astype("float16"), {}),
    "big-endian float32": (lambda c: c.astype(">f4"), {}),
    "read-only numpy": (lambda c: c.copy(data=np.require(c.values, requirements="C")), {}),
    "non-contiguous": (lambda c: c.transpose("y", "x", "time", "band").transpose(*c.dims), {}),
    "y increasing (south-up)": (lambda c: c.isel(y=slice(None, None, -1)), {}),
    "integer pixel coordinates": (
        lambda c: c.assign_coords(y=np.arange(c.sizes["y"]), x=np.arange(c.sizes["x"])),
        {},
    ),
    "no y/x coordinates": (lambda c: c.drop_vars(["y", "x", "spatial_ref"]), {}),
    "extra scalar coordinate": (lambda c: c.assign_coords(tile="33TUG"), {}),
    "extra per-date coordinate": (
        lambda c: c.assign_coords(orbit=("time", np.arange(c.sizes["time"]))),
        {},
    ),
    "band labels in lower case": (_lower, {}),
    "only the four core bands": (lambda c: c.sel(band=["B02", "B03", "B04", "B08"]), {}),
    "B8A instead of B08": (lambda c: c.sel(band=["B02", "B03", "B04", "B8A", "B11"]), {}),
    "bands in another order": (lambda c: c.isel(band=slice(None, None, -1)), {}),
    "two dates": (lambda c: c.isel(time=[0, 1]), {}),
    "dates years apart": (_days_apart, {}),
    "dates with hours": (
        lambda c: c.assign_coords(time=c.time.values + np.timedelta64(10, "h")),
        {},
    ),
    "reflectance exactly 0 somewhere": (lambda c: c.where(c.x < c.x[3], 0.0), {}),
    "slightly negative reflectance": (lambda c: c - 0.001, {}),
    "uint16 DN with scale": (lambda c: (c * 10000).round().astype("uint16"), {"scale": 1e-4}),
    "int32 DN with the baseline offset": (
        lambda c: ((c * 10000).round() + 1000).astype("int32"),
        {"scale": 1e-4, "offset": -0.1},
    ),
    "0-10000 floats with scale": (lambda c: (c * 10000).round(), {"scale": 1e-4}),
    "dask, one chunk": (lambda c: c.chunk(), {}),
    "dask, band split": (lambda c: c.chunk({"band": 2}), {}),
    "dask, small spatial chunks": (lambda c: c.chunk({"y": 32, "x": 32}), {}),
    "every pixel of a date NaN": (lambda c: c.where(c.time != c.time[1]), {}),
}
ODD = list(ODD_CASES)


@pytest.mark.parametrize("name", ODD)
def test_unusual_valid_cubes_give_a_correct_result_with_nothing_lost(cube, name):
    c = cube.isel(time=slice(0, 6), y=slice(0, 64), x=slice(0, 64))
    make, options = ODD_CASES[name]
    given = make(c)
    kept = given.copy(deep=True)
    out = xcloudfree.remove(given, "regression", progress=False, **options)
    xr.testing.assert_identical(given, kept)  # the input is not modified
    refl = out["reflectance"]
    assert refl.dtype == np.float32
    assert refl.dims == ("time", "band", "y", "x") and refl.shape == given.shape
    assert refl.band.values.tolist() == given.band.values.tolist()  # labels as given
    for dim in ("time", "y", "x"):
        if dim in given.coords:
            np.testing.assert_array_equal(refl[dim].values, given[dim].values)
    # Where nothing was filled, the values are the input's (as reflectance).
    expected = xcloudfree.as_cube(given, **options).values
    clear = ~out["cloud_mask"].values
    got = np.moveaxis(refl.values, 1, 0)[:, clear]
    np.testing.assert_allclose(got, np.moveaxis(expected, 1, 0)[:, clear], rtol=0, atol=1e-7)
    # Missing stays missing, and nothing else goes missing.
    np.testing.assert_array_equal(np.isnan(refl.values), np.isnan(expected))


def test_training_pairs_of_other_dates_and_the_fix(cube):
    c = cube.isel(y=slice(0, 32), x=slice(0, 32))
    cloudy, clear = c.isel(time=slice(0, 4)), c.isel(time=slice(4, 8))
    with pytest.raises(
        CubeError, match=r"different time coordinates.*clear\.sel\(time=cloudy\.time\)"
    ):
        xcloudfree.train([(cloudy, clear)], epochs=1, steps_per_epoch=1, progress=False)
    with pytest.raises(CubeError, match=r"clear\.sel\(band=cloudy\.band"):
        xcloudfree.train([(cloudy, clear.isel(band=[0, 1, 2, 6]))], epochs=1, progress=False)


def test_to_zarr_never_replaces_what_is_not_a_zarr_store(cube, tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    out = xcloudfree.remove(cube.isel(time=slice(0, 3)), "nearest", progress=False)
    with pytest.raises(OptionError, match="is not a Zarr store"):
        out.cloudfree.to_zarr(folder, progress=False)
    assert (folder / "notes.txt").read_text() == "mine"
    out.cloudfree.to_zarr(tmp_path / "out.zarr", progress=False)
    out.cloudfree.to_zarr(tmp_path / "out.zarr", progress=False)  # a store is replaced
