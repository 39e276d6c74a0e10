"""Gaussian smoothing with zero padding, and the window it needs around some pixels.

Shared by the same-date fill (:mod:`.spatial`) and the ``"local"`` fill
(:mod:`.baselines`): both smooth values and a weight over the clear pixels and divide,
and both only need the result at a few pixels, so they smooth only the bounding box of
those pixels grown by the kernel's radius. The result there is exactly that of the
whole array, and a block read with the radius as halo gives the whole scene's answer.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["TRUNCATE", "around", "radius", "smooth"]

#: Kernel half-width in standard deviations.
TRUNCATE = 3.0


def radius(sigma: float) -> int:
    """Pixels a Gaussian of ``sigma`` reaches (its kernel radius)."""
    return int(TRUNCATE * sigma + 0.5)


def smooth(a: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian of ``sigma`` px over a 2-D array, zero beyond its edge.

    Outside the array is no weight and no value, as across a chunk edge inside the halo.
    """
    return ndimage.gaussian_filter(a, sigma, mode="constant", cval=0.0, truncate=TRUNCATE)


def around(mask: np.ndarray, grow: int) -> tuple[slice, slice]:
    """The bounding box of ``mask``'s True pixels grown by ``grow``, within the array.

    Examples
    --------
    >>> m = np.zeros((10, 10), bool); m[4, 5] = True; m[0, 9] = True
    >>> win = around(m, 2)
    >>> [(int(w.start), int(w.stop)) for w in win]
    [(0, 7), (3, 10)]
    """
    spans = []
    for axis in (1, 0):
        hit = np.flatnonzero(mask.any(axis=axis))
        spans.append(slice(max(hit[0] - grow, 0), min(hit[-1] + 1 + grow, mask.shape[1 - axis])))
    return tuple(spans)
