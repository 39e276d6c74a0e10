"""The spatiotemporal generator (STGAN stage): K dates in, a first cloud-free estimate out."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import (
    CORE,
    RESIDUAL_STEP,
    BandHead,
    SpatialAttention,
    act,
    conv,
    normalise,
    upsample_to,
)

# A cloudy date's attention score is lowered by this much per unit of cloud mask:
# cloudy dates are ignored unless nothing better exists.
_CLOUD_PENALTY = 8.0


def _temporal_softmax(scores: torch.Tensor, cloud: torch.Tensor) -> torch.Tensor:
    return torch.softmax(scores - _CLOUD_PENALTY * cloud, dim=1)


def _weighted_sum(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum_k values[:, k] * weights[:, k]`` of ``(N, K, F, H, W)`` and ``(N, K, 1, H, W)``.

    Date by date: a reduction over K of the whole product was a tenth of a forward,
    for what is K multiply-adds per value.
    """
    out = values[:, 0] * weights[:, 0]
    for i in range(1, values.shape[1]):
        out = out.addcmul_(values[:, i], weights[:, i])
    return out


class STGANGenerator(nn.Module):
    """Fuse K dates of one place into a cloud-free estimate of the first (target) date.

    Every date is encoded by the same weights from its core bands, its cloud
    mask, and its difference to ``base`` (a scene-wide radiometric estimate
    of the target, e.g. the regression fill). Attention over dates, at full and at
    half resolution, fuses the encodings; cloudy dates get low weight. A decoder
    with spatial attention and a per-band head predicts a residual over ``base``
    for every band. Works for any ``K >= 1`` and any size.

    Parameters
    ----------
    width
        Channels at full resolution (twice that at half resolution).

    Examples
    --------
    >>> import torch
    >>> g = STGANGenerator(width=8)
    >>> dates, cloud = torch.rand(2, 3, 4, 20, 20), torch.zeros(2, 3, 1, 20, 20)
    >>> est, att = g(dates, cloud, torch.rand(2, 4, 20, 20))
    >>> est.shape, att.shape
    (torch.Size([2, 4, 20, 20]), torch.Size([2, 3, 1, 20, 20]))
    """

    def __init__(self, width: int = 24) -> None:
        super().__init__()
        w = width
        cin = 3 * CORE + 2  # date, base, date - base, cloud, is-target
        self.enc1 = nn.Sequential(conv(cin, w), act(), conv(w, w), act())
        self.enc2 = nn.Sequential(conv(w, 2 * w, stride=2), act(), conv(2 * w, 2 * w), act())
        self.score1 = nn.Conv2d(w, 1, 1)
        self.score2 = nn.Conv2d(2 * w, 1, 1)
        self.dec2 = nn.Sequential(
            conv(2 * w, 2 * w, dilation=2), act(), SpatialAttention(), conv(2 * w, 2 * w), act()
        )
        self.up = nn.Sequential(conv(2 * w, w), act())
        self.dec1 = nn.Sequential(conv(2 * w, w), act(), SpatialAttention(), conv(w, w), act())
        self.head = BandHead(w, extra=3)

    def forward(
        self, dates: torch.Tensor, cloud: torch.Tensor, base: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Estimate the target date.

        Parameters
        ----------
        dates
            ``(N, K, C, H, W)`` reflectance; index 0 on K is the target date, the
            others its neighbours. The first four bands are blue, green, red, NIR.
        cloud
            ``(N, K, 1, H, W)`` cloud mask (0-1) of each date; where it is 1 the date's
            values are not used.
        base
            ``(N, C, H, W)`` scene-wide estimate of the target (e.g. regression fill).

        Returns
        -------
        estimate, attention
            ``(N, C, H, W)`` estimate and the full-resolution attention ``(N, K, 1, H, W)``.
        """
        n, k, _c, h, w = dates.shape
        # Cloudy pixels are never read: they are replaced by the base, and the cloud
        # channel says so. A mask drawn tight (or loose) around a cloud then cannot
        # leak cloud into the estimate.
        dates = cloud * base[:, None] + (1 - cloud) * dates
        core = normalise(dates[:, :, :CORE])
        bcore = normalise(base[:, None, :CORE]).expand(n, k, CORE, h, w)
        is_target = torch.zeros_like(cloud)
        is_target[:, 0] = 1.0
        x = torch.cat([core, bcore, core - bcore, cloud, is_target], 2).flatten(0, 1)
        f1 = self.enc1(x)
        f2 = self.enc2(f1)
        cloud2 = F.adaptive_avg_pool2d(cloud.flatten(0, 1), f2.shape[-2:]).unflatten(0, (n, k))
        a1 = _temporal_softmax(self.score1(f1).unflatten(0, (n, k)), cloud)
        a2 = _temporal_softmax(self.score2(f2).unflatten(0, (n, k)), cloud2)
        fused1 = _weighted_sum(f1.unflatten(0, (n, k)), a1)
        fused2 = _weighted_sum(f2.unflatten(0, (n, k)), a2)
        deep = self.up(upsample_to(self.dec2(fused2), fused1))
        feats = self.dec1(torch.cat([deep, fused1], 1))
        fused_values = _weighted_sum(dates, a1)
        per_band = torch.stack([base, fused_values, dates[:, 0]], 2)
        residual = self.head(feats, normalise(per_band))
        return base + RESIDUAL_STEP * residual, a1
