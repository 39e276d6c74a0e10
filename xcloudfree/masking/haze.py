"""Faint haze is the date's own light: not worth a fill from other dates.

The temporal mask calls a pixel thin cloud or haze where its blue band is brighter
than the pixel's clear other dates say (the reference of :mod:`.temporal`). Part of
that brightening is common to the whole neighbourhood on that date: an aerosol load,
a sun angle, a season the reference dates do not share. The clear pixels around it
show it too. The fill maps other dates into the date's own radiometry from those
clear pixels (the pair fits of the ``regression`` base), so a pixel whose brightening
is no more than its neighbourhood's gets that offset back from any fill, at the cost
of a prediction's error instead of an observation. Masking it in patches (half of a
uniformly hazy date) only swaps observed ground for predicted ground.

The check here keeps such a pixel: a thin-cloud pixel whose blue departure from its
reference (the one the network's last pass saw) is within :data:`MARGIN` of the mean
departure of the clear pixels within :data:`RADIUS` px is called clear. Where fewer
than :data:`MIN_CLEAR` of the neighbourhood's pixels are clear, the neighbourhood's
departure is not known and taken as 0. A pixel darker than its neighbourhood by more
than the margin stays masked (a shadow the network called thin), as do thick cloud,
shadow, and any pixel without a reference (a single date). The margin, 0.01, is about
the regression fill's own error: filling a pixel that departs by less gains nothing.
It runs inside the mask's block task, on the network's probabilities at the mask's
threshold, with :data:`RADIUS` more halo.
"""

from __future__ import annotations

import numpy as np

from .classes import CLEAR, SNOW, THICK, THIN
from .neighbourhood import box_sum, flagged_classes, make_clear

__all__ = ["MARGIN", "MIN_CLEAR", "RADIUS", "faint_haze", "unmask_faint_haze"]

#: Half-width in pixels of the neighbourhood whose clear pixels give the date's offset.
RADIUS = 24
#: Share of the neighbourhood that must be clear for its offset to count.
MIN_CLEAR = 0.05
#: Blue departure from the neighbourhood's (reflectance, either way) still counted as ground.
MARGIN = 0.01


def faint_haze(
    departure: np.ndarray, thin: np.ndarray, clear: np.ndarray, thick: np.ndarray | None = None
) -> np.ndarray:  # fmt: skip
    """Thin-cloud pixels of one date to call clear.

    Parameters
    ----------
    departure
        ``(H, W)`` B02 reflectance of the date minus its reference from the other
        dates; NaN where there is no reference.
    thin, clear
        ``(H, W)`` bool: the pixels the mask calls thin cloud, and clear ground.
    thick
        ``(H, W)`` bool: thick cloud, or None. Within :data:`RADIUS` px of it nothing
        is unmasked: the haze around a cloud brightens the "clear" ground nearby too.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` bool. A pixel's value depends on the block within :data:`RADIUS` px
        of it (zero beyond the block's edge), so a block read with that much more halo
        gives the same answer as the whole scene.

    Examples
    --------
    >>> dep = np.full((40, 40), 0.03, np.float32)  # the whole date is a little brighter
    >>> thin = np.zeros((40, 40), bool); thin[10:20, 10:20] = True
    >>> dep[15:20, 10:20] = 0.07  # half the patch is brighter than that
    >>> out = faint_haze(dep, thin, ~thin)
    >>> int(out.sum()), bool(out[12, 12]), bool(out[17, 12])
    (50, True, False)
    """
    if not thin.any():
        return np.zeros_like(thin)
    has_ref = np.isfinite(departure)
    dep = np.where(has_ref, departure, 0.0).astype(np.float32)
    known = clear & has_ref
    # Counts and sums within the radius, zero beyond the block.
    n = box_sum(known, RADIUS)
    total = box_sum(np.where(known, dep, 0.0), RADIUS)
    with np.errstate(invalid="ignore", divide="ignore"):
        offset = np.where(n >= MIN_CLEAR * (2 * RADIUS + 1) ** 2, total / n, 0.0)
    faint = thin & has_ref & (np.abs(dep - offset) < MARGIN)
    if thick is not None and thick.any():
        faint &= box_sum(thick, RADIUS) == 0
    return faint


def unmask_faint_haze(probs: np.ndarray, departure: np.ndarray, threshold: float) -> np.ndarray:
    """Class probabilities ``(T, 5, H, W)`` with faint haze made certain clear ground.

    ``departure`` is the ``(T, H, W)`` blue departure from the reference
    (:func:`.temporal.series_probabilities`); the classes are those at ``threshold``.
    Changed in place, returned.
    """
    valid, flagged, kind = flagged_classes(probs, threshold)
    thin, thick = flagged & (kind == THIN), flagged & (kind == THICK)
    with np.errstate(invalid="ignore"):
        clear = valid & ~flagged & (probs[:, CLEAR] + probs[:, SNOW] > 0.5)
    for t in np.flatnonzero(thin.any((1, 2))):
        make_clear(probs[t : t + 1], faint_haze(departure[t], thin[t], clear[t], thick[t])[None])
    return probs
