"""The hybrid model: STGAN estimate, CycleGAN refinement and the cloud-mask head in one module."""

from __future__ import annotations

import dataclasses
import functools
import io
import os
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import torch
from torch import nn

from ..errors import ModelFileError, OptionError
from .cyclegan import Clouder, Refiner
from .files import read_weights
from .mask import CloudMaskNet
from .stgan import STGANGenerator

__all__ = ["STAGES", "HybridConfig", "HybridModel", "load_model", "pretrained"]

#: The inference stages; ablations run a subset.
STAGES: tuple[str, ...] = ("stgan", "cyclegan")
_FORMAT = "xcloudfree-hybrid"
# 2: ``map_neighbours`` in the config (files of version 1 were trained without it).
_FORMAT_VERSION = 2
PRETRAINED = "hybrid_v2.pt"


@dataclass
class HybridConfig:
    """Sizes and defaults of a :class:`HybridModel`.

    Attributes
    ----------
    k
        Dates the STGAN stage sees: the target and its ``k - 1`` nearest neighbours.
    stgan_width, refiner_width, clouder_width, mask_width
        Channels at full resolution of each network.
    threshold
        Cloud probability above which the mask head calls a pixel cloudy.
    halo
        Pixels of context each side that make tiled inference of the generators
        equal whole-scene inference (at least their receptive radius, 45 px).
    mask_halo
        The same for the mask head (receptive radius 21 px).
    map_neighbours
        The STGAN sees every other date mapped into the target's radiometry by the
        regression's scene-wide pair fit (gain and offset per band), as it was trained.
        Raw, a neighbour a little hazier or brighter all over than the target passes
        its level straight into the fill (+0.03 reflectance under a laid cloud on
        held-out Hungary 2021-06-15). False only for models saved before it existed.

    Examples
    --------
    >>> HybridConfig().halo, HybridConfig(k=5).k
    (48, 5)
    """

    k: int = 3
    stgan_width: int = 12
    refiner_width: int = 12
    clouder_width: int = 12
    mask_width: int = 16
    threshold: float = 0.5
    halo: int = 48
    mask_halo: int = 24
    map_neighbours: bool = True
    metadata: dict[str, Any] = field(default_factory=dict)


class HybridModel(nn.Module):
    """STGAN + CycleGAN cloud removal with a cloud-mask head.

    * ``stgan`` (:class:`~xcloudfree.models.stgan.STGANGenerator`): K dates -> first estimate.
    * ``refiner`` (G) and ``clouder`` (F) (:mod:`xcloudfree.models.cyclegan`): the cycle pair;
      G refines the estimate at inference, F is used in training only.
    * ``mask_head`` (:class:`~xcloudfree.models.mask.CloudMaskNet`): cloud probability per date.

    Pure torch: inputs are tensors of 0-1 reflectance whose first four bands are
    blue, green, red and NIR. :func:`xcloudfree.remove` does the xarray side.

    Examples
    --------
    >>> import torch
    >>> m = HybridModel()
    >>> dates, cloud = torch.rand(1, 3, 5, 33, 31) * 0.3, torch.zeros(1, 3, 1, 33, 31)
    >>> mask = torch.ones(1, 1, 33, 31)
    >>> m(dates, cloud, dates[:, 1], mask).shape
    torch.Size([1, 5, 33, 31])
    """

    def __init__(self, config: HybridConfig | None = None) -> None:
        super().__init__()
        self.config = config or HybridConfig()
        c = self.config
        self.stgan = STGANGenerator(c.stgan_width)
        self.refiner = Refiner(c.refiner_width)
        self.clouder = Clouder(c.clouder_width)
        self.mask_head = CloudMaskNet(c.mask_width)

    def forward(
        self,
        dates: torch.Tensor,
        cloud: torch.Tensor,
        base: torch.Tensor,
        mask: torch.Tensor,
        stages: tuple[str, ...] = STAGES,
    ) -> torch.Tensor:
        """Cloud-free target date; pixels outside ``mask`` are the input, unchanged.

        Parameters
        ----------
        dates
            ``(N, K, C, H, W)``, index 0 on K the target date.
        cloud
            ``(N, K, 1, H, W)`` cloud mask (0-1) of every date: masked pixels are not read.
        base
            ``(N, C, H, W)`` scene-wide estimate of the target (the regression fill).
        mask
            ``(N, 1, H, W)``, 1 where the target is to be filled.
        stages
            Which stages run: both (the hybrid), ``("stgan",)`` or ``("cyclegan",)``
            (the refiner applied straight to ``base``) for the ablations.
        """
        unknown = set(stages) - set(STAGES)
        if unknown or not stages:
            raise OptionError(f"stages must be a non-empty subset of {STAGES}, got {stages}")
        target = dates[:, 0]
        estimate = self.stgan(dates, cloud, base)[0] if "stgan" in stages else base
        if "cyclegan" in stages:
            estimate = self.refiner(target, estimate, mask)
        return mask * estimate + (1 - mask) * target

    def cloud_probability(self, image: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` reflectance -> cloud probability ``(N, 1, H, W)``."""
        return torch.sigmoid(self.mask_head(image))

    def inference_state(self) -> dict[str, torch.Tensor]:
        """Weights needed for inference (the inverse generator F is training-only)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("clouder.")}

    def save(self, path: str | os.PathLike | io.BytesIO, *, half: bool = False) -> None:
        """Save config and weights (``half=True`` stores float16, half the size).

        Examples
        --------
        >>> import io
        >>> buf = io.BytesIO(); HybridModel().save(buf); _ = buf.seek(0)
        >>> type(load_model(buf)).__name__
        'HybridModel'
        """
        state = self.state_dict()
        if half:
            state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        torch.save(
            {
                "format": _FORMAT,
                "format_version": _FORMAT_VERSION,
                "config": dataclasses.asdict(self.config),
                "state_dict": state,
            },
            path,
        )

    def cost(self, size: int = 256) -> dict[str, float]:
        """Parameters and inference FLOPs per pixel of each part (measured by torch).

        Examples
        --------
        >>> c = HybridModel().cost(size=64)
        >>> c["parameters_inference"] > 0 and c["flops_per_pixel"] > 0
        True
        """
        from torch.utils.flop_counter import FlopCounterMode

        k = self.config.k
        dates = torch.rand(1, k, 4, size, size) * 0.3
        cloud = torch.zeros(1, k, 1, size, size)
        mask = torch.ones(1, 1, size, size)
        counts: dict[str, float] = {}
        with torch.no_grad():
            for name, call in {
                "stgan": lambda: self.stgan(dates, cloud, dates[:, 1]),
                "refiner": lambda: self.refiner(dates[:, 0], dates[:, 1], mask),
                "mask_head": lambda: self.mask_head(dates[:, 0]),
            }.items():
                with FlopCounterMode(display=False) as counter:
                    call()
                counts[f"flops_per_pixel_{name}"] = counter.get_total_flops() / size**2
        params = {n: sum(p.numel() for p in m.parameters()) for n, m in self.named_children()}
        counts.update({f"parameters_{n}": float(v) for n, v in params.items()})
        counts["parameters_inference"] = float(
            sum(v.numel() for v in self.inference_state().values())
        )
        counts["flops_per_pixel"] = sum(
            v for n, v in counts.items() if n.startswith("flops_per_pixel_")
        )
        return counts


def load_model(
    path: str | os.PathLike | io.BytesIO, *, device: str | torch.device = "cpu"
) -> HybridModel:
    """Load a model saved with :meth:`HybridModel.save` (or by :func:`xcloudfree.train`).

    Parameters
    ----------
    path
        File written by :meth:`HybridModel.save`.
    device
        Where to put the weights.

    Returns
    -------
    HybridModel
        In eval mode, float32.

    Raises
    ------
    xcloudfree.errors.ModelFileError
        If the file is unreadable, not an xcloudfree model, or from a newer version.

    Examples
    --------
    >>> import io
    >>> buf = io.BytesIO(); pretrained().save(buf, half=True); _ = buf.seek(0)
    >>> load_model(buf).config.k
    3
    """
    blob = read_weights(
        path, fmt=_FORMAT, version=_FORMAT_VERSION, writer="HybridModel.save or xcloudfree.train",
        fix=", or model=None for the shipped model",
    )  # fmt: skip
    config = dict(blob["config"])
    if blob["format_version"] < 2:  # trained on raw neighbours
        config.setdefault("map_neighbours", False)
    model = HybridModel(HybridConfig(**config))
    state = {k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not m.startswith("clouder.") for m in missing):
        raise ModelFileError(
            f"{path!r} does not match this model: missing {missing}, unexpected {unexpected}"
        )
    return model.to(device).eval()


@functools.lru_cache(maxsize=4)
def pretrained(device: str = "cpu") -> HybridModel:
    """The model shipped in the package (loaded once per process and device).

    Raises
    ------
    xcloudfree.removal.ModelUnavailableError
        If the weights file is missing from the installation.
    """
    from ..errors import ModelUnavailableError

    ref = resources.files("xcloudfree") / "weights" / PRETRAINED
    if not ref.is_file():
        raise ModelUnavailableError(
            f"the pretrained weights ({PRETRAINED}) are missing from this installation of "
            "xcloudfree: reinstall the package, pass model=xcloudfree.load_model(path), or use "
            "method='regression'"
        )
    with resources.as_file(ref) as path:
        return for_inference(load_model(path, device=device))


def for_inference(model: HybridModel) -> HybridModel:
    """The model as the engine holds it: frozen, in eval mode, channels_last weights.

    channels_last makes the fill about a third faster on a CPU, results within 1e-7
    (measured on the sample; ``benchmarks/profile_stages.py``).
    """
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval().to(memory_format=torch.channels_last)
