"""The networks as plain torch modules: shapes, gradients, clear-pixel pass-through, I/O."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from xcloudfree.models import (
    STAGES,
    CloudMaskNet,
    HybridConfig,
    HybridModel,
    PatchDiscriminator,
    load_model,
)


def _perturbed(seed: int = 0) -> HybridModel:
    """A model whose zero-initialised heads are randomised, so every stage acts."""
    torch.manual_seed(seed)
    model = HybridModel()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "head.mlp.2" in name:
                p.normal_(0, 0.5)
    return model.eval()


def _inputs(n, k, c, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    dates = torch.rand(n, k, c, h, w, generator=g) * 0.4
    cloud = (torch.rand(n, k, 1, h, w, generator=g) > 0.7).float()
    mask = (torch.rand(n, 1, h, w, generator=g) > 0.5).float()
    return dates, cloud, dates[:, -1], mask


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize(("h", "w", "c"), [(33, 47, 4), (20, 17, 10)])
def test_forward_backward_any_k_odd_sizes_any_bands(k, h, w, c):
    model = _perturbed().train()
    dates, cloud, base, mask = _inputs(2, k, c, h, w)
    out = model(dates, cloud, base, mask)
    assert out.shape == (2, c, h, w)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    for part in ("stgan", "refiner"):
        grads = [p.grad for p in getattr(model, part).parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), part
    logits = model.mask_head(dates[:, 0])
    assert logits.shape == (2, 1, h, w)
    fake = model.clouder(dates[:, 0], mask)
    assert fake.shape == (2, c, h, w)
    d_logits, feats = PatchDiscriminator()(out, mask)
    assert d_logits.ndim == 4 and len(feats) == 3


def test_clear_pixels_pass_through_exactly():
    model = _perturbed()
    dates, cloud, base, mask = _inputs(2, 3, 6, 40, 40)
    with torch.no_grad():
        out = model(dates, cloud, base, mask)
    clear = mask.expand_as(out) == 0
    assert torch.equal(out[clear], dates[:, 0][clear])
    assert not torch.allclose(out[~clear], dates[:, 0][~clear])


def test_untrained_heads_start_from_the_base():
    model = HybridModel().eval()
    dates, cloud, base, mask = _inputs(1, 3, 4, 24, 24)
    with torch.no_grad():
        out = model(dates, cloud, base, mask)
    expected = mask * base + (1 - mask) * dates[:, 0]
    assert torch.allclose(out, expected)


def test_stages_ablations_differ_and_are_checked():
    model = _perturbed()
    args = _inputs(1, 3, 4, 32, 32)
    with torch.no_grad():
        outs = {s: model(*args, stages=s) for s in [STAGES, ("stgan",), ("cyclegan",)]}
    assert not torch.allclose(outs[STAGES], outs[("stgan",)])
    assert not torch.allclose(outs[STAGES], outs[("cyclegan",)])
    with pytest.raises(ValueError, match="stages"):
        model(*args, stages=("gan",))


def test_attention_ignores_a_fully_cloudy_date():
    model = _perturbed()
    dates, _, base, _mask = _inputs(1, 3, 4, 32, 32)
    cloud = torch.zeros(1, 3, 1, 32, 32)
    cloud[:, 2] = 1.0
    with torch.no_grad():
        _, attention = model.stgan(dates, cloud, base)
    assert attention.sum(1).sub(1).abs().max() < 1e-5
    assert float(attention[:, 2].max()) < 0.05


def test_save_load_round_trip_is_identical(tmp_path):
    model = _perturbed(3)
    path = tmp_path / "m.pt"
    model.save(path)
    back = load_model(path)
    args = _inputs(2, 3, 5, 29, 31)
    with torch.no_grad():
        assert torch.equal(model(*args), back(*args))
        assert torch.equal(model.mask_head(args[0][:, 0]), back.mask_head(args[0][:, 0]))
    assert back.config == model.config
    half = io.BytesIO()
    model.save(half, half=True)
    assert half.tell() < path.stat().st_size * 0.6
    half.seek(0)
    with torch.no_grad():
        diff = (load_model(half)(*args) - model(*args)).abs().max()
    assert float(diff) < 5e-3


def test_load_model_rejects_other_files(tmp_path):
    bad = tmp_path / "bad.pt"
    torch.save({"weights": torch.zeros(3)}, bad)
    with pytest.raises(ValueError, match="not an xcloudfree model"):
        load_model(bad)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a readable xcloudfree model"):
        load_model(junk)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.pt")


def test_cost_is_measured_and_small():
    cost = HybridModel().cost(size=64)
    assert 5e4 < cost["parameters_inference"] < 2e6  # hybrid_v2: 74 311
    assert cost["flops_per_pixel"] == pytest.approx(
        sum(v for k, v in cost.items() if k.startswith("flops_per_pixel_"))
    )
    assert 5e4 < cost["flops_per_pixel"] < 2e6


def test_mask_net_is_local_so_tiles_agree():
    net = CloudMaskNet().eval()
    x = torch.rand(1, 4, 96, 96) * 0.5
    with torch.no_grad():
        whole = net(x)
        part = net(x[..., 10:90, 10:90])
    # 24 px from the tile border the output no longer depends on the tiling.
    np.testing.assert_allclose(whole[..., 34:66, 34:66], part[..., 24:56, 24:56], atol=1e-5)


def test_config_round_trips(tmp_path):
    model = HybridModel(HybridConfig(k=4, stgan_width=8, refiner_width=8, mask_width=8))
    model.save(tmp_path / "small.pt")
    assert load_model(tmp_path / "small.pt").config.k == 4
