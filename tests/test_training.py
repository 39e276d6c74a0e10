"""Training: pairs with known truth, the three phases, loss going down, checkpoints, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
from conftest import shared_data

import xcloudfree
from xcloudfree.training import loop as loop_module
from xcloudfree.training.data import Sampler, prepare_pair
from xcloudfree.training.losses import masked_l1
from xcloudfree.training.pairs import pairs_from

CORE = ["B02", "B03", "B04", "B08"]


@pytest.fixture(scope="module")
def crop(sample):
    """The real series, 4 bands, 64 x 64 px."""
    return sample.sel(band=CORE).isel(y=slice(40, 104), x=slice(120, 184))


@pytest.fixture(scope="module")
def pairs(crop):
    return xcloudfree.make_training_pairs(crop, n=2, targets=3, seed=0)


def _fit(pairs, **kw):
    args = dict(epochs=1, steps_per_epoch=2, batch_size=2, patch_size=32, progress=False, seed=5)
    args.update(kw)
    return xcloudfree.train(pairs, **args)


def test_pairs_lay_real_clouds_over_clear_dates(crop, pairs):
    assert len(pairs) == 2
    for pair in pairs:
        changed = (np.abs(pair.cloudy - pair.clear) > 0).any(("band", "y", "x")).values
        assert changed.sum() == 3
        clear_frac = xcloudfree.cloud_mask(crop).mean(("y", "x")).values
        assert (clear_frac[changed] <= 0.05).all()
        xr.testing.assert_equal(pair.clear, xcloudfree.as_cube(crop))


def test_single_date_pairs_synthesise_a_series(crop):
    image = crop.isel(time=[13])
    bank = crop.isel(time=[0, 1, 3, 16])
    with pytest.raises(ValueError, match="cloud_bank"):
        xcloudfree.make_training_pairs(image)
    out = xcloudfree.make_training_pairs(image, cloud_bank=bank, k=4, n=2, seed=1)
    assert len(out) == 2 and out[0].sizes["time"] == 4
    target = int(np.flatnonzero(out[0].time.values == image.time.values[0])[0])
    np.testing.assert_array_equal(out[0].clear.isel(time=target), image.isel(time=0))
    assert bool((out[0].cloudy.isel(time=target) != image.isel(time=0)).any())
    with pytest.raises(ValueError, match="smaller than the cube"):
        xcloudfree.make_training_pairs(image, cloud_bank=bank.isel(y=slice(0, 10)))


def test_pairs_from_checks_its_input(crop, pairs):
    assert len(pairs_from(pairs[0])) == 1
    assert len(pairs_from([(pairs[0].cloudy, pairs[0].clear)])) == 1
    with pytest.raises(TypeError, match="sequence"):
        pairs_from(crop)
    with pytest.raises(ValueError, match="same dates"):
        pairs_from([(crop, crop.isel(time=slice(1, None)))])
    with pytest.raises(ValueError, match="'cloudy' and 'clear'"):
        pairs_from([xr.Dataset({"cloudy": crop})])
    with pytest.raises(ValueError, match="empty"):
        pairs_from([])


def test_train_rejects_bad_options(pairs):
    with pytest.raises(ValueError, match="phases"):
        _fit(pairs, phases=("joint", "stgan"))
    with pytest.raises(TypeError, match="unknown loss weights"):
        _fit(pairs, perceptul=1.0)
    with pytest.raises(ValueError, match="resume=True needs checkpoint_dir"):
        _fit(pairs, resume=True)
    with pytest.raises(ValueError, match="patch_size"):
        _fit(pairs, patch_size=200)


def test_three_phases_run_and_log(pairs, tmp_path):
    model = _fit(pairs, checkpoint_dir=tmp_path, checkpoint_every=1)
    assert [h["phase"] for h in model.history] == ["stgan"] * 2 + ["cyclegan"] * 2 + ["joint"] * 2
    cyc = model.history[2]
    for term in ("adversarial", "cycle", "identity", "perceptual", "reconstruction", "temporal"):
        assert np.isfinite(cyc[term]), term
    assert "mask" in model.history[0] and "cycle" not in model.history[0]
    assert (tmp_path / "checkpoint.pt").exists()
    assert (tmp_path / "losses.csv").read_text().count("\n") == 7
    assert not model.training


def test_same_seed_same_model(pairs):
    a, b = _fit(pairs), _fit(pairs)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name
    c = _fit(pairs, seed=6)
    assert not torch.equal(a.stgan.enc1[0].weight, c.stgan.enc1[0].weight)


def test_resume_after_interruption_equals_uninterrupted(pairs, tmp_path, monkeypatch):
    full = _fit(pairs, steps_per_epoch=3, checkpoint_dir=tmp_path / "a", checkpoint_every=1)
    real_step = loop_module._Trainer.step
    calls = {"n": 0}

    def crashing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:  # in the middle of the cyclegan phase
            raise KeyboardInterrupt
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(loop_module._Trainer, "step", crashing)
    with pytest.raises(KeyboardInterrupt):
        _fit(pairs, steps_per_epoch=3, checkpoint_dir=tmp_path / "b", checkpoint_every=1)
    monkeypatch.setattr(loop_module._Trainer, "step", real_step)
    resumed = _fit(pairs, steps_per_epoch=3, checkpoint_dir=tmp_path / "b", checkpoint_every=1,
                   resume=True)  # fmt: skip
    for (name, p), q in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(p, q), name
    assert [h["total"] for h in full.history] == [h["total"] for h in resumed.history]
    with pytest.raises(ValueError, match="different run"):
        _fit(pairs, steps_per_epoch=4, checkpoint_dir=tmp_path / "b", resume=True)


def _fixed_batch_error(model, sampler):
    batch = sampler.sample(8, np.random.default_rng(123))
    with torch.no_grad():
        out = model(batch["dates"], batch["cloud"], batch["base"], batch["mask"], stages=("stgan",))
    return float(masked_l1(out, batch["truth"], batch["weight"]))


def test_tiny_training_on_real_patches_reduces_the_loss(crop):
    """The STGAN stage learns: its error on a fixed batch of real crops goes down."""
    pairs = xcloudfree.make_training_pairs(crop, n=3, targets=4, seed=2)
    torch.manual_seed(0)
    model = xcloudfree.HybridModel()
    with torch.no_grad():  # start away from the regression base, which is already good
        model.stgan.head.mlp[2].weight.normal_(0, 0.6)
    sampler = Sampler([prepare_pair(p.cloudy, p.clear, k=3) for p in pairs], 32)
    before = _fixed_batch_error(model, sampler)
    trained = xcloudfree.train(
        pairs, phases=("stgan",), epochs=40, steps_per_epoch=1, batch_size=4, patch_size=32,
        lr=3e-3, progress=False, model=model, adversarial=0.0, perceptual=0.0,
    )  # fmt: skip
    after = _fixed_batch_error(trained, sampler)
    assert after < 0.8 * before, (before, after)


def test_training_on_shared_clear_patches_with_a_cloud_bank():
    path = shared_data("sen12mscrts_roi146", "clear_patches")
    image = xcloudfree.datasets.read_geotiff(sorted(path.glob("*.tif"))[0]).sel(band=CORE)
    bank = xcloudfree.datasets.sample_timeseries(bands=CORE).isel(time=[1, 2, 3, 6, 9])
    pairs = xcloudfree.make_training_pairs(image.isel(y=slice(0, 64), x=slice(0, 64)),
                                           cloud_bank=bank, n=2, seed=0)  # fmt: skip
    model = _fit(pairs, phases=("stgan",))
    assert len(model.history) == 2 and np.isfinite(model.history[-1]["total"])


def test_training_crops_give_neighbours_in_the_targets_radiometry(pairs):
    # As the engine gives them to a model with map_neighbours (the default): every other
    # date through the regression's pair fit into the target's radiometry.
    import dataclasses

    prepared = prepare_pair(pairs[0].cloudy, pairs[0].clear, k=3)
    t, c = prepared.gain.shape[0], prepared.gain.shape[2]
    assert prepared.gain.shape == prepared.offset.shape == (t, t, c)
    known = dataclasses.replace(
        prepared, gain=np.full((t, t, c), 2, np.float32), offset=np.full((t, t, c), 0.1, np.float32)
    )

    def dates(mapped):
        sampler = Sampler([known], 32, map_neighbours=mapped)
        return sampler.sample(4, np.random.default_rng(0))["dates"].numpy()

    raw, mapped = dates(False), dates(True)
    np.testing.assert_array_equal(mapped[:, 0], raw[:, 0])  # the target is itself
    np.testing.assert_allclose(mapped[:, 1:], 2 * raw[:, 1:] + 0.1, rtol=1e-6)
