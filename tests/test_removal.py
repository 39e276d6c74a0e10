"""remove(), the accessor and the quicklook: contract, CRS, laziness, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

import xcloudfree
from xcloudfree.errors import CubeError, ScaleError


@pytest.mark.parametrize("method", xcloudfree.METHODS)
def test_remove_contract(small, method):
    out = xcloudfree.remove(small, method=method)
    expected = {
        "reflectance", "cloud_mask", "mask_class", "cloud_probability", "quality", "fill_source",
    }  # fmt: skip
    if method in ("hybrid", "regression", "local"):
        expected.add("expected_error")
    assert set(out.data_vars) == expected
    refl = out["reflectance"]
    assert refl.dims == small.dims and refl.dtype == np.float32
    for dim in small.dims:
        np.testing.assert_array_equal(refl[dim].values, small[dim].values)
    assert out.rio.crs == small.rio.crs and refl.rio.transform() == small.rio.transform()
    assert refl.attrs == small.attrs
    assert out["cloud_mask"].dims == ("time", "y", "x") and out["cloud_mask"].dtype == bool
    assert out.attrs["method"] == method
    clear = ~out["cloud_mask"].values
    np.testing.assert_array_equal(
        np.moveaxis(refl.values, 1, 0)[:, clear], np.moveaxis(small.values, 1, 0)[:, clear]
    )


def test_output_records_the_mask_and_the_weights(small):
    out = xcloudfree.remove(small, method="regression")
    assert out.attrs["mask"] == out["cloud_mask"].attrs["description"]
    # 64 x 48 px is under the detector's 64 pixels of 30 m: the network alone, said so.
    assert out.attrs["mask"].startswith("xcloudfree-mask 2.0 (weights ")
    assert "ukis-csmask not joined" in out.attrs["mask"]
    assert "dilated by 2 px" in out.attrs["mask"] and "model" not in out.attrs
    given = xcloudfree.remove(small, method="regression", mask=out["cloud_mask"])
    assert given.attrs["mask"] == "user-supplied mask (DataArray)"
    spectral = xcloudfree.remove(small, method="regression", mask="spectral", dilate=1)
    assert spectral.attrs["mask"] == "spectral cloud test: p(cloud) > 0.5, dilated by 1 px"


def test_weights_fingerprint_follows_the_weights_not_the_object():
    from xcloudfree.models import pretrained
    from xcloudfree.models.files import fingerprint

    net = pretrained()
    copy = type(net)(net.config)
    copy.load_state_dict(net.state_dict())
    assert fingerprint(copy) == fingerprint(net)
    with torch.no_grad():
        next(copy.parameters()).add_(1e-3)
    assert fingerprint(copy) != fingerprint(net)


def test_accessor_equals_function(small):
    via_accessor = small.cloudfree.remove(method="interpolate", dilate=1)
    direct = xcloudfree.remove(small, method="interpolate", dilate=1)
    xr.testing.assert_identical(via_accessor, direct)
    xr.testing.assert_identical(small.cloudfree.mask(), xcloudfree.cloud_mask(small))
    xr.testing.assert_identical(
        small.cloudfree.cloud_probability(), xcloudfree.cloud_probability(small)
    )
    ref = small + 0.01
    xr.testing.assert_identical(
        small.cloudfree.metrics(ref), xcloudfree.metrics.summary(small, ref)
    )


def test_user_mask_is_used(small):
    mask = xr.zeros_like(small.isel(band=0, drop=True), dtype=bool)
    out = xcloudfree.remove(small, method="nearest", mask=mask)
    xr.testing.assert_identical(out["reflectance"].drop_attrs(), small.drop_attrs())
    assert "cloud_probability" not in out


def test_bad_user_masks(small):
    with pytest.raises(CubeError, match="dims"):
        xcloudfree.remove(small, "nearest", mask=small.isel(time=0, band=0) > 0.2)
    with pytest.raises(CubeError, match="steps"):
        xcloudfree.remove(small, "nearest", mask=small.isel(band=0, time=[0, 1]) > 0.2)
    with pytest.raises(CubeError, match="boolean"):
        xcloudfree.remove(small, "nearest", mask=small.isel(band=0))
    with pytest.raises(CubeError, match="DataArray"):
        xcloudfree.remove(small, "nearest", mask=np.zeros((6, 64, 48), bool))


def test_unknown_method_and_model_options_of_baselines(small):
    with pytest.raises(ValueError, match="regression"):
        xcloudfree.remove(small, method="magic")
    with pytest.raises(ValueError, match="option of method='hybrid'"):
        xcloudfree.remove(small, method="median", model="hybrid_v2.pt")
    with pytest.raises(TypeError, match="unexpected keyword"):
        xcloudfree.remove(small, method="median", colour="red")


def test_dn_input_needs_scale(small):
    dn = (small * 10000).round().astype("uint16")
    with pytest.raises(ScaleError):
        xcloudfree.remove(dn, method="median")
    out = xcloudfree.remove(dn, method="median", scale=1e-4)
    assert out["reflectance"].dtype == np.float32


def test_lazy_until_compute(small):
    lazy = small.chunk({"y": 32, "x": 24})
    out = xcloudfree.remove(lazy, method="regression")
    assert all(v.chunks is not None for v in out.data_vars.values())
    eager = xcloudfree.remove(small, method="regression")
    xr.testing.assert_allclose(out.compute(), eager, atol=1e-6)


def test_plot_quicklook(small):
    out = xcloudfree.remove(small, method="nearest")
    fig = small.cloudfree.plot(out, max_dates=3)
    assert len(fig.axes) == 9
    assert fig.axes[2].get_title() == "nearest"
    fig = xcloudfree.plot(small, time=small.time.values[:2])
    assert len(fig.axes) == 4


def test_plot_options_and_the_result_accessor(small, monkeypatch):
    import matplotlib
    import matplotlib.pyplot as plt

    out = xcloudfree.remove(small, method="nearest")
    # Quality column (with its colour bar), false colour, and the result alone.
    fig = out.cloudfree.plot(small, max_dates=2, quality=True, bands=("B08", "B04", "B03"))
    assert [a.get_title() for a in fig.axes[:4]][3] == "quality"
    fig = out.cloudfree.plot(max_dates=2)
    assert len(fig.axes) == 4 and fig.axes[0].get_title().endswith("nearest")
    # Integer DN input takes scale= like everything else.
    dn = (small * 10000).round().astype("uint16")
    assert len(xcloudfree.plot(dn, max_dates=1, scale=1e-4).axes) == 2
    with pytest.raises(xcloudfree.errors.OptionError, match="three bands"):
        xcloudfree.plot(small, bands=("B08", "B04"))
    with pytest.raises(xcloudfree.errors.OptionError, match="not in the cube"):
        xcloudfree.plot(small, bands=("B09", "B04", "B03"))
    with pytest.raises(xcloudfree.errors.OptionError, match="needs a result"):
        xcloudfree.plot(small, quality=True)
    # Jupyter's inline backend shows open figures *and* the returned one: close it there.
    monkeypatch.setattr(
        matplotlib, "get_backend", lambda: "module://matplotlib_inline.backend_inline"
    )
    fig = xcloudfree.plot(small, max_dates=1)
    assert fig.number not in plt.get_fignums()
    monkeypatch.undo()
    fig = xcloudfree.plot(small, max_dates=1)
    assert fig.number in plt.get_fignums()  # elsewhere plt.show() still shows it
    plt.close("all")


def test_mask_of_other_dates_or_grid_refused(small):
    mask = xcloudfree.cloud_mask(small)
    with pytest.raises(CubeError, match="dates differ"):
        xcloudfree.remove(small, "nearest", mask=mask.isel(time=slice(None, None, -1)))
    shifted = mask.assign_coords(x=mask.x + 5 * float(mask.x[1] - mask.x[0]))
    with pytest.raises(CubeError, match="x coordinates"):
        xcloudfree.remove(small, "nearest", mask=shifted)
    with pytest.raises(CubeError, match="0 and 1"):
        xcloudfree.remove(small, "nearest", mask=mask.astype(int) * 2)


def test_nan_under_a_cloud_stays_nan(small):
    cube = small.copy(deep=True)
    cloudy = xcloudfree.cloud_mask(cube, dilate=0)
    t, y, x = (int(i[0]) for i in np.nonzero(cloudy.values))
    cube.values[t, :, y, x] = np.nan
    mask = cloudy.copy(data=cloudy.values.copy())
    mask.values[t, y, x] = True
    for method in xcloudfree.BASELINES:
        out = xcloudfree.remove(cube, method, mask=mask)
        assert np.isnan(out["reflectance"].values[t, :, y, x]).all()
        assert np.isnan(out["quality"].values[t, y, x])
    # Nor does the dilated default mask call the nodata pixel cloud.
    assert not xcloudfree.remove(cube, "nearest")["cloud_mask"].values[t, y, x]


def test_plot_refuses_dates_not_in_the_cube(small):
    with pytest.raises(ValueError, match="not in the cube"):
        xcloudfree.plot(small, time=["2000-01-01"])


def test_baseline_offset_is_taken_by_every_entry_point(small):
    """L2A DN of baseline >= 04.00 carry +1000: the ScaleError's advice, followed, works."""
    dn = (small * 10000 + 1000).round().astype("uint16")
    with pytest.raises(ScaleError, match=r"scale=1e-4.*offset=-0\.1") as info:
        xcloudfree.remove(dn, method="nearest", progress=False)
    assert "offset=-0.1" in str(info.value)
    kw = {"scale": 1e-4, "offset": -0.1}
    expected = xcloudfree.remove(small, method="nearest", progress=False)
    got = xcloudfree.remove(dn, method="nearest", progress=False, **kw)
    np.testing.assert_allclose(got.reflectance.values, expected.reflectance.values, atol=1e-4)
    np.testing.assert_array_equal(got.cloud_mask.values, expected.cloud_mask.values)
    for func in (xcloudfree.cloud_mask, xcloudfree.cloud_probability):
        xr.testing.assert_allclose(
            func(dn, progress=False, **kw), func(small, progress=False), atol=1e-3
        )
    assert len(xcloudfree.plot(dn, max_dates=1, **kw).axes) == 2


def test_accessor_methods_carry_the_signatures_and_docs_of_their_functions(small):
    import inspect

    bound = {
        "remove": xcloudfree.remove, "mask": xcloudfree.cloud_mask,
        "mask_classes": xcloudfree.mask_classes, "cloud_probability": xcloudfree.cloud_probability,
        "metrics": xcloudfree.metrics.summary, "plot": xcloudfree.plot,
    }  # fmt: skip
    for name, func in bound.items():
        method = getattr(small.cloudfree, name)
        expected = list(inspect.signature(func).parameters)[1:]
        assert list(inspect.signature(method).parameters) == expected, name
        assert method.__doc__ == func.__doc__, name
    assert "threshold" in inspect.signature(small.cloudfree.remove).parameters
