"""Per-pixel decisions of the mask's checks: the classes at a threshold, and box counts.

Shared by :mod:`.persistent` and :mod:`.haze`, which both read the network's class
probabilities at the mask's threshold, count pixels around each pixel, and make some
pixels certain clear ground.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .classes import CLEAR, FILLED

__all__ = ["box_sum", "flagged_classes", "make_clear"]


def flagged_classes(
    probs: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the classes of ``(T, 5, H, W)`` probabilities are at ``threshold``.

    Returns
    -------
    valid, flagged : numpy.ndarray
        ``(T, H, W)`` bool: the pixel has data; p(thick + thin + shadow) > threshold.
    kind : numpy.ndarray
        ``(T, H, W)``: the most likely of :data:`~.classes.FILLED` (a class value), what a
        flagged pixel is called.

    Examples
    --------
    >>> p = np.zeros((1, 5, 1, 2), np.float32); p[0, :, 0, 0] = [0.2, 0.1, 0.6, 0.1, 0]
    >>> p[0, :, 0, 1] = [0.9, 0.05, 0, 0.05, 0]
    >>> valid, flagged, kind = flagged_classes(p, 0.5)
    >>> flagged.tolist(), int(kind[0, 0, 0])
    ([[[True, False]]], 2)
    """
    filled = probs[:, list(FILLED)]
    with np.errstate(invalid="ignore"):
        p_fill = filled.sum(1)
        flagged = p_fill > threshold
    kind = np.asarray(FILLED)[np.nan_to_num(filled).argmax(1)]
    return np.isfinite(p_fill), flagged, kind


def make_clear(probs: np.ndarray, where: np.ndarray) -> None:
    """Set the ``(T, 5, H, W)`` probabilities to certain clear ground where ``(T, H, W)``
    ``where`` is True (in place)."""
    if where.any():
        probs.transpose(1, 0, 2, 3)[:, where] = 0.0
        probs[:, CLEAR][where] = 1.0


def box_sum(a: np.ndarray, radius: int) -> np.ndarray:
    """Sum of ``a`` over the ``2 radius + 1`` square around each pixel (last two axes),
    zero beyond the array: as a block sees it, so a block read with ``radius`` more halo
    gives the whole scene's answer. Bool input gives exact counts (the box filter's
    running sums leave rounding residue, so a count of none would not read 0).

    Examples
    --------
    >>> m = np.zeros((5, 5), bool); m[0, 0] = m[4, 4] = True
    >>> box_sum(m, 1)[[0, 2, 3], [0, 2, 3]].tolist()
    [1.0, 0.0, 1.0]
    """
    size = (1,) * (a.ndim - 2) + (2 * radius + 1,) * 2
    area = (2 * radius + 1) ** 2
    total = ndimage.uniform_filter(a.astype(np.float32), size, mode="constant") * area
    return np.rint(total) if a.dtype == bool else total
