"""The cube contract: validation, band names, scaling, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xcloudfree
from xcloudfree.cube import BAND_IDS, as_cube, band_id, normalize_band_names
from xcloudfree.errors import (
    BandError,
    CubeError,
    DimensionError,
    DTypeError,
    ScaleError,
    TimeError,
)


def make(values=None, *, dtype="float32", bands=("B02", "B03", "B04", "B08"), times=3, size=4):
    shape = (times, len(bands), size, size)
    data = np.full(shape, 0.1, dtype=dtype) if values is None else values
    return xr.DataArray(
        data,
        dims=("time", "band", "y", "x"),
        coords={
            "time": pd.date_range("2024-01-01", periods=times, freq="5D"),
            "band": list(bands),
            "y": np.arange(size) * -10.0,
            "x": np.arange(size) * 10.0,
        },
    )


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("blue", "B02"), ("nir", "B08"), ("nir08", "B8A"), ("swir22", "B12"),
        ("coastal", "B01"), ("cirrus", "B10"), ("b8a", "B8A"), ("B2", "B02"),
        ("s2_B04", "B04"), ("rededge3", "B07"), ("nir09", "B09"), ("B11", "B11"),
    ],
)  # fmt: skip
def test_band_aliases(label, expected):
    assert band_id(label) == expected


def test_every_band_id_maps_to_itself():
    assert [band_id(b) for b in BAND_IDS] == list(BAND_IDS)


def test_unknown_band_names_the_fix():
    with pytest.raises(BandError, match="common name"):
        band_id("infrared")


def test_duplicate_bands_refused():
    cube = make(bands=("B02", "blue", "B04", "B08"))
    with pytest.raises(BandError, match="both B02"):
        as_cube(cube)


def test_common_names_normalised_and_coords_kept(sample):
    cube = sample.isel(time=slice(0, 2)).assign_coords(
        band=["blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08",
              "swir16", "swir22"]
    )  # fmt: skip
    out = as_cube(cube)
    assert out.band.values.tolist() == sample.band.values.tolist()
    assert out.rio.crs == sample.rio.crs
    assert out.rio.transform() == sample.rio.transform()
    assert out.attrs == sample.attrs
    np.testing.assert_array_equal(out.values, cube.values)


def test_rioxarray_band_descriptions_are_used():
    da = make().assign_coords(band=[1, 2, 3, 4])
    da.attrs["long_name"] = ("B02", "B03", "B04", "B8A")
    assert normalize_band_names(da).band.values.tolist() == ["B02", "B03", "B04", "B8A"]


def test_integer_band_numbers_without_names_refused():
    with pytest.raises(BandError, match="assign_coords"):
        as_cube(make().assign_coords(band=[1, 2, 3, 4]))


def test_integer_dn_needs_scale():
    dn = make(np.full((3, 4, 4, 4), 1500, dtype="uint16"))
    with pytest.raises(ScaleError, match="scale=1e-4"):
        as_cube(dn)
    cube = as_cube(dn, scale=1e-4)
    assert cube.dtype == np.float32
    np.testing.assert_allclose(cube.values, 0.15, rtol=1e-6)
    l2a = as_cube(dn, scale=1e-4, offset=-0.1)
    np.testing.assert_allclose(l2a.values, 0.05, rtol=1e-5)


def test_float_dn_scale_refused():
    with pytest.raises(ScaleError, match="0-1 scale"):
        as_cube(make(np.full((3, 4, 4, 4), 1500.0, dtype="float32")))


@pytest.mark.parametrize("dtype", ["bool", "complex64"])
def test_bad_dtypes(dtype):
    with pytest.raises(DTypeError, match="cannot hold reflectance"):
        as_cube(make(np.zeros((3, 4, 4, 4), dtype=dtype)))


def test_float64_becomes_float32_and_nan_stays():
    values = np.full((3, 4, 4, 4), 0.2)
    values[1, :, 0, 0] = np.nan
    out = as_cube(make(values))
    assert out.dtype == np.float32
    assert np.isnan(out.values[1, :, 0, 0]).all()
    assert np.isfinite(out.values[0]).all()


def test_all_nan_refused():
    with pytest.raises(CubeError, match="every value"):
        as_cube(make(np.full((3, 4, 4, 4), np.nan, dtype="float32")))


def test_wrong_dim_order_names_transpose():
    with pytest.raises(DimensionError, match=r"transpose\('time', 'band', 'y', 'x'\)"):
        as_cube(make().transpose("band", "time", "y", "x"))


def test_latlon_dims_hint_rename():
    cube = make().rename(y="lat", x="lon")
    with pytest.raises(DimensionError, match="rename"):
        as_cube(cube)


def test_missing_time_dim_hints_expand_dims():
    with pytest.raises(DimensionError, match="expand_dims"):
        as_cube(make().isel(time=0))


def test_band_dataset_equals_its_dataarray():
    cube = make()
    xr.testing.assert_identical(
        as_cube(cube.to_dataset("band")), as_cube(cube).rename("reflectance")
    )


def test_missing_bands_named():
    with pytest.raises(BandError, match=r"\['B04'\]"):
        as_cube(make(bands=("B02", "B03", "B08")))


def test_b8a_stands_in_for_b08():
    assert as_cube(make(bands=("B02", "B03", "B04", "B8A"))).sizes["band"] == 4


def test_unsorted_and_duplicated_time():
    cube = make()
    with pytest.raises(TimeError, match="sortby"):
        as_cube(cube.isel(time=[2, 0, 1]))
    dup = cube.assign_coords(time=[cube.time.values[0]] * 2 + [cube.time.values[2]])
    with pytest.raises(TimeError, match="duplicated"):
        as_cube(dup)
    with pytest.raises(TimeError, match="datetime64"):
        as_cube(cube.assign_coords(time=[1, 2, 3]))


def test_dask_input_stays_lazy(sample):
    lazy = sample.chunk({"time": 5, "y": 64, "x": 64})
    out = as_cube(lazy)
    assert out.chunks is not None
    assert out.dtype == np.float32


def test_errors_are_catchable_as_one_type():
    with pytest.raises(xcloudfree.XCloudFreeError):
        as_cube(make(bands=("B02",)))
    assert issubclass(BandError, ValueError)


def test_nat_time_names_a_working_fix():
    cube = make()
    bad = cube.assign_coords(time=[cube.time.values[0], np.datetime64("NaT"), cube.time.values[2]])
    with pytest.raises(TimeError, match="NaT") as info:
        as_cube(bad)
    fixed = eval(info.value.args[0].split("e.g. ")[1], {"cube": bad})
    assert as_cube(fixed).sizes["time"] == 2


def test_offset_alone_applies_to_float_input():
    out = as_cube(make(), offset=-0.05)
    np.testing.assert_allclose(out.values, 0.05, rtol=1e-5)


def test_odc_stac_style_dataset_is_a_cube(sample):
    # odc.stac.load returns one (time, y, x) variable per band, named by asset key, in DN.
    c = sample.isel(time=slice(12, 15), y=slice(0, 8), x=slice(0, 8))
    dn = (c.sel(band=["B02", "B03", "B04", "B08"]) * 10000).round().astype("uint16")
    ds = dn.assign_coords(band=["blue", "green", "red", "nir"]).to_dataset("band")
    ds["scl"] = xr.full_like(ds["red"], 4, dtype="uint8")
    ds.attrs["source"] = "odc"
    cube = as_cube(ds, scale=1e-4)
    assert cube.dims == ("time", "band", "y", "x")
    assert cube.band.values.tolist() == ["B02", "B03", "B04", "B08"]
    np.testing.assert_allclose(cube.values, dn.values * 1e-4, rtol=1e-6)
    assert cube.coords["scl"].dims == ("time", "y", "x")  # the SCL travels for mask="scl"
    assert cube.attrs["source"] == "odc" and cube.rio.crs == sample.rio.crs
    out = xcloudfree.remove(ds, method="nearest", mask="scl", scale=1e-4, progress=False)
    assert out.reflectance.band.values.tolist() == ["blue", "green", "red", "nir"]  # as given
    assert not out.cloud_mask.values.any()  # SCL 4 (vegetation) everywhere


def test_dataset_with_other_variables_names_them(sample):
    ds = sample.isel(time=slice(0, 2)).to_dataset("band")
    ds["ndvi"] = ds["B08"] - ds["B04"]
    with pytest.raises(DimensionError, match=r"\['ndvi'\] are not Sentinel-2 bands.*ds\[\["):
        as_cube(ds)
