"""The guard: the scene weighs the networks against the regression base on its own pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import xcloudfree
from xcloudfree import metrics
from xcloudfree.fills.baselines import _days, _pair_stats, _valid
from xcloudfree.inference.adaptation import training_windows
from xcloudfree.inference.guard import GROUPS, WINDOWS, fit_guard
from xcloudfree.models import HybridModel, pretrained
from xcloudfree.options import EngineOptions


@pytest.fixture(scope="module")
def sim(sample):
    crop = sample.isel(time=slice(6, 22), y=slice(0, 128), x=slice(0, 128))
    return xcloudfree.simulate_clouds(crop, targets=2, seed=1)


def _broken_model() -> HybridModel:
    """The shipped model with a colour cast added to the STGAN's output."""
    model = HybridModel(pretrained().config)
    model.load_state_dict(pretrained().state_dict())
    with torch.no_grad():
        model.stgan.head.mlp[2].bias += 0.4  # a +0.02 reflectance cast (RESIDUAL_STEP 0.05)
    return model


def _psnr(out, sim) -> float:
    pick = {"time": sim.targets}
    pred, truth = out.reflectance.sel(pick), sim.truth.sel(pick)
    return float(metrics.psnr(pred, truth, mask=sim.mask.sel(pick)))


def test_the_guard_turns_off_networks_that_make_the_scene_worse(sim):
    broken = _broken_model()
    kw = {"mask": sim.true_mask, "progress": False}
    regression = _psnr(xcloudfree.remove(sim.cloudy, "regression", **kw), sim)
    unguarded = _psnr(xcloudfree.remove(sim.cloudy, model=broken, guard=False, **kw), sim)
    guarded = _psnr(xcloudfree.remove(sim.cloudy, model=broken, **kw), sim)
    assert unguarded < regression - 1.5  # the cast does hurt
    assert guarded > regression - 0.3  # and the scene saw it: the base comes back


def test_guard_weights_are_per_date_shares_and_chunking_free(sim):
    cube = xcloudfree.cube.core_first(sim.cloudy)
    data = cube.values.astype(np.float32)
    mask = sim.true_mask.transpose("time", "y", "x").values
    stats = _pair_stats(data, _valid(data, mask))
    windows = training_windows(data.shape[2:], WINDOWS)
    crops = [data[:, :, ys, xs] for ys, xs in windows]
    masks = [mask[:, ys, xs] for ys, xs in windows]
    days = _days(cube.time.values)
    shipped = fit_guard(crops, masks, stats, days=days, options=EngineOptions())
    broken = fit_guard(crops, masks, stats, days=days, options=EngineOptions(model=_broken_model()))
    assert shipped.shape == (data.shape[0],)
    assert ((shipped >= 0) & (shipped <= 1)).all()
    assert broken.mean() < min(0.2, shipped.mean())  # measured 0.11 against 0.26
    # The same weights whatever the dask chunking: the fill equals the numpy one.
    eager = xcloudfree.remove(sim.cloudy, mask=sim.true_mask, progress=False)
    lazy = xcloudfree.remove(sim.cloudy.chunk({"y": 64, "x": 64}), mask=sim.true_mask)
    np.testing.assert_allclose(lazy.reflectance.values, eager.reflectance.values, rtol=0, atol=1e-6)


def test_on_dask_each_window_and_group_is_a_trial_task_of_its_own(sim):
    # One serial task for the whole guard kept a second worker idle (issue 15); the
    # trials are independent, and their sums added up as the eager path does give the
    # very same weights.
    lazy = xcloudfree.remove(sim.cloudy.chunk({"y": 64, "x": 64}), mask=sim.true_mask)
    trials = [k for k in dict(lazy.reflectance.__dask_graph__()) if "fit_on_blocks" in str(k)]
    windows = training_windows((sim.cloudy.sizes["y"], sim.cloudy.sizes["x"]), WINDOWS)
    assert len(trials) == len(windows) * len(GROUPS) > 1
    eager = xcloudfree.remove(sim.cloudy, mask=sim.true_mask, progress=False)
    # Equal up to the networks' float rounding over other windows (as the tiles test).
    np.testing.assert_allclose(lazy.reflectance.values, eager.reflectance.values, atol=1e-6)


@pytest.mark.parametrize(
    "kw", [{}, {"method": "regression", "adapt": True}], ids=["hybrid", "adapt"]
)
def test_the_scene_fits_never_compute_the_mask_twice(sample, monkeypatch, kw):
    # The fits once went through dask.delayed, which copied the cloud mask's graph:
    # every chunk's mask network ran twice.
    from xcloudfree import masking

    calls = []
    real = masking._temporal_block

    def counted(block, **kwargs):
        calls.append(block.shape)
        return real(block, **kwargs)

    monkeypatch.setattr(masking, "_temporal_block", counted)
    lazy = sample.isel(time=slice(10, 16), y=slice(0, 192), x=slice(0, 192)).chunk(
        {"y": 96, "x": 96}
    )
    xcloudfree.remove(lazy, **kw).reflectance.compute(scheduler="threads")
    assert len(calls) == 4  # one per chunk


def test_a_date_the_guard_zeroes_never_reaches_the_networks(sim, monkeypatch):
    """alpha 0 keeps the base whatever the networks say, so they are not run for it."""
    from xcloudfree.inference import engine

    cube = xcloudfree.cube.core_first(sim.cloudy)
    data = cube.values.astype(np.float32)
    mask = sim.true_mask.transpose("time", "y", "x").values
    stats = _pair_stats(data, _valid(data, mask))
    kw = {"days": _days(cube.time.values), "options": EngineOptions()}
    guard = np.zeros(data.shape[0], np.float32)
    guard[::2] = 0.5
    runs = []
    real = HybridModel.forward

    def counted(self, x, *args, **kwargs):
        runs.append(x.shape[0])  # (window, date) pairs in the batch
        return real(self, x, *args, **kwargs)

    monkeypatch.setattr(HybridModel, "forward", counted)
    skipped = engine.fill_block(data, mask, stats, guard=guard, **kw)
    fewer = sum(runs)
    # The networks run on every date, and the zero dates weighted by a vanishing share.
    runs.clear()
    tiny = np.where(guard > 0, guard, np.float32(1e-30))
    every = engine.fill_block(data, mask, stats, guard=tiny, **kw)
    assert 0 < fewer < sum(runs)
    np.testing.assert_allclose(skipped[:, :-1], every[:, :-1], rtol=0, atol=1e-12)
