"""The shipped hybrid model through remove(): real weights, real data, numpy and dask."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest
import xarray as xr
from conftest import shared_data

import xcloudfree
from xcloudfree import metrics
from xcloudfree.errors import BandError, ModelUnavailableError, OptionError
from xcloudfree.fills.baselines import _days
from xcloudfree.fills.neighbours import nearest_dates
from xcloudfree.inference import engine
from xcloudfree.models import PRETRAINED, HybridModel, pretrained
from xcloudfree.options import EngineOptions

HELDOUT = ["2018-06-10", "2018-07-30"]  # clear dates kept out of training


@pytest.fixture(scope="module")
def sim(sample):
    crop = sample.isel(y=slice(0, 96), x=slice(96, 192))
    return xcloudfree.simulate_clouds(crop, targets=HELDOUT, seed=0)


def _psnr_under(out, sim):
    pick = {"time": sim.targets}
    return float(
        metrics.psnr(out.reflectance.sel(pick), sim.truth.sel(pick), mask=sim.mask.sel(pick))
    )


def test_weights_ship_in_the_package_within_budget():
    ref = resources.files("xcloudfree") / "weights" / PRETRAINED
    assert ref.is_file()
    assert ref.stat().st_size < 5e6  # issue limit 20 MB; the package data budget is 15 MB
    data = resources.files("xcloudfree") / "data"
    total = ref.stat().st_size + sum(f.stat().st_size for f in data.iterdir())
    assert total < 15e6
    model = pretrained()
    assert model.config.metadata["heldout"]["series_dates"][:2] == HELDOUT


def test_shipped_model_beats_the_median_on_a_real_case(sim):
    hybrid = xcloudfree.remove(sim.cloudy, mask=sim.true_mask)
    median = xcloudfree.remove(sim.cloudy, "median", mask=sim.true_mask)
    assert _psnr_under(hybrid, sim) > _psnr_under(median, sim) + 1.0
    assert hybrid.attrs["method"] == "hybrid"
    # clear pixels are the input, unchanged
    clear = ~sim.true_mask
    np.testing.assert_array_equal(
        hybrid.reflectance.where(clear).values, sim.cloudy.where(clear).values
    )


def test_default_mask_is_the_temporal_mask(sim):
    out = xcloudfree.remove(sim.cloudy, progress=False)
    assert "xcloudfree-mask" in out.cloud_mask.attrs["description"]
    # The result says what made it: mask and weights (fingerprints of the shipped files).
    assert out.attrs["mask"] == out.cloud_mask.attrs["description"]
    assert out.attrs["model"].startswith("shipped hybrid_v2 (weights ")
    assert out.cloud_probability.dims == out.mask_class.dims == ("time", "y", "x")
    pick = {"time": sim.targets}
    # Laid clouds are found almost whole: a missed cloud pixel costs the fill most.
    recall = float(metrics.recall(out.cloud_mask.sel(pick), sim.mask.sel(pick)))
    assert recall > 0.9
    assert _psnr_under(out, sim) > _psnr_under(xcloudfree.remove(sim.cloudy, "median"), sim)


def test_ablation_stages_run_and_differ(sim):
    full = xcloudfree.remove(sim.cloudy, mask=sim.true_mask)
    stgan = xcloudfree.remove(sim.cloudy, mask=sim.true_mask, stages=("stgan",))
    assert stgan.attrs["method"] == "hybrid (stgan only)"
    assert not np.allclose(full.reflectance, stgan.reflectance)


def test_band_order_crs_and_coords_are_kept(small):
    shuffled = small.sel(band=["B12", "B08", "B02", "B04", "B03", "B05"])
    out = xcloudfree.remove(shuffled)
    assert list(out.reflectance.band.values) == list(shuffled.band.values)
    xr.testing.assert_identical(out.reflectance.x, small.x)
    assert out.reflectance.rio.crs == small.rio.crs
    # The same bands in another order give the same result.
    direct = xcloudfree.remove(small.sel(band=["B02", "B03", "B04", "B05", "B08", "B12"]))
    np.testing.assert_allclose(
        out.reflectance.sel(band="B04"), direct.reflectance.sel(band="B04"), atol=1e-6
    )


def test_accessor_equals_function_and_dask_equals_numpy(small):
    eager = xcloudfree.remove(small)
    xr.testing.assert_identical(small.cloudfree.remove(), eager)
    lazy = xcloudfree.remove(small.chunk(time=2, y=40, x=30))
    assert lazy.reflectance.chunks is not None
    back = lazy.compute()
    xr.testing.assert_equal(back.cloud_mask, eager.cloud_mask)
    # Measured 0.0: the halo holds the network's whole receptive field, so a chunk sees
    # what the whole scene sees. A halo cut short would show here.
    np.testing.assert_allclose(back.reflectance, eager.reflectance, rtol=0, atol=1e-6)


def test_tiles_agree_with_the_whole_scene(sample):
    model = HybridModel(pretrained().config)
    model.load_state_dict(pretrained().state_dict())
    cube = xcloudfree.cube.core_first(
        sample.isel(time=slice(12, 18), y=slice(0, 150), x=slice(0, 140))
    )
    mask = xcloudfree.cloud_mask(cube, dilate=2)
    whole, _ = engine.fill_with_model(
        cube, mask, EngineOptions(model=model, tile=512), progress=False
    )
    tiled, _ = engine.fill_with_model(
        cube, mask, EngineOptions(model=model, tile=64), progress=False
    )
    # Measured 3e-8 (float32 rounding of differently sized convolutions).
    np.testing.assert_allclose(whole.values, tiled.values, rtol=0, atol=1e-6)


def test_hybrid_input_errors(small, tmp_path, monkeypatch):
    with pytest.raises(BandError, match="B03"):
        xcloudfree.remove(small.drop_sel(band="B03"))
    with pytest.raises(ValueError, match="option of method='hybrid'"):
        xcloudfree.remove(small, "median", model=pretrained())
    with pytest.raises(OptionError, match="model must be"):
        xcloudfree.remove(small, model=123)
    with pytest.raises(FileNotFoundError):
        xcloudfree.remove(small, model=tmp_path / "none.pt")
    with pytest.raises(ValueError, match="unknown mask method"):
        xcloudfree.cloud_mask(small, method="s2cloudless")
    monkeypatch.setattr("xcloudfree.models.hybrid.PRETRAINED", "missing.pt")
    pretrained.cache_clear()
    try:
        with pytest.raises(ModelUnavailableError, match="method='regression'"):
            xcloudfree.remove(small)
    finally:
        monkeypatch.undo()
        pretrained.cache_clear()


def test_a_saved_model_path_is_used(small, tmp_path):
    path = tmp_path / "copy.pt"
    pretrained().save(path)
    np.testing.assert_allclose(
        xcloudfree.remove(small, model=path).reflectance,
        xcloudfree.remove(small).reflectance,
        atol=1e-6,
    )


def test_l2a_input_with_b8a_works_and_beats_the_median():
    path = shared_data("greenearthnet_l2a", "hungary_romania_34TET.nc")
    cube, dl = xcloudfree.datasets.read_greenearthnet(path)
    sim = xcloudfree.simulate_clouds(cube, targets=["2021-06-15", "2021-07-30"], mask=dl, seed=0)
    hybrid = xcloudfree.remove(sim.cloudy, mask=sim.true_mask)
    median = xcloudfree.remove(sim.cloudy, "median", mask=sim.true_mask)
    assert _psnr_under(hybrid, sim) > _psnr_under(median, sim) + 1.0


def test_mask_head_on_the_held_out_reference_scene():
    path = shared_data("s2cloudless_scene", "scene.npz")
    with np.load(path) as z:
        refl = z["reflectance_x10000"][570:].astype(np.float32) / 10000
        ref = z["cloud_mask"][570:].astype(bool)
    bands = {"B02": 1, "B03": 2, "B04": 3, "B08": 7}
    cube = xr.DataArray(
        np.stack([refl[..., i] for i in bands.values()])[None],
        dims=("time", "band", "y", "x"),
        coords={"time": [np.datetime64("2000-01-01", "ns")], "band": list(bands)},
    )
    mask = xcloudfree.cloud_mask(cube, method="model", dilate=0)
    f1 = float(metrics.f1(mask, xr.DataArray(ref[None], dims=("time", "y", "x"))))
    assert f1 > 0.85


def test_a_neighbour_brighter_all_over_does_not_brighten_the_fill(sim, monkeypatch):
    # A uniformly hazier neighbour (+0.04 in every band, the whole date): the STGAN gets
    # it in the target's radiometry (the regression's pair fit), so its level does not
    # pass into the fill. The networks trained on raw neighbours took in +0.03.
    cube = sim.cloudy.copy()
    target = np.datetime64(sim.targets[0], "ns")
    t = list(cube.time.values).index(target)
    neighbour = nearest_dates(_days(cube.time.values), pretrained().config.k)[t, 1]
    cube[neighbour] = cube[neighbour] + 0.04
    seen = []
    forward = HybridModel.forward

    def spy(self, dates, cloud, base, mask, **kw):
        clear = (cloud[:, 0, 0] == 0) & (cloud[:, 1, 0] == 0)
        if clear.any():  # the guard's trial windows may have none
            seen.append(float((dates[:, 1] - dates[:, 0]).mean(1)[clear].mean()))
        return forward(self, dates, cloud, base, mask, **kw)

    monkeypatch.setattr(HybridModel, "forward", spy)
    kw = {"mask": sim.true_mask, "stages": ("stgan",), "guard": False, "progress": False}
    out = xcloudfree.remove(cube, **kw).reflectance.sel(time=target).values
    # What the network read of the neighbour is level with the target (not 0.04 above).
    assert seen and max(abs(v) for v in seen) < 0.01
    under = sim.mask.sel(time=target).values.astype(bool)
    bias = float(np.nanmean((out - sim.truth.sel(time=target).values)[:, under]))
    assert abs(bias) < 0.006


def test_models_saved_before_neighbour_mapping_load_without_it(tmp_path):
    import torch

    path = tmp_path / "old.pt"
    pretrained().save(path)
    blob = torch.load(path, weights_only=False)
    assert blob["format_version"] >= 2 and blob["config"]["map_neighbours"]
    blob["format_version"] = 1
    del blob["config"]["map_neighbours"]
    torch.save(blob, path)
    assert not xcloudfree.load_model(path).config.map_neighbours
