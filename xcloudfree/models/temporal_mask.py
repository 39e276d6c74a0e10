"""The temporal cloud, haze and shadow mask network (pure torch).

The network classifies one date at a time, from that date's bands *and* a
reference of what the other dates of the series say about the same pixel (see
:mod:`xcloudfree.masking.temporal`, which builds the inputs). A single date works
too: its reference channels are zero and a flag says so.
"""

from __future__ import annotations

import io
import os
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import act, conv
from .files import read_weights

__all__ = ["MASK_BANDS", "MaskConfig", "TemporalMaskNet", "load_mask_model"]

#: Bands the mask reads, in input order; "NIR" is B08 or B8A, SWIR may be absent.
MASK_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "NIR", "B11", "B12")
#: Input channels: bands, reference, band - reference, has-SWIR and has-reference flags.
IN_CHANNELS = 3 * len(MASK_BANDS) + 2
_FORMAT = "xcloudfree-mask"
_FORMAT_VERSION = 1


@dataclass
class MaskConfig:
    """Hyperparameters and the operating point of a :class:`TemporalMaskNet`.

    Parameters
    ----------
    width
        Channels of the hidden layers.
    dilations
        Dilation of each 3x3 layer; the receptive radius is their sum.
    threshold
        Probability of "not clear ground" (thick + thin + shadow) above which a
        pixel is masked; chosen for the fill's error, not for F1.
    dilate
        Default growth of the mask in pixels, chosen the same way.
    name, version, training_data
        Metadata of the shipped weights.
    """

    width: int = 24
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    threshold: float = 0.5
    dilate: int = 2
    name: str = "untrained"
    version: str = "0"
    training_data: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def halo(self) -> int:
        """Context in pixels a tile needs around it: three receptive radii, as each of
        the three passes reads the previous one's classes of the neighbourhood."""
        return 3 * sum(self.dilations) + 1


class TemporalMaskNet(nn.Module):
    """Class logits (clear, thick, thin/haze, shadow, snow) of one date per pixel.

    Parameters
    ----------
    config
        Width, dilations and operating point.

    Examples
    --------
    >>> net = TemporalMaskNet(MaskConfig(width=8))
    >>> net(torch.rand(2, IN_CHANNELS, 20, 20)).shape
    torch.Size([2, 5, 20, 20])
    """

    def __init__(self, config: MaskConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or MaskConfig()
        layers: list[nn.Module] = []
        cin = IN_CHANNELS
        for d in c.dilations:
            layers += [conv(cin, c.width, dilation=d), act()]
            cin = c.width
        self.body = nn.Sequential(*layers)
        # A per-pixel path beside the context path: thin haze is a per-pixel signal.
        self.pixel = nn.Sequential(nn.Conv2d(IN_CHANNELS, c.width, 1), act())
        self.out = nn.Conv2d(2 * c.width, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (N, IN_CHANNELS, H, W) from :func:`~xcloudfree.masking.temporal.date_features`."""
        # The 1x1 output layer applied to each path and summed is the same layer on their
        # concatenation (to float rounding, 4e-7 in probability) without the copy: it
        # halves the network's time on a CPU (18 -> 9.5 ms per 256^2 date).
        w = self.config.width
        weight, bias = self.out.weight, self.out.bias
        return F.conv2d(self.body(x), weight[:, :w], bias) + F.conv2d(self.pixel(x), weight[:, w:])

    def save(self, path: str | os.PathLike | io.BytesIO) -> None:
        """Write weights and config (with its metadata) to ``path``."""
        state = {k: v.half() for k, v in self.state_dict().items()}
        torch.save(
            {"format": _FORMAT, "format_version": _FORMAT_VERSION,
             "config": asdict(self.config), "state_dict": state},
            path,
        )  # fmt: skip


def load_mask_model(
    path: str | os.PathLike | io.BytesIO, *, device: str | torch.device = "cpu"
) -> TemporalMaskNet:
    """Load a mask network written by :meth:`TemporalMaskNet.save`.

    Raises
    ------
    xcloudfree.errors.ModelFileError
        If the file is not a readable xcloudfree mask model.

    Examples
    --------
    >>> buf = io.BytesIO(); TemporalMaskNet(MaskConfig(width=4)).save(buf); _ = buf.seek(0)
    >>> load_mask_model(buf).config.width
    4
    """
    blob = read_weights(
        path, fmt=_FORMAT, version=_FORMAT_VERSION, writer="TemporalMaskNet.save",
        fix=", or method='spectral'",
    )  # fmt: skip
    cfg = dict(blob["config"])
    cfg["dilations"] = tuple(cfg["dilations"])
    net = TemporalMaskNet(MaskConfig(**cfg))
    net.load_state_dict({k: v.float() for k, v in blob["state_dict"].items()})
    for p in net.parameters():
        p.requires_grad_(False)
    return net.to(device).eval()
