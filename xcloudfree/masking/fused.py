"""The default mask: a single-date detector and the series' evidence, joined by what each means.

Two sources see different things, and each is trusted only for what it can see:

* **ukis-csmask** (DLR; U-Nets trained on SPARCS and CloudSEN12+, places all over the
  world) looks at one date at a time. It finds opaque cloud and its shadow on surfaces
  this project never saw, and does not call bright dry fields cloud, but it misses
  uniform haze and thin cloud.
* **the temporal network** (:mod:`xcloudfree.masking.temporal`) compares each date with
  the pixel's own clear dates. It finds haze and thin cloud that a single date cannot
  show, but was trained on four places and there calls every unusual surface "haze".

Joined, per pixel and date (``x`` are the mask bands, ``dep`` the date minus the median
of its nearest dates that *both* sources call clear, the temporal mask's reference):

* **thick cloud**: csmask's cloud, or the temporal network's thick cloud where the date
  is brighter in blue than its clear reference (a cloud covers the ground with
  something brighter; a "thick cloud" darker than the ground is a dark winter date).
  Without a clear reference (one date alone, or a run of overcast dates) the network
  has only the date's own spectrum, which it learned on four places, and the detector,
  which learned it on many, decides alone;
* **shadow**: either source's shadow; after the join, :func:`.shadows.shadows_need_clouds`
  keeps only those with a thick cloud *of the join* within reach (the network's own
  check ran on its own thick cloud, which the join may have dropped);
* **haze / thin cloud**: the temporal network's, only where the date *has* a clear
  reference (haze is a departure from the pixel's history; a single date has none);
  not where the departure is the ground changing: a white veil of opacity ``a`` moves
  band ``k`` by ``a * (cloud - ground_k)``, so it can lead red over blue by at most
  ``ground_blue - ground_red``, and a departure led by red further than that is bare
  soil appearing (harvest, ploughing); and not where the departure is no larger than
  that of the date's clear ground around it (:func:`.haze.faint_haze`, the same check
  as the temporal mask's, on this reference);
* everything else is clear (or snow, or nodata, as the temporal mask says).

No threshold here was fitted: the numbers are the sign of a departure, the
red-over-blue margin (:data:`NOISE`, the reflectance noise of a clear date against its
neighbours) and the faint-haze check's own margin and radius. A pixel's class depends
on the data within :data:`.haze.RADIUS` px of it, so a dask block needs that halo.
How this join scores on each site when the others choose it is in
``benchmarks/mask_sites.py`` (leave one site out).
"""

from __future__ import annotations

import numpy as np

from .classes import CLEAR, NODATA, SHADOW, SNOW, THICK, THIN
from .haze import faint_haze
from .temporal import reference

__all__ = ["NOISE", "candidates", "fuse", "settle"]

#: Reflectance a clear date departs from its clear neighbours by in a visible band
#: without any change of the ground (about the spread of clear dates of one pixel).
NOISE = 0.01


def fuse(
    temporal: np.ndarray, single: np.ndarray, x: np.ndarray, days: np.ndarray
) -> np.ndarray:  # fmt: skip
    """Join the temporal mask's classes with a single-date detector's.

    Parameters
    ----------
    temporal, single
        uint8 classes ``(T, H, W)`` before dilation: the temporal mask's and the
        detector's (clear, thick, shadow, nodata).
    x
        ``(T, >=4, H, W)`` the mask bands B02, B03, B04, NIR (:func:`.temporal.mask_inputs`).
    days
        The dates as day numbers.

    Returns
    -------
    numpy.ndarray
        uint8 classes ``(T, H, W)``.

    Examples
    --------
    A pixel over five dates: a veil on date 1 (every band up), soil appearing on date 3
    (red up, NIR down) and staying, a thick cloud only the detector sees on date 4.

    >>> x = np.zeros((5, 4, 1, 1), np.float32); x[:, :, 0, 0] = [0.04, 0.06, 0.04, 0.35]
    >>> x[1, :, 0, 0] += 0.05; x[3:, :, 0, 0] = [0.08, 0.10, 0.12, 0.25]
    >>> t = np.array([0, 2, 0, 2, 0], np.uint8)[:, None, None]
    >>> s = np.array([0, 0, 0, 0, 1], np.uint8)[:, None, None]
    >>> fuse(t, s, x, np.arange(5) * 10)[:, 0, 0].tolist()
    [0, 2, 0, 0, 1]
    """
    return settle(candidates(temporal, single, x, days))


def candidates(
    temporal: np.ndarray, single: np.ndarray, x: np.ndarray, days: np.ndarray
) -> np.ndarray:  # fmt: skip
    """The per-pixel part of :func:`fuse`: ``(T, 2, H, W)`` float32 for :func:`settle`.

    Channel 0 is the blue departure from the reference of the dates both sources call
    clear (NaN without one); channel 1 the classes before the faint-haze check, plus 256
    where both sources call the pixel clear ground.
    """
    out = np.where(temporal == SNOW, SNOW, CLEAR).astype(np.uint8)
    ground = np.isin(temporal, (CLEAR, SNOW)) & np.isin(single, (CLEAR, SNOW))
    blue = np.full(temporal.shape, np.nan, np.float32)
    for t in range(temporal.shape[0]):
        ref, has_ref = reference(x, ground, days, t)
        dep = x[t, :4] - ref[:4]
        np.copyto(blue[t], dep[0], where=has_ref)
        brighter = has_ref & (dep[0] > 0)
        thick = (single[t] == THICK) | ((temporal[t] == THICK) & brighter)
        # A white veil of opacity a moves band k by a * (cloud - ground_k): it can lead
        # red over blue only by a * (ground_blue - ground_red) <= that difference.
        soil = dep[2] - dep[0] > np.maximum(ref[0] - ref[2], 0) + NOISE
        out[t][(temporal[t] == THIN) & has_ref & ~soil] = THIN
        out[t][(single[t] == SHADOW) | (temporal[t] == SHADOW)] = SHADOW
        out[t][thick] = THICK
    out[temporal == NODATA] = NODATA
    return np.stack([blue, out + np.float32(256) * ground]).swapaxes(0, 1)


def settle(cand: np.ndarray) -> np.ndarray:
    """uint8 classes from :func:`candidates`: haze no brighter than the date's clear
    ground around it is the date's own light (an aerosol load, a season), which any fill
    reproduces (:func:`.haze.faint_haze`). Reads :data:`.haze.RADIUS` px around a pixel."""
    blue, code = cand[:, 0], cand[:, 1].astype(np.int32)
    classes, ground = (code % 256).astype(np.uint8), code >= 256
    for t in np.flatnonzero((classes == THIN).any((1, 2))):
        has_ref = np.isfinite(blue[t])
        faint = faint_haze(blue[t], classes[t] == THIN, ground[t] & has_ref, classes[t] == THICK)
        classes[t][faint] = CLEAR
    return classes
