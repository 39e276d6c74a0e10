"""Loss terms of the three training phases.

* ``reconstruction``: L1 to the truth over the scored pixels (filled, clear in truth).
* ``adversarial``: least-squares GAN (LSGAN) against PatchGAN discriminators.
* ``temporal``: the estimate's fine texture must match that of the clear neighbour
  dates (high-pass L1, weighted by each neighbour's clearness): surfaces change
  slowly, so detail should agree through time.
* ``cycle``: F(G(cloudy)) = cloudy and G(F(clear)) = clear (L1).
* ``identity``: G leaves a clear image with a perfect estimate unchanged (L1).
* ``perceptual``: no pretrained network is downloaded. Discriminator feature
  matching (L1 between the clear-image discriminator's feature maps of the output
  and of the truth) plus a structural term, 1 - SSIM on the core bands.
* ``mask``: binary cross-entropy of the cloud-mask head.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "LOSS_WEIGHTS",
    "feature_matching",
    "lsgan_discriminator",
    "lsgan_generator",
    "masked_l1",
    "ssim_loss",
    "temporal_consistency",
]

#: Default weights of the combined loss; ``xcloudfree.train(**loss_weights)`` overrides.
LOSS_WEIGHTS: dict[str, float] = {
    "reconstruction": 1.0,
    "adversarial": 0.002,
    "temporal": 0.05,
    "cycle": 0.2,
    "identity": 0.05,
    "perceptual": 0.05,
    "mask": 0.05,
}

_EPS = 1e-6


def masked_l1(pred: torch.Tensor, truth: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over pixels where ``weight`` (N, 1, H, W) is set."""
    diff = (pred - truth).abs() * weight
    return diff.sum() / (weight.sum() * pred.shape[1] + _EPS)


def ssim_loss(
    pred: torch.Tensor, truth: torch.Tensor, weight: torch.Tensor, win: int = 7
) -> torch.Tensor:
    """``1 - SSIM`` on the core bands (uniform window, data range 1), over ``weight``."""
    c1, c2 = 0.01**2, 0.03**2
    x, y = pred[:, :4], truth[:, :4]

    def avg(t):
        return F.avg_pool2d(t, win, 1, win // 2, count_include_pad=False)

    mx, my = avg(x), avg(y)
    vx, vy, cxy = avg(x * x) - mx**2, avg(y * y) - my**2, avg(x * y) - mx * my
    ssim = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return ((1 - ssim) * weight).sum() / (weight.sum() * 4 + _EPS)


def _high_pass(x: torch.Tensor) -> torch.Tensor:
    return x - F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


def temporal_consistency(
    estimate: torch.Tensor, dates: torch.Tensor, cloud: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """High-pass L1 between the estimate and each clear neighbour date, over ``weight``.

    ``estimate`` (N, C, H, W); ``dates`` (N, K, C, H, W) with the target at 0;
    ``cloud`` (N, K, 1, H, W). Zero when there is no neighbour.
    """
    if dates.shape[1] < 2:
        return estimate.new_zeros(())
    hp_est = _high_pass(estimate[:, :4])
    total = estimate.new_zeros(())
    clear = (1 - cloud[:, 1:]).clamp(0, 1)
    norm = clear.sum(1) + _EPS
    for j in range(1, dates.shape[1]):
        w = weight * clear[:, j - 1] / norm
        total = total + masked_l1(hp_est, _high_pass(dates[:, j, :4]), w) * w.sum() / (
            weight.sum() + _EPS
        )
    return total


def lsgan_discriminator(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Least-squares discriminator loss: real -> 1, fake -> 0."""
    return 0.5 * (((real - 1) ** 2).mean() + (fake**2).mean())


def lsgan_generator(fake: torch.Tensor) -> torch.Tensor:
    """Least-squares generator loss: make the discriminator say 1."""
    return ((fake - 1) ** 2).mean()


def feature_matching(fake: list[torch.Tensor], real: list[torch.Tensor]) -> torch.Tensor:
    """Mean L1 between discriminator feature maps of the output and of the truth."""
    return sum((f - r.detach()).abs().mean() for f, r in zip(fake, real)) / len(fake)
