"""The CycleGAN stage: a refiner G (cloudy + estimate -> clear) and its inverse F (clear -> cloudy).

Both are two-scale encoder-decoders with spatial attention and a per-band residual
head. G corrects the STGAN estimate under the cloud; F lays a cloud over a clear
image under a given mask, which closes the cycle during training.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import CORE, RESIDUAL_STEP, BandHead, UNet2, normalise

_CLOUD_STEP = 0.25  # clouds change reflectance far more than a refinement does


class Refiner(nn.Module):
    """G: refine an estimate of the clear image given the cloudy one and the mask.

    Parameters
    ----------
    width
        Channels at full resolution.

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(1, 5, 16, 16)
    >>> Refiner(width=8)(x, x, torch.ones(1, 1, 16, 16)).shape
    torch.Size([1, 5, 16, 16])
    """

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.body = UNet2(2 * CORE + 1, width)
        self.head = BandHead(width, extra=2)

    def forward(
        self, cloudy: torch.Tensor, estimate: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """``cloudy``, ``estimate`` (N, C, H, W); ``mask`` (N, 1, H, W) -> refined (N, C, H, W)."""
        cloudy = mask * estimate + (1 - mask) * cloudy  # the cloud itself is never read
        x = torch.cat([normalise(cloudy[:, :CORE]), normalise(estimate[:, :CORE]), mask], 1)
        per_band = normalise(torch.stack([estimate, cloudy], 2))
        return estimate + RESIDUAL_STEP * self.head(self.body(x), per_band)


class Clouder(nn.Module):
    """F: the inverse generator, laying a cloud over a clear image where ``mask`` is 1.

    Examples
    --------
    >>> import torch
    >>> Clouder(width=8)(torch.rand(1, 4, 16, 16), torch.ones(1, 1, 16, 16)).shape
    torch.Size([1, 4, 16, 16])
    """

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.body = UNet2(CORE + 1, width)
        self.head = BandHead(width, extra=1)

    def forward(self, clear: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``clear`` (N, C, H, W), ``mask`` (N, 1, H, W) -> cloudy (N, C, H, W)."""
        x = torch.cat([normalise(clear[:, :CORE]), mask], 1)
        cloudy = clear + _CLOUD_STEP * self.head(self.body(x), normalise(clear[:, :, None]))
        return mask * cloudy + (1 - mask) * clear
