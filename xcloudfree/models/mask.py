"""The cloud-mask head: cloud probability of one date from its core bands."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import CORE, UNet2, normalise


class CloudMaskNet(nn.Module):
    """Per-pixel cloud logits from blue, green, red and NIR, with spatial context.

    Parameters
    ----------
    width
        Channels at full resolution.

    Examples
    --------
    >>> import torch
    >>> CloudMaskNet(width=8)(torch.rand(2, 4, 16, 16)).shape
    torch.Size([2, 1, 16, 16])
    """

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.body = UNet2(CORE, width)
        self.out = nn.Conv2d(width, 1, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``image`` (N, C >= 4, H, W) reflectance -> logits (N, 1, H, W)."""
        x = normalise(image[:, :CORE].clamp(-0.5, 2.0))
        return self.out(self.body(x))
