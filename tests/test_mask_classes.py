"""The temporal cloud, haze and shadow mask: classes, the series' evidence, sources, laziness."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from conftest import shared_data

import xcloudfree
from xcloudfree.errors import CubeError, OptionError
from xcloudfree.masking import classes as mc
from xcloudfree.masking import haze, mask_classes, persistent, shadows


@pytest.fixture(scope="module")
def summer(sample):
    """Eight real dates around the clear summer of the sample, 96 x 96 px."""
    return sample.sel(time=slice("2018-05-31", "2018-09-03")).isel(
        y=slice(80, 176), x=slice(80, 176)
    )


def test_classes_flags_and_mask_agree(summer):
    ds = mask_classes(summer, progress=False)
    assert ds["mask_class"].dtype == np.uint8 and ds["cloud_mask"].dtype == bool
    assert ds["mask_class"].attrs["flag_meanings"].split() == [*mc.CLASSES, "nodata"]
    np.testing.assert_array_equal(
        ds["cloud_mask"].values, np.isin(ds["mask_class"].values, mc.FILLED)
    )
    p = ds["cloud_probability"].values
    assert p.dtype == np.float32 and np.nanmin(p) >= 0 and np.nanmax(p) <= 1 + 1e-6
    assert str(ds.rio.crs) == str(summer.rio.crs)


def test_overcast_clear_and_haze_dates_of_the_sample(sample):
    frac = mask_classes(sample, progress=False)["cloud_mask"].mean(("y", "x")).to_series()
    for overcast in ("2018-01-31", "2018-04-11", "2018-05-06", "2018-11-27"):
        assert frac[overcast] > 0.95
    # Clear summer and autumn dates with bright bare fields are kept.
    for clear in ("2018-06-10", "2018-07-30", "2018-08-24", "2018-10-08"):
        assert frac[clear] < 0.1


def _with_shadow_and_haze(cube, cloud=True):
    """A clear date with a real-looking shadow (every band x 0.45) beside an opaque cloud,
    and a haze veil."""
    data = cube.values.copy()
    t = 4  # 2018-07-20, clear
    data[t, :, 10:40, 10:40] *= 0.45
    if cloud:
        data[t, :, 2:32, 44:60] = 0.55
    veil = np.full(data.shape[1], 0.25, np.float32)[:, None, None]
    data[t, :, 50:90, 50:90] = 0.6 * data[t, :, 50:90, 50:90] + 0.4 * veil
    return cube.copy(data=data), t


def test_shadow_and_haze_found_from_the_series(summer):
    # The temporal network alone: the series' evidence (the default joins it with a
    # single-date detector, which reads this synthetic veil as thick cloud).
    cube, t = _with_shadow_and_haze(summer)
    ds = mask_classes(cube, "temporal", progress=False, dilate=0)
    cls = ds["mask_class"].values[t]
    assert (cls[14:36, 14:36] == mc.SHADOW).mean() > 0.8
    assert ds["cloud_mask"].values[t, 4:30, 46:58].mean() > 0.9
    assert ds["cloud_mask"].values[t, 54:86, 54:86].mean() > 0.9
    # The rest of the date, bright fields included, stays clear.
    rest = np.ones(cls.shape, bool)
    rest[5:45, 5:45] = rest[45:95, 45:95] = rest[0:35, 40:64] = False
    assert ds["cloud_mask"].values[t][rest].mean() < 0.05


def test_a_shadow_needs_a_cloud_within_reach(summer):
    """The same dark patch with no cloud on its date is dark ground, not cloud shadow."""
    cube, t = _with_shadow_and_haze(summer, cloud=False)
    cls = mask_classes(cube, "temporal", progress=False, dilate=0)["mask_class"].values[t]
    assert (cls[14:36, 14:36] == mc.SHADOW).mean() < 0.05
    assert (cls[54:86, 54:86] == mc.THIN).mean() > 0.8  # the haze is still found
    # With the cloud, the sun's height decides: the search reaches 3 km / tan(elevation).
    cube, t = _with_shadow_and_haze(summer)
    coarse = cube.assign_coords(x=cube.x * 20, y=cube.y * 20)  # 200 m pixels
    near, far = 80.0, 10.0  # degrees: 1 km (5 px) and 6 km (30 px)
    for elevation, kept in ((near, False), (far, True)):
        sun = coarse.assign_coords(sun_elevation=("time", np.full(cube.sizes["time"], elevation)))
        cls = mask_classes(sun, "temporal", progress=False, dilate=0)["mask_class"].values[t]
        assert bool((cls[14:36, 14:36] == mc.SHADOW).mean() > 0.8) is kept


def test_shadow_check_is_lazy_and_chunk_independent():
    rng = np.random.default_rng(0)
    cls = rng.choice([mc.CLEAR, mc.SHADOW, mc.THIN], size=(3, 120, 90), p=[0.8, 0.15, 0.05])
    cls[0, 60, 45] = cls[1, 5, 5] = mc.THICK  # date 2 has no cloud at all
    cls = xr.DataArray(cls.astype(np.uint8), dims=("time", "y", "x"))
    p = xr.where(cls == mc.THICK, 0.9, 0.0)
    radius = np.array([20, 50, 30])
    eager = shadows.shadows_need_clouds(cls, p, radius)
    lazy = shadows.shadows_need_clouds(cls.chunk({"y": 25, "x": 40}), p.chunk({"y": 25, "x": 40}),
                                       radius)  # fmt: skip
    assert lazy.chunks == ((3,), (25, 25, 25, 25, 20), (40, 40, 10))
    np.testing.assert_array_equal(lazy.values, eager.values)
    out = eager.values
    assert not (out[2] == mc.SHADOW).any()  # no cloud on the date: every shadow cleared
    yy, xx = np.mgrid[:120, :90]
    near0 = (abs(yy - 60) <= 20) & (abs(xx - 45) <= 20)
    np.testing.assert_array_equal(out[0] == mc.SHADOW, (cls.values[0] == mc.SHADOW) & near0)
    np.testing.assert_array_equal(out[1] == mc.THIN, cls.values[1] == mc.THIN)  # only shadows


def test_a_stable_surface_flagged_on_every_date_is_clear_where_its_surroundings_are():
    rng = np.random.default_rng(1)
    flagged = np.zeros((5, 60, 70), bool)
    flagged[:, 20:22, 30:32] = True  # a small bright roof, flagged on every date
    flagged[:, 50, 60] = True  # a flagged pixel whose colour changes: left flagged
    flagged[3] = True  # an overcast date
    flagged[1, 10:30, 20:40] = True  # a date with haze around the roof
    vis = (0.05 + 0.01 * rng.random((5, 3, 60, 70))).astype(np.float32)
    vis[:, :, 20:22, 30:32] = 0.3
    vis[:, :, 50, 60] = np.linspace(0.2, 0.5, 5)[:, None]
    out = persistent.stable_surfaces(flagged, np.ones_like(flagged), vis)
    # clear on the dates with clear surroundings, still flagged under the haze and cloud
    np.testing.assert_array_equal(out[:, 20:22, 30:32].all((1, 2)), [1, 0, 1, 0, 1])
    assert out.sum() == 3 * 4
    # within the radius of a block's edge the answer is the whole scene's
    r = persistent.RADIUS
    part = persistent.stable_surfaces(flagged[:, :30], np.ones((5, 30, 70), bool), vis[:, :, :30])
    np.testing.assert_array_equal(part[:, : 30 - r], out[:, : 30 - r])
    # as probabilities: those pixel-dates become certain clear ground
    probs = np.full((5, 5, 60, 70), 0.2, np.float32)
    probs[:, mc.CLEAR] = np.where(flagged, 0.1, 0.9)
    probs[:, mc.THICK] = np.where(flagged, 0.9, 0.1) - 0.6
    new = persistent.unmask_surfaces(probs.copy(), vis, threshold=0.5)
    np.testing.assert_array_equal(new[:, mc.CLEAR] == 1, out)
    np.testing.assert_array_equal(new[:, :, ~out.any(0)], probs[:, :, ~out.any(0)])


def test_faint_haze_is_the_dates_own_offset_and_nothing_more():
    dep = np.full((80, 80), 0.03, np.float32)  # the whole date a little brighter in blue
    thin = np.zeros((80, 80), bool)
    thin[5:25, 5:25] = True  # as bright as the clear ground around it: unmasked
    thin[5:25, 40:60] = True
    dep[5:25, 40:60] = 0.03 + 2 * haze.MARGIN  # brighter than that: haze, kept
    thin[40:50, 5:25] = True
    dep[40:50, 5:25] = 0.03 - 2 * haze.MARGIN  # darker: a shadow called thin, kept
    thin[60:70, 5:25] = True
    dep[60:70, 5:25] = np.nan  # no reference (no clear other date): kept
    clear = ~thin
    out = haze.faint_haze(dep, thin, clear)
    np.testing.assert_array_equal(out, thin & (np.abs(dep - 0.03) < 1e-6))
    # beside thick cloud nothing is unmasked: its haze brightens the ground nearby too
    thick = np.zeros_like(thin)
    thick[30, 30] = True
    near = haze.faint_haze(dep, thin, clear & ~thick, thick)
    r = haze.RADIUS
    yy, xx = np.mgrid[:80, :80]
    beside = (abs(yy - 30) <= r) & (abs(xx - 30) <= r)
    assert (out & beside).any()
    np.testing.assert_array_equal(near, out & ~beside)
    # within the radius of a block's edge the answer is the whole scene's
    part = haze.faint_haze(dep[:, :45], thin[:, :45], clear[:, :45])
    np.testing.assert_array_equal(part[:, : 45 - r], out[:, : 45 - r])
    # as probabilities: those pixels become certain clear ground, the rest is untouched
    probs = np.zeros((1, 5, 80, 80), np.float32)
    probs[0, mc.THIN] = np.where(thin, 0.9, 0.05)
    probs[0, mc.CLEAR] = 1 - probs[0, mc.THIN]
    new = haze.unmask_faint_haze(probs.copy(), dep[None], threshold=0.5)
    np.testing.assert_array_equal(new[0, mc.CLEAR] == 1, out)
    np.testing.assert_array_equal(new[:, :, ~out], probs[:, :, ~out])


def test_a_uniformly_hazy_winter_date_is_not_masked_in_patches(sample):
    """2018-12-07 of the sample is a little brighter everywhere (winter haze or
    offset): before the faint-haze check half of it was masked, in patches."""
    frac = mask_classes(sample, progress=False)["cloud_mask"].mean(("y", "x")).to_series()
    assert frac["2018-12-07"] < 0.3
    assert frac["2018-09-18"] > 0.85  # real cloud and the haze around it stay masked


def test_belgian_roof_is_not_cloud_on_every_date():
    """Before the persistent-surface check, a bright roof of the Belgian winter series
    was masked on all 19 dates (21 px with the dilation), so the fill kept the cloud of
    the overcast dates there."""
    path = shared_data("openeo_belgium_l2a", "belgium_2023q4.nc")
    ds = xr.open_dataset(path)
    bands = ["B02", "B03", "B04", "B08"]
    v = np.stack([ds[f"S2-L2A-{b}"].values for b in bands], 1).astype(np.float32)
    cube = xr.DataArray(
        np.where(v == 0, np.nan, v * 1e-4), dims=("time", "band", "y", "x"),
        coords={"time": ds["t"].values, "y": ds["y"].values, "x": ds["x"].values, "band": bands},
    )  # fmt: skip
    mask = xcloudfree.cloud_mask(cube, progress=False).values
    assert not mask.all(axis=0).any()
    assert not mask[1, 38:45, 12:19].any()  # 2023-10-07, clear around the roof


def test_clear_november_hillsides_are_not_shadow():
    """Held-out clear patches of the L1C series under a low November sun: before the
    check 42-55 % of them was masked, mostly as shadow (terrain shade)."""
    path = shared_data("sen12mscrts_roi146", "clear_patches")
    for name in ("patch274_2018-11-12.tif", "patch279_2018-11-12.tif"):
        patch = xcloudfree.datasets.read_geotiff(path / name)
        ds = mask_classes(patch, progress=False)
        assert float((ds["mask_class"] == mc.SHADOW).mean()) < 0.01
        assert float(ds["cloud_mask"].mean()) < 0.05


def test_one_date_alone_still_works(sample):
    overcast = mask_classes(sample.sel(time=["2018-04-11"]), progress=False)
    clear = mask_classes(sample.sel(time=["2018-07-30"]), progress=False)
    assert float(overcast["cloud_mask"].mean()) > 0.95
    assert float(clear["cloud_mask"].mean()) < 0.1


def test_dask_equals_numpy(summer):
    eager = mask_classes(summer, progress=False)
    lazy = mask_classes(summer.chunk({"y": 48, "x": 48}), progress=False)
    assert lazy["cloud_probability"].chunks is not None
    lazy = lazy.compute()
    np.testing.assert_allclose(
        lazy["cloud_probability"].values, eager["cloud_probability"].values, rtol=0, atol=1e-6
    )  # measured 7e-9
    np.testing.assert_array_equal(lazy["mask_class"].values, eager["mask_class"].values)


def test_nodata_is_its_own_class_and_never_masked(summer):
    cube = summer.copy(deep=True)
    cube.values[2, :, 5:9, 5:9] = np.nan
    ds = mask_classes(cube, progress=False)
    assert (ds["mask_class"].values[2, 5:9, 5:9] == mc.NODATA).all()
    assert not ds["cloud_mask"].values[2, 5:9, 5:9].any()
    assert np.isnan(ds["cloud_probability"].values[2, 5:9, 5:9]).all()


def test_remove_applies_exactly_what_mask_returns(summer):
    out = xcloudfree.remove(summer, "nearest", progress=False)
    xr.testing.assert_identical(out["cloud_mask"], summer.cloudfree.mask(progress=False))
    assert out["mask_class"].attrs["flag_values"].tolist() == [0, 1, 2, 3, 4, 255]
    same = xcloudfree.remove(summer, "nearest", mask="spectral", dilate=1)
    xr.testing.assert_equal(same["cloud_mask"], xcloudfree.cloud_mask(summer, "spectral", dilate=1))


def test_scl_source_and_its_errors(summer):
    scl = np.full((summer.sizes["time"], summer.sizes["y"], summer.sizes["x"]), 4, np.uint8)
    scl[1, :10, :10] = 9
    scl[1, 20:30, 20:30] = 3
    scl[1, 40:45, 40:45] = 0
    scl_da = xr.DataArray(scl, dims=("time", "y", "x"))
    ds = mask_classes(summer.assign_coords(scl=scl_da), "scl", dilate=0)
    cls = ds["mask_class"].values[1]
    assert (cls[:10, :10] == mc.THICK).all() and (cls[20:30, 20:30] == mc.SHADOW).all()
    assert (cls[40:45, 40:45] == mc.NODATA).all()
    assert int(ds["cloud_mask"].sum()) == 200
    with pytest.raises(CubeError, match="assign_coords"):
        mask_classes(summer, "scl")
    with pytest.raises(OptionError, match="classes only"):
        mask_classes(summer.assign_coords(scl=scl_da), "scl", threshold=0.3)


def test_user_callable_and_bad_options(summer):
    def bright(cube):
        return cube.sel(band="B02") > 0.12

    ds = mask_classes(summer, bright)
    xr.testing.assert_equal(
        ds["cloud_mask"], xcloudfree.remove(summer, "nearest", mask=bright)["cloud_mask"]
    )
    with pytest.raises(OptionError, match="used as it returns it"):
        mask_classes(summer, bright, dilate=2)
    with pytest.raises(OptionError, match="dilate_mask"):
        xcloudfree.remove(summer, "nearest", mask=bright(summer), dilate=2)
    with pytest.raises(OptionError, match="unknown mask method 'sen2cor'"):
        mask_classes(summer, "sen2cor")
    with pytest.raises(OptionError, match="outside 0-1"):
        mask_classes(summer, threshold=1.5)
    with pytest.raises(OptionError, match=">= 0"):
        mask_classes(summer, dilate=-1)


def test_scl_codes_map_to_classes():
    codes = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, np.nan])
    assert mc.from_scl(codes).tolist() == [255, 255, 0, 3, 0, 0, 0, 0, 1, 1, 2, 4, 255]
