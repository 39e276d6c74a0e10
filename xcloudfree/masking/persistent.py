"""Surfaces that never look clear: a bright roof flagged on every date is a roof.

The temporal mask calls a date cloudy where it departs from what the pixel's other
clear dates say. A small surface that is bright on every date (a white roof, a
greenhouse, a sand pit) has no clear date to say so: the network falls back on the
date's spectrum, which looks like cloud, and calls it cloud on every date. The fill
then has no clear observation of the pixel and keeps the cloud of the overcast dates
there (a white disc on 13 overcast dates of the Belgian winter series), and on clear
dates it is needlessly flagged.

The check here looks at such a pixel from its surroundings: on a date whose
neighbourhood (within :data:`RADIUS` px, counting only pixels that are clear on some
date) is at least :data:`SHARE` free of cloud and haze, a cloud over exactly that pixel
is unlikely; on several such dates (at least :data:`MIN_DATES`), with the visible bands
varying by at most :data:`SPREAD` among them, it is not a cloud but the surface. The
pixel is then called clear on those dates (its class probabilities become certain clear
ground), and stays masked on the others. It runs inside the mask's block task, on the
network's probabilities at the mask's threshold, with :data:`RADIUS` more halo.

Limits: a surface wider than about the radius has too few ordinary pixels around it
and is left masked; a surface whose colour changes by more than :data:`SPREAD`
between its clear dates (a roof under snow on one of them) too.
"""

from __future__ import annotations

import warnings

import numpy as np

from .classes import SHADOW
from .neighbourhood import box_sum, flagged_classes, make_clear

__all__ = ["MIN_DATES", "RADIUS", "SHARE", "SPREAD", "stable_surfaces", "unmask_surfaces"]

#: Half-width in pixels of the neighbourhood a date must be clear in.
RADIUS = 7
#: Share of the neighbourhood's ordinary pixels that must be clear on a date.
SHARE = 0.9
#: Dates with a clear neighbourhood the pixel needs.
MIN_DATES = 2
#: Largest range (max - min) of a visible band over those dates (reflectance).
SPREAD = 0.05


def stable_surfaces(
    flagged: np.ndarray, valid: np.ndarray, visible: np.ndarray, cloudy: np.ndarray | None = None
) -> np.ndarray:  # fmt: skip
    """Pixel-dates to call clear: a stable surface flagged on every date.

    Parameters
    ----------
    flagged, valid
        ``(T, H, W)`` bool: masked (cloud, haze or shadow), and with data.
    visible
        ``(T, 3, H, W)`` reflectance of the blue, green and red bands.
    cloudy
        ``(T, H, W)`` bool: the flagged pixels that count against a clear
        neighbourhood; default all. The mask passes its cloud and haze only: its shadows
        before the shadow check include dark ground, which says nothing of the sky.

    Returns
    -------
    numpy.ndarray
        ``(T, H, W)`` bool. A pixel's value depends on the block within :data:`RADIUS`
        px of it (zero beyond the block's edge), so a block read with that much more
        halo gives the same answer as the whole scene.

    Examples
    --------
    >>> flagged = np.zeros((3, 20, 20), bool); flagged[:, 10, 10] = True  # every date
    >>> flagged[2] = True  # the third date is overcast
    >>> vis = np.full((3, 3, 20, 20), 0.05, np.float32); vis[:, :, 10, 10] = 0.3
    >>> out = stable_surfaces(flagged, np.ones_like(flagged), vis)
    >>> out[:, 10, 10].tolist(), int(out.sum())
    ([True, True, False], 2)
    """
    clear = valid & ~flagged
    never = valid.any(0) & ~clear.any(0)
    none = np.zeros_like(flagged)
    if not never.any():
        return none
    ordinary = valid & ~never
    clear = valid & ~(flagged if cloudy is None else cloudy)
    # Counts within the radius, zero beyond the block.
    n_ordinary = box_sum(ordinary, RADIUS)
    n_clear = box_sum(clear & ordinary, RADIUS)
    quiet = (n_clear >= SHARE * n_ordinary) & (n_ordinary > 0) & never & valid
    candidate = quiet.sum(0) >= MIN_DATES
    if not candidate.any():
        return none
    seen = np.where(quiet[:, None], visible, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        spread = (np.nanmax(seen, 0) - np.nanmin(seen, 0)).max(0)
    return quiet & (candidate & (spread <= SPREAD))


def unmask_surfaces(probs: np.ndarray, visible: np.ndarray, threshold: float) -> np.ndarray:
    """Class probabilities ``(T, 5, H, W)`` with stable surfaces made certain clear ground.

    ``flagged`` is what the classes would be at ``threshold``: p(thick + thin +
    shadow) above it. Where :func:`stable_surfaces` says so, the pixel-date's
    probabilities become 1 for clear and 0 for the rest (changed in place, returned).
    """
    valid, flagged, kind = flagged_classes(probs, threshold)
    # The class the mask would give: cloud or haze, not shadow.
    with np.errstate(invalid="ignore"):
        surface = stable_surfaces(flagged, valid, visible, flagged & (kind != SHADOW))
    make_clear(probs, surface)
    return probs
