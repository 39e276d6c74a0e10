"""Building blocks shared by the generators, the mask head and the discriminators.

No block normalises over the spatial dimensions (no BatchNorm/GroupNorm/global
pooling): the output at a pixel depends only on its neighbourhood, so tiles and
dask chunks processed apart give the same answer as the whole scene.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Number of core bands (blue, green, red, NIR) every model input starts with.
CORE = 4
# Typical surface reflectance: inputs are centred and scaled around it.
_CENTRE = 0.12
_SPREAD = 0.1
#: Generators predict residuals in units of this reflectance step (their heads start at 0).
RESIDUAL_STEP = 0.05


def normalise(x: torch.Tensor) -> torch.Tensor:
    """Map 0-1 reflectance to a roughly unit-scaled network input."""
    return (x - _CENTRE) / _SPREAD


def conv(cin: int, cout: int, *, stride: int = 1, dilation: int = 1, k: int = 3) -> nn.Conv2d:
    """A same-padded convolution."""
    return nn.Conv2d(cin, cout, k, stride=stride, padding=dilation * (k // 2), dilation=dilation)


def act() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.2, inplace=True)


class SpatialAttention(nn.Module):
    """CBAM-style spatial attention: reweight pixels by a map from channel mean and max."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = conv(2, 1, k=7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.conv(pooled))


def upsample_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Bilinear upsampling to the spatial size of ``like`` (works for odd sizes)."""
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class BandHead(nn.Module):
    """Per-band residual from shared features: one set of weights for every band.

    The head sees the shared features plus a few values of the band itself (e.g.
    the base estimate and the observed value) and predicts a residual for that
    band. Because the weights are shared across bands, one model serves the four
    core bands and any additional bands a cube carries.

    Parameters
    ----------
    features
        Channels of the shared feature map.
    extra
        Values per band fed next to the features.
    hidden
        Width of the per-band layers.
    """

    def __init__(self, features: int, extra: int, hidden: int = 16) -> None:
        super().__init__()
        self.proj = nn.Conv2d(features, hidden, 1)
        self.mlp = nn.Sequential(
            nn.Conv2d(hidden + extra, hidden, 1), act(), nn.Conv2d(hidden, 1, 1)
        )
        # A zero last layer makes the untrained head an identity on its base.
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, features: torch.Tensor, per_band: torch.Tensor) -> torch.Tensor:
        """``features`` (N, F, H, W), ``per_band`` (N, C, E, H, W) -> residual (N, C, H, W)."""
        n, c, _e, h, w = per_band.shape
        if not torch.is_grad_enabled():
            return self._per_band(features, per_band)
        shared = self.proj(features)
        x = torch.cat([shared.unsqueeze(1).expand(n, c, -1, h, w), per_band], 2)
        return self.mlp(x.reshape(n * c, -1, h, w)).reshape(n, c, h, w)

    def _per_band(self, features: torch.Tensor, per_band: torch.Tensor) -> torch.Tensor:
        """Inference, one band at a time (a tenth of the activations of all at once).

        The first layer is linear in the concatenation ``[proj(features), per_band]``,
        so its part on the shared features, composed with ``proj``, is computed once
        for all bands, and no band copies the shared features: the same function as
        training's, to float rounding, in about half the time of the heads.
        """
        first, hidden = self.mlp[0], self.proj.out_channels
        w_shared = first.weight[:, :hidden, 0, 0]
        weight = (w_shared @ self.proj.weight[:, :, 0, 0])[:, :, None, None]
        bias = w_shared @ self.proj.bias + first.bias
        shared = F.conv2d(features, weight, bias)
        w_band = first.weight[:, hidden:]
        out = torch.empty(
            (per_band.shape[0], per_band.shape[1], *per_band.shape[-2:]),
            dtype=shared.dtype, device=shared.device,
        )  # fmt: skip
        for b in range(per_band.shape[1]):
            x = F.conv2d(per_band[:, b], w_band).add_(shared)
            out[:, b : b + 1] = self.mlp[2](self.mlp[1](x))
        return out


class UNet2(nn.Module):
    """A two-scale encoder-decoder with spatial attention, returning features.

    Full resolution, then half resolution with dilated convolutions for context,
    upsampled and merged with a skip connection. About 13 px receptive radius.
    """

    def __init__(self, cin: int, width: int) -> None:
        super().__init__()
        w = width
        self.enc = nn.Sequential(conv(cin, w), act(), conv(w, w), act())
        self.down = nn.Sequential(
            conv(w, 2 * w, stride=2), act(), conv(2 * w, 2 * w, dilation=2), act(),
            SpatialAttention(),
        )  # fmt: skip
        self.up = nn.Sequential(conv(2 * w, w), act())
        self.dec = nn.Sequential(conv(2 * w, w), act(), SpatialAttention(), conv(w, w), act())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.enc(x)
        deep = self.down(skip)
        return self.dec(torch.cat([self.up(upsample_to(deep, skip)), skip], 1))


class PatchDiscriminator(nn.Module):
    """A PatchGAN discriminator (70-px-style patches, sized down) on the core bands.

    Returns the patch logits and the intermediate feature maps, the latter for the
    feature-matching (perceptual) loss.

    Examples
    --------
    >>> import torch
    >>> d = PatchDiscriminator(width=8)
    >>> logits, feats = d(torch.rand(1, 4, 32, 32), torch.ones(1, 1, 32, 32))
    >>> logits.shape, len(feats)
    (torch.Size([1, 1, 8, 8]), 3)
    """

    def __init__(self, cin: int = CORE + 1, width: int = 32) -> None:
        super().__init__()
        w = width
        self.layers = nn.ModuleList(
            [
                nn.Sequential(nn.Conv2d(cin, w, 4, 2, 1), act()),
                nn.Sequential(nn.Conv2d(w, 2 * w, 4, 2, 1), act()),
                nn.Sequential(nn.Conv2d(2 * w, 4 * w, 3, 1, 1), act()),
            ]
        )
        self.out = nn.Conv2d(4 * w, 1, 3, 1, 1)

    def forward(
        self, image: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``image`` (N, C, H, W) reflectance (core bands used), ``mask`` (N, 1, H, W)."""
        x = torch.cat([normalise(image[:, :CORE]), mask], 1)
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return self.out(x), feats
