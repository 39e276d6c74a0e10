"""From pairs of cubes to batches of tensors: masks, the hybrid's base, random crops.

Everything here is computed once per pair (scene-wide, like at inference) and
then sampled as random crops with flips and rotations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from ..cube import core_first
from ..fills.baselines import _days, _fill_block, _pair_stats, _valid, pair_maps
from ..fills.neighbours import nearest_dates
from ..inference.engine import map_neighbours
from ..masking import cloud_mask, dilate_mask

__all__ = ["MaskSampler", "Prepared", "Sampler", "prepare_pair"]

# A pasted cloud changes reflectance by more than this in some band.
_DIFF = 0.005
# A target needs at least this many scored pixels to be sampled.
_MIN_PIXELS = 64


@dataclass
class Prepared:
    """One pair, precomputed: every array core-bands-first, NaN replaced by 0."""

    data: np.ndarray  # (T, C, H, W) cloudy input
    truth: np.ndarray  # (T, C, H, W)
    cloud: np.ndarray  # (T, H, W) the fill mask as float: the model's per-date cloud input
    mask: np.ndarray  # (T, H, W) fill mask: spectral (dilated) | pasted (dilated)
    label: np.ndarray  # (T, H, W) cloud label for the mask head: spectral | pasted
    base: np.ndarray  # (T, C, H, W) the "local" fill: the hybrid's base at inference
    weight: np.ndarray  # (T, H, W) scored pixels: filled and clear in the truth
    neighbours: np.ndarray  # (T, k) date indices
    gain: np.ndarray  # (T, T, C) the regression's pair fits, date s into date t
    offset: np.ndarray  # (T, T, C)
    targets: np.ndarray  # dates with scored pixels


def prepare_pair(cloudy: xr.DataArray, clear: xr.DataArray, *, k: int, dilate: int = 2) -> Prepared:
    """Masks, base and loss weights of one ``(cloudy, clear)`` pair, as at inference."""
    cloudy, clear = core_first(cloudy), core_first(clear)
    spectral = cloud_mask(cloudy, "spectral", dilate=0)
    diff = (np.abs(cloudy - clear) > _DIFF).any("band")
    mask = dilate_mask(spectral | diff, dilate)
    # The base the networks get at inference (the engine's, without per-scene adapters),
    # and the pair maps, from one computation of the regression's pair statistics.
    values, fill_mask = cloudy.values, mask.values
    stats = _pair_stats(values, _valid(values, fill_mask))
    days = _days(cloudy["time"].values)
    base = _fill_block(values, fill_mask, days, "local", stats)[0]
    gain, offset = pair_maps(stats)
    truth_cloud = cloud_mask(clear, "spectral", dilate=0).values
    finite = np.isfinite(clear.values).all(1) & np.isfinite(cloudy.values).all(1)
    weight = mask.values & ~truth_cloud & finite
    targets = np.flatnonzero(weight.sum((1, 2)) >= _MIN_PIXELS)

    def clean(a):
        return np.nan_to_num(np.asarray(a, dtype=np.float32), nan=0.0)

    return Prepared(
        data=clean(cloudy.values),
        truth=clean(clear.values),
        cloud=mask.values.astype(np.float32),
        mask=mask.values.astype(bool),
        label=(spectral | diff).values.astype(bool),
        base=clean(base),
        weight=weight,
        neighbours=nearest_dates(days, k),
        gain=gain,
        offset=offset,
        targets=targets,
    )


def _augment(arrays: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    turns, flip = int(rng.integers(4)), bool(rng.integers(2))
    out = []
    for a in arrays:
        a = np.rot90(a, turns, axes=(-2, -1))
        out.append(np.ascontiguousarray(a[..., ::-1] if flip else a))
    return out


def _window(weight: np.ndarray, patch: int, rng: np.random.Generator) -> tuple[int, int]:
    """A crop corner; of a few random tries, the one with most scored pixels."""
    h, w = weight.shape
    best, best_score = (0, 0), -1
    for _ in range(6):
        y0, x0 = int(rng.integers(h - patch + 1)), int(rng.integers(w - patch + 1))
        score = int(weight[y0 : y0 + patch, x0 : x0 + patch].sum())
        if score > best_score:
            best, best_score = (y0, x0), score
    return best


class Sampler:
    """Random training crops from prepared pairs.

    A batch draws from pairs with the same number of bands (chosen in proportion to
    their targets), a random target date, and a crop rich in scored pixels.
    """

    def __init__(self, pairs: list[Prepared], patch: int, *, map_neighbours: bool = True) -> None:
        self.patch = patch
        self.map_neighbours = map_neighbours
        usable = [p for p in pairs if p.targets.size and min(p.data.shape[-2:]) >= patch]
        if not usable:
            raise ValueError(
                f"no pair has a cloud-covered clear date at least {patch} px wide to learn from: "
                "give pairs with clouds laid over clear dates (see make_training_pairs) or a "
                "smaller patch_size"
            )
        self.groups: dict[int, list[Prepared]] = {}
        for p in usable:
            self.groups.setdefault(p.data.shape[1], []).append(p)
        sizes = np.array([sum(p.targets.size for p in g) for g in self.groups.values()], float)
        self.group_p = sizes / sizes.sum()

    def sample(self, batch: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """A batch: dates, cloud, base, mask, truth, weight, label (tensors)."""
        group = list(self.groups.values())[int(rng.choice(len(self.groups), p=self.group_p))]
        counts = np.array([p.targets.size for p in group], float)
        items: dict[str, list[np.ndarray]] = {}
        for _ in range(batch):
            p = group[int(rng.choice(len(group), p=counts / counts.sum()))]
            t = int(rng.choice(p.targets))
            y0, x0 = _window(p.weight[t], self.patch, rng)
            sl = (slice(y0, y0 + self.patch), slice(x0, x0 + self.patch))
            idx = p.neighbours[t]
            dates = p.data[idx, :, sl[0], sl[1]]
            if self.map_neighbours:  # as the engine gives them (HybridConfig.map_neighbours)
                dates = map_neighbours(dates[None], idx[None], p.gain, p.offset)[0]
            arrays = _augment(
                [
                    dates,
                    p.cloud[idx, None, sl[0], sl[1]],
                    p.base[t][:, sl[0], sl[1]],
                    p.mask[t][None, sl[0], sl[1]].astype(np.float32),
                    p.truth[t][:, sl[0], sl[1]],
                    p.weight[t][None, sl[0], sl[1]].astype(np.float32),
                    p.label[t][None, sl[0], sl[1]].astype(np.float32),
                ],
                rng,
            )
            for name, a in zip(
                ("dates", "cloud", "base", "mask", "truth", "weight", "label"), arrays
            ):
                items.setdefault(name, []).append(a)
        return {name: torch.from_numpy(np.stack(v)) for name, v in items.items()}


class MaskSampler:
    """Random crops of labelled images for the cloud-mask head.

    Parameters
    ----------
    samples
        ``(image, label)`` pairs: image ``(C >= 4, H, W)`` core bands first, label
        ``(H, W)`` 0/1 (NaN pixels are skipped).
    """

    def __init__(self, samples: list[tuple[np.ndarray, np.ndarray]], patch: int) -> None:
        self.samples = [(i, lab) for i, lab in samples if min(i.shape[-2:]) >= patch]
        if not self.samples:
            raise ValueError(f"no mask sample is at least {patch} px wide")
        self.patch = patch

    def sample(self, batch: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        images, labels, valid = [], [], []
        for _ in range(batch):
            image, label = self.samples[int(rng.integers(len(self.samples)))]
            h, w = label.shape
            y0, x0 = int(rng.integers(h - self.patch + 1)), int(rng.integers(w - self.patch + 1))
            sl = (slice(y0, y0 + self.patch), slice(x0, x0 + self.patch))
            im = image[:4, sl[0], sl[1]].astype(np.float32)
            lab = label[sl].astype(np.float32)
            ok = (np.isfinite(im).all(0) & np.isfinite(lab)).astype(np.float32)
            im, lab, ok = _augment([np.nan_to_num(im), np.nan_to_num(lab)[None], ok[None]], rng)
            images.append(im)
            labels.append(lab)
            valid.append(ok)
        return {
            "image": torch.from_numpy(np.stack(images)),
            "label": torch.from_numpy(np.stack(labels)),
            "valid": torch.from_numpy(np.stack(valid)),
        }
