"""The series' evidence for the mask: per-date inputs and a reference from the other dates.

A date is cloudy or hazy where it is brighter in the visible bands than the other
dates say that pixel usually is, and shadowed where it is darker in every band;
bright soil, roofs and sand are bright on every date (the idea of MAJA and Tmask).
For each date the *reference* is the per-band median of the ``k`` nearest other
dates that a previous pass called clear. Three passes at inference:

0. each date alone (no reference) -> network -> a first set of clear dates;
1. reference from those -> network;
2. reference from the dates pass 1 calls clear -> network: the output.

Training starts its references from a rank test instead (:func:`provisional_clear`:
blue not far above the pixel's own 40th percentile, red + NIR not much below its
median), then from the network's own pass.

Pure numpy plus the torch network; no xarray. A single date (or a pixel with no
clear neighbour) gets zero reference channels and a flag, and the network falls
back on the date's own spectrum.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from .._indexing import take_per_pixel
from ..models.temporal_mask import MASK_BANDS
from .classes import CLEAR, SNOW

__all__ = [
    "date_features",
    "mask_inputs",
    "provisional_clear",
    "reference",
    "series_probabilities",
]

#: Nearest clear dates the reference is the median of, and how many dates are searched.
K_NEAREST = 4
WINDOW = 12
# Provisional clear: blue at most this far above the pixel's 40th percentile ...
_BLUE_MARGIN = 0.025
# ... and red + NIR at least this fraction of the pixel's median (not in shadow).
_DARK_FRACTION = 0.6
# Reflectance is centred and scaled around typical values before the network.
_CENTRE, _SPREAD, _DIFF_SPREAD = 0.12, 0.12, 0.06


def mask_inputs(values: np.ndarray, bands: Sequence[str]) -> tuple[np.ndarray, np.ndarray, bool]:
    """Pick the mask bands from a ``(T, B, H, W)`` block.

    Returns
    -------
    x : (T, 6, H, W) float32
        B02, B03, B04, NIR (B08 or B8A), B11, B12; absent SWIR and NaN are 0.
    valid : (T, H, W) bool
        The four core bands are finite.
    has_swir : bool
        B11 and B12 are in the cube.
    """
    bands = [str(b) for b in bands]
    nir = "B08" if "B08" in bands else "B8A"
    names = [nir if b == "NIR" else b for b in MASK_BANDS]
    has_swir = "B11" in bands and "B12" in bands
    t, _, h, w = values.shape
    x = np.zeros((t, len(names), h, w), dtype=np.float32)
    for i, name in enumerate(names):
        if name in bands:
            x[:, i] = values[:, bands.index(name)]
    valid = np.isfinite(x[:, :4]).all(1)
    if has_swir:
        valid &= np.isfinite(x[:, 4:]).all(1)
    np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return x, valid, has_swir


def _nanquantile(a: np.ndarray, q: float, valid: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels stay NaN
        return np.nanquantile(np.where(valid, a, np.nan), q, axis=0)


def provisional_clear(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Pass-0 guess of the clear dates of each pixel, from ranks in its own series.

    Examples
    --------
    >>> x = np.full((5, 6, 1, 1), 0.05, np.float32); x[2, :3] = 0.4  # one bright date
    >>> provisional_clear(x, np.ones((5, 1, 1), bool))[:, 0, 0].tolist()
    [True, True, False, True, True]
    """
    blue = x[:, 0]
    dark = x[:, 2] + x[:, 3]
    blue_q = _nanquantile(blue, 0.4, valid)
    dark_med = _nanquantile(dark, 0.5, valid)
    with np.errstate(invalid="ignore"):
        return valid & (blue <= blue_q + _BLUE_MARGIN) & (dark >= _DARK_FRACTION * dark_med)


def reference(
    x: np.ndarray, clear: np.ndarray, days: np.ndarray, t: int, *, k: int = K_NEAREST,
    window: int = WINDOW,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Median of the ``k`` nearest clear other dates of date ``t``, per pixel and band.

    Returns
    -------
    ref : (6, H, W) float32
        0 where no other date in the ``window`` nearest is clear.
    has_ref : (H, W) bool

    Examples
    --------
    >>> x = np.arange(4, dtype=np.float32)[:, None, None, None] * np.ones((4, 6, 1, 1))
    >>> clear = np.array([True, True, False, True])[:, None, None]
    >>> ref, ok = reference(x, clear, np.array([0, 5, 10, 15]), 2, k=2)
    >>> float(ref[0, 0, 0]), bool(ok[0, 0])  # median of dates 1 and 3
    (2.0, True)
    """
    dist = np.abs(days - days[t]).astype(float)
    dist[t] = np.inf
    others = np.argsort(dist, kind="stable")[: min(window, len(days) - 1)]
    if not len(others):  # a single date: nothing to compare with
        return np.zeros(x.shape[1:], dtype=np.float32), np.zeros(x.shape[2:], dtype=bool)
    ok = clear[others]
    # rank[i]: how many of the i + 1 nearest others are clear (the i-th is picked if
    # it is clear and its rank is <= k).
    rank = np.cumsum(ok, axis=0, dtype=np.int16)
    count = np.minimum(rank[-1], k)
    has_ref = count > 0
    # The j-th picked date of every pixel, gathered into k slots (+inf where a pixel has
    # fewer), sorted, and the middle one or two averaged: the same numbers as the median
    # of the picked values (np.nanmedian), and faster than sorting all ``window`` dates
    # with NaN for the unpicked (the reference was most of the mask's time).
    slots = np.empty((k, *x.shape[1:]), dtype=np.float32)
    for j in range(k):
        first = np.argmax(ok & (rank == j + 1), axis=0)
        slots[j] = take_per_pixel(x, others[first][None])[0]
        slots[j][:, count <= j] = np.inf
    # Sorted by adjacent compare-and-swap, k rounds: elementwise, far faster than
    # np.sort over many length-k columns.
    for r in range(k):
        for j in range(r % 2, k - 1, 2):
            low = np.minimum(slots[j], slots[j + 1])
            np.maximum(slots[j], slots[j + 1], out=slots[j + 1])
            slots[j] = low
    lo = np.maximum(count - 1, 0) // 2
    hi = np.maximum(count // 2, lo)
    pick = [take_per_pixel(slots, i[None])[0] for i in (lo, hi)]
    ref = np.where(has_ref, (pick[0] + pick[1]) / np.float32(2), 0).astype(np.float32)
    return ref, has_ref


def date_features(
    x_t: np.ndarray, ref: np.ndarray, has_ref: np.ndarray, has_swir: bool
) -> np.ndarray:
    """Network input ``(IN_CHANNELS, H, W)`` of one date from its bands and reference."""
    r = ref * has_ref
    swir = np.full(has_ref.shape, float(has_swir), dtype=np.float32)[None]
    return np.concatenate(
        [(x_t - _CENTRE) / _SPREAD, (r - _CENTRE) / _SPREAD * has_ref,
         (x_t - r) / _DIFF_SPREAD * has_ref, swir, has_ref[None].astype(np.float32)],
    ).astype(np.float32)  # fmt: skip


def _run(net, feats: np.ndarray, device) -> np.ndarray:
    import torch

    with torch.inference_mode():
        # channels_last: the convolutions of this narrow network run about a third
        # faster on a CPU (probabilities within 2e-6 of the default layout).
        x = torch.from_numpy(feats[None]).to(device).contiguous(memory_format=torch.channels_last)
        logits = net(x)
        return torch.softmax(logits.float(), 1)[0].cpu().numpy()


def series_probabilities(
    values: np.ndarray, bands: Sequence[str], days: np.ndarray, net, device="cpu",
    progress=None, *, with_blue_departure: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Class probabilities ``(T, 5, H, W)`` of a block, NaN where the input is not valid.

    Three passes of the network: each date alone (no reference), then twice with the
    reference built from the previous pass's clear dates. Starting from the dates
    alone, not from ranks in the series, keeps a mostly overcast series (where the
    pixel's usual value is cloud) from calling its few clear dates hazy.
    ``values`` is ``(T, B, H, W)`` reflectance, ``days`` the dates as day numbers.
    ``progress`` is called once per date and pass, if given. With
    ``with_blue_departure``, also the ``(T, H, W)`` blue departure from the reference of
    the last pass (NaN where a date has no reference), as :mod:`.haze` uses it.
    """
    x, valid, has_swir = mask_inputs(values, bands)
    probs = np.empty((x.shape[0], 5, *x.shape[2:]), dtype=np.float32)
    alone = np.zeros(x.shape[2:], dtype=bool)
    blue = np.full((x.shape[0], *x.shape[2:]), np.nan, np.float32) if with_blue_departure else None
    clear = None
    for i in range(3):
        for t in range(x.shape[0]):
            if clear is None:
                ref, has_ref = np.zeros_like(x[t]), alone
            else:
                ref, has_ref = reference(x, clear, days, t)
            if blue is not None and i == 2:
                np.subtract(x[t, 0], ref[0], out=blue[t], where=has_ref & valid[t])
            probs[t] = _run(net, date_features(x[t], ref, has_ref, has_swir), device)
            if progress is not None:
                progress()
        clear = valid & (probs[:, CLEAR] + probs[:, SNOW] > 0.5)
    probs[np.broadcast_to(~valid[:, None], probs.shape)] = np.nan
    return (probs, blue) if blue is not None else probs
