"""The three-phase training loop behind :func:`xcloudfree.train`."""

from __future__ import annotations

import copy
import csv
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr

from ..cube import as_cube, core_first
from ..models import HybridConfig, HybridModel, PatchDiscriminator
from .data import MaskSampler, Sampler, prepare_pair
from .losses import (
    LOSS_WEIGHTS,
    feature_matching,
    lsgan_discriminator,
    lsgan_generator,
    masked_l1,
    ssim_loss,
    temporal_consistency,
)
from .pairs import pairs_from, unpack

__all__ = ["PHASES", "train"]

#: The training phases, in order.
PHASES: tuple[str, ...] = ("stgan", "cyclegan", "joint")
_LR_SCALE = {"stgan": 1.0, "cyclegan": 1.0, "joint": 0.3}
_D_LR = 2e-4
_CHECKPOINT = "checkpoint.pt"


def _device(device: str | torch.device) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _mask_samples(mask_samples, prepared) -> list[tuple[np.ndarray, np.ndarray]]:
    if mask_samples is None:  # the pairs' own cloudy dates, labelled spectral | pasted
        return [(p.data[t], p.label[t]) for p in prepared for t in range(p.data.shape[0])]
    out = []
    items = [mask_samples] if isinstance(mask_samples, xr.Dataset) else mask_samples
    for i, item in enumerate(items):
        image, label = unpack(item, ("reflectance", "cloud_mask"), f"mask sample {i}")
        image = core_first(as_cube(image))
        label = label.transpose("time", "y", "x")
        if label.shape != (image.sizes["time"], image.sizes["y"], image.sizes["x"]):
            raise ValueError(f"mask sample {i}: the mask's shape does not match the cube's")
        lab = np.asarray(label.values, dtype=np.float32)
        out.extend((np.asarray(image.values[t], np.float32), lab[t]) for t in range(lab.shape[0]))
    return out


def _steps(epochs, steps_per_epoch: int, phases: Sequence[str]) -> dict[str, int]:
    if isinstance(epochs, dict):
        unknown = set(epochs) - set(phases)
        if unknown:
            raise ValueError(f"epochs given for phases {sorted(unknown)} that are not trained")
        return {p: int(epochs.get(p, 0)) * steps_per_epoch for p in phases}
    return {p: int(epochs) * steps_per_epoch for p in phases}


class _Trainer:
    def __init__(self, model, sampler, mask_sampler, weights, batch_size, lr, device):
        self.m = model
        self.sampler, self.mask_sampler = sampler, mask_sampler
        self.w, self.batch_size, self.lr, self.device = weights, batch_size, lr, device
        self.d = torch.nn.ModuleDict(
            {
                "stgan": PatchDiscriminator(),
                "to_clear": PatchDiscriminator(),
                "to_cloudy": PatchDiscriminator(),
            }
        ).to(device)

    def generator_params(self, phase):
        parts = {
            "stgan": ("stgan", "mask_head"),
            "cyclegan": ("refiner", "clouder"),
            "joint": ("stgan", "refiner", "clouder", "mask_head"),
        }[phase]
        return [p for name in parts for p in getattr(self.m, name).parameters()]

    def discriminators(self, phase):
        return [self.d["stgan"]] if phase == "stgan" else [self.d["to_clear"], self.d["to_cloudy"]]

    def optimizers(self, phase):
        g = torch.optim.Adam(self.generator_params(phase), lr=self.lr, betas=(0.5, 0.999))
        d_params = [p for d in self.discriminators(phase) for p in d.parameters()]
        return g, torch.optim.Adam(d_params, lr=_D_LR, betas=(0.5, 0.999))

    def step(self, phase, rng, opt_g, opt_d, lr_factor):
        for group in opt_g.param_groups:
            group["lr"] = self.lr * _LR_SCALE[phase] * lr_factor
        for group in opt_d.param_groups:
            group["lr"] = _D_LR * lr_factor
        b = {k: v.to(self.device) for k, v in self.sampler.sample(self.batch_size, rng).items()}
        mb = None
        if phase in ("stgan", "joint"):
            mb = {
                k: v.to(self.device)
                for k, v in self.mask_sampler.sample(self.batch_size, rng).items()
            }
        for d in self.d.values():
            d.requires_grad_(False)
        terms, fakes = self.generator_terms(phase, b, mb)
        loss = sum(self.w[name] * value for name, value in terms.items())
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        for d in self.discriminators(phase):
            d.requires_grad_(True)
        d_loss = sum(
            lsgan_discriminator(
                self.d[name](real, b["mask"])[0], self.d[name](fake.detach(), b["mask"])[0]
            )
            for name, (real, fake) in fakes.items()
        )
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        record = {name: float(v.detach()) for name, v in terms.items()}
        record["total"] = float(loss.detach())
        record["discriminator"] = float(d_loss.detach())
        return record

    def generator_terms(self, phase, b, mb):
        m, w = self.m, b["weight"]
        dates, cloud, base, mask, truth = b["dates"], b["cloud"], b["base"], b["mask"], b["truth"]
        target = dates[:, 0]
        with torch.set_grad_enabled(phase != "cyclegan"):
            estimate = m.stgan(dates, cloud, base)[0]
        estimate = mask * estimate + (1 - mask) * target
        terms: dict[str, torch.Tensor] = {}
        fakes: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        if phase == "stgan":
            out, disc = estimate, "stgan"
        else:
            out = mask * m.refiner(target, estimate, mask) + (1 - mask) * target
            disc = "to_clear"
            fake_cloudy = m.clouder(truth, mask)
            back = m.refiner(fake_cloudy, estimate, mask)
            terms["cycle"] = masked_l1(m.clouder(out, mask), target, mask) + masked_l1(
                back, truth, w
            )
            terms["identity"] = masked_l1(m.refiner(truth, truth, mask), truth, mask)
            fakes["to_cloudy"] = (target, fake_cloudy)
        terms["reconstruction"] = masked_l1(out, truth, w)
        terms["temporal"] = temporal_consistency(out, dates, cloud, w)
        logits, feats = self.d[disc](out, mask)
        adversarial = lsgan_generator(logits)
        if "to_cloudy" in fakes:
            adversarial = adversarial + lsgan_generator(
                self.d["to_cloudy"](fakes["to_cloudy"][1], mask)[0]
            )
        terms["adversarial"] = adversarial
        real_feats = self.d[disc](truth, mask)[1]
        terms["perceptual"] = feature_matching(feats, real_feats) + ssim_loss(out, truth, w)
        fakes[disc] = (truth, out)
        if mb is not None:
            bce = F.binary_cross_entropy_with_logits(
                m.mask_head(mb["image"]), mb["label"], reduction="none"
            )
            terms["mask"] = (bce * mb["valid"]).sum() / (mb["valid"].sum() + 1e-6)
        return terms, fakes


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: a crash never leaves a half-written checkpoint


def _write_log(path: Path, history: list[dict[str, Any]]) -> None:
    keys = sorted({k for h in history for k in h} - {"phase", "step"})
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["phase", "step", *keys])
        writer.writeheader()
        writer.writerows(history)


def train(
    cube_pairs: Any,
    *,
    phases: Sequence[str] = PHASES,
    epochs: int | dict[str, int] = 1,
    steps_per_epoch: int | None = None,
    batch_size: int = 8,
    patch_size: int = 96,
    lr: float = 1e-3,
    device: str | torch.device = "auto",
    seed: int = 0,
    model: HybridModel | None = None,
    config: HybridConfig | None = None,
    mask_samples: Any = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 100,
    resume: bool = False,
    progress: bool = True,
    dilate: int = 2,
    **loss_weights: float,
) -> HybridModel:
    """Train (or fine-tune) the hybrid STGAN + CycleGAN model on pairs of cubes.

    Three phases, each optional:

    1. ``"stgan"``: the STGAN generator (and the cloud-mask head) with
       reconstruction + adversarial + temporal-consistency (+ perceptual) losses.
    2. ``"cyclegan"``: with the STGAN frozen, the refiner G, its inverse F and two
       discriminators with adversarial + cycle + identity + perceptual (+
       reconstruction) losses, on the STGAN's outputs.
    3. ``"joint"``: everything end to end with the combined weighted loss and a
       lower learning rate.

    Loss terms are described in :mod:`xcloudfree.training.losses`.

    Parameters
    ----------
    cube_pairs
        ``(cloudy, clear)`` cube pairs, or Datasets with ``cloudy`` and ``clear``
        (see :func:`make_training_pairs`).
    phases
        Phases to run, a subset of ``("stgan", "cyclegan", "joint")`` in that order.
    epochs
        Epochs per phase (an int for all, or a dict by phase).
    steps_per_epoch
        Batches per epoch; default: enough crops to cover the scored pixels once.
    batch_size, patch_size
        Crops per batch and their size in pixels.
    lr
        Generator learning rate (Adam; cosine decay to 10 % within each phase).
    device
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` ...
    seed
        Seed of weights, sampling and augmentation: equal seeds, equal models.
    model
        A model to fine-tune (e.g. :func:`xcloudfree.models.pretrained`); it is copied
        and left unchanged. Default: a new one.
    config
        Sizes of a new model.
    mask_samples
        Labelled images for the cloud-mask head: ``(cube, mask)`` tuples or
        Datasets with ``reflectance`` and ``cloud_mask``. Default: the pairs'
        cloudy dates labelled by the spectral test and the pasted clouds.
    checkpoint_dir
        Where to write ``checkpoint.pt`` and ``losses.csv``.
    checkpoint_every
        Steps between checkpoints.
    resume
        Continue from the checkpoint in ``checkpoint_dir``; the result equals an
        uninterrupted run.
    progress
        Show a progress bar with the current losses.
    dilate
        Pixels by which the cloud masks are grown, as in :func:`xcloudfree.remove`.
    **loss_weights
        Overrides of :data:`~xcloudfree.training.losses.LOSS_WEIGHTS`
        (``reconstruction``, ``adversarial``, ``temporal``, ``cycle``, ``identity``,
        ``perceptual``, ``mask``).

    Returns
    -------
    HybridModel
        In eval mode; ``model.history`` holds one dict of losses per step.

    Examples
    --------
    >>> import xcloudfree
    >>> cube = xcloudfree.datasets.sample_timeseries(bands=["B02", "B03", "B04", "B08"])
    >>> pairs = xcloudfree.make_training_pairs(cube.isel(y=slice(0, 64), x=slice(0, 64)))
    >>> m = xcloudfree.train(pairs, epochs=1, steps_per_epoch=1, batch_size=2,
    ...                      patch_size=32, progress=False)
    >>> [h["phase"] for h in m.history]
    ['stgan', 'cyclegan', 'joint']
    """
    from .._progress import progress_bar as tqdm

    phases = tuple(phases)
    if (
        not phases
        or any(p not in PHASES for p in phases)
        or list(phases) != sorted(phases, key=PHASES.index)
    ):
        raise ValueError(f"phases must be a non-empty ordered subset of {PHASES}, got {phases}")
    unknown = set(loss_weights) - set(LOSS_WEIGHTS)
    if unknown:
        raise TypeError(
            f"unknown loss weights {sorted(unknown)}: choose from {sorted(LOSS_WEIGHTS)}"
        )
    weights = {**LOSS_WEIGHTS, **loss_weights}
    if batch_size < 1 or patch_size < 16:
        raise ValueError(
            f"batch_size must be >= 1 and patch_size >= 16, got {batch_size}, {patch_size}"
        )
    if model is not None and config is not None:
        raise ValueError("give model= (to fine-tune) or config= (for a new model), not both")
    dev = _device(device)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    # A given model is copied: fine-tuning never alters it (it may be the shared pretrained one).
    model = (copy.deepcopy(model) if model is not None else HybridModel(config)).to(dev).train()
    for p in model.parameters():
        p.requires_grad_(True)
    pairs = pairs_from(cube_pairs)
    prepared = [
        prepare_pair(c, y, k=model.config.k, dilate=dilate)
        for c, y in tqdm(pairs, desc="preparing pairs", disable=not progress or len(pairs) < 4)
    ]
    sampler = Sampler(prepared, patch_size, map_neighbours=model.config.map_neighbours)
    mask_sampler = MaskSampler(_mask_samples(mask_samples, prepared), patch_size)
    if steps_per_epoch is None:
        scored = sum(int(p.weight[p.targets].sum()) for p in prepared)
        steps_per_epoch = max(1, math.ceil(scored / (batch_size * patch_size**2)))
    steps = _steps(epochs, steps_per_epoch, phases)
    trainer = _Trainer(model, sampler, mask_sampler, weights, batch_size, lr, dev)

    ckpt = Path(checkpoint_dir) / _CHECKPOINT if checkpoint_dir is not None else None
    signature = {"phases": list(phases), "steps": steps, "seed": seed, "batch_size": batch_size,
                 "patch_size": patch_size, "pairs": len(pairs)}  # fmt: skip
    history: list[dict[str, Any]] = []
    start_phase, start_step, saved = 0, 0, None
    if resume:
        if ckpt is None:
            raise ValueError("resume=True needs checkpoint_dir=")
        if ckpt.exists():
            saved = torch.load(ckpt, map_location=dev, weights_only=True)
            if saved["signature"] != signature:
                raise ValueError(
                    f"the checkpoint in {checkpoint_dir} is from a different run "
                    f"({saved['signature']}), not {signature}: use another checkpoint_dir"
                )
            model.load_state_dict(saved["model"])
            trainer.d.load_state_dict(saved["discriminators"])
            rng.bit_generator.state = saved["numpy_rng"]
            torch.set_rng_state(saved["torch_rng"])
            history = list(saved["history"])
            start_phase, start_step = saved["phase"], saved["step"]
    if ckpt is not None:
        ckpt.parent.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    bar = tqdm(total=sum(steps.values()), disable=not progress, desc="training", unit="step")
    bar.update(sum(steps[p] for p in phases[:start_phase]) + start_step)
    for index, phase in enumerate(phases):
        if index < start_phase:
            continue
        opt_g, opt_d = trainer.optimizers(phase)
        first = start_step if index == start_phase else 0
        if saved is not None and index == start_phase and "opt_g" in saved:
            opt_g.load_state_dict(saved["opt_g"])
            opt_d.load_state_dict(saved["opt_d"])
        n = steps[phase]
        for step in range(first, n):
            factor = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / max(n, 1)))
            record = trainer.step(phase, rng, opt_g, opt_d, factor)
            history.append({"phase": phase, "step": step, **record})
            bar.update(1)
            bar.set_postfix(phase=phase, loss=f"{record['total']:.4f}", refresh=False)
            done = step + 1
            if ckpt is not None and (done % checkpoint_every == 0 or done == n):
                at_end = done == n
                _save_checkpoint(
                    ckpt,
                    {
                        "signature": signature,
                        "model": model.state_dict(),
                        "discriminators": trainer.d.state_dict(),
                        "numpy_rng": rng.bit_generator.state,
                        "torch_rng": torch.get_rng_state(),
                        "history": history,
                        "phase": index + 1 if at_end else index,
                        "step": 0 if at_end else done,
                        **(
                            {}
                            if at_end
                            else {"opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict()}
                        ),
                    },
                )
                _write_log(ckpt.parent / "losses.csv", history)
    bar.close()
    model.eval()
    model.history = history
    model.config.metadata = {
        **model.config.metadata,
        "phases": list(phases),
        "steps": steps,
        "seed": seed,
        "batch_size": batch_size,
        "patch_size": patch_size,
        "pairs": len(pairs),
        "train_seconds": round(time.perf_counter() - started, 1),
    }
    return model
