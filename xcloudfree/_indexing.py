"""Per-pixel indexing along the first axis, shared by the fills and the mask."""

from __future__ import annotations

import numpy as np

__all__ = ["take_per_pixel"]


def take_per_pixel(data: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``data[index[t, y, x], :, y, x]`` of ``(N, B, Y, X)`` data, as ``(T, B, Y, X)``.

    ``index`` is ``(T, Y, X)``, clipped to ``0 .. N - 1``. One flat :func:`numpy.take`:
    the same values as :func:`numpy.take_along_axis` on a broadcast index, in about
    half the time (that builds and broadcasts an index array per axis).

    Examples
    --------
    >>> data = np.arange(12.0).reshape(3, 1, 2, 2)
    >>> take_per_pixel(data, np.array([[[0, 2], [1, 5]]]))[0, 0].tolist()
    [[0.0, 9.0], [6.0, 11.0]]
    """
    n, b, h, w = data.shape
    flat = np.arange(b * h * w, dtype=np.intp).reshape(1, b, h, w)
    flat = flat + np.clip(index, 0, n - 1).astype(np.intp)[:, None] * (b * h * w)
    return np.take(np.ascontiguousarray(data).reshape(-1), flat)
