"""Temporal neighbours: which dates a model sees next to a target date."""

from __future__ import annotations

import numpy as np

__all__ = ["nearest_dates"]


def nearest_dates(days: np.ndarray, k: int) -> np.ndarray:
    """For every date, itself followed by its ``k - 1`` nearest other dates in time.

    Ties go to the earlier date. With fewer than ``k`` dates, all dates are used.

    Parameters
    ----------
    days
        ``(T,)`` acquisition times as days (any origin), sorted.
    k
        Dates per row, target included.

    Returns
    -------
    numpy.ndarray
        ``(T, min(k, T))`` integer indices; column 0 is the date itself.

    Examples
    --------
    >>> nearest_dates(np.array([0.0, 5.0, 6.0, 20.0]), 3)
    array([[0, 1, 2],
           [1, 2, 0],
           [2, 1, 0],
           [3, 2, 1]])
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    days = np.asarray(days, dtype=np.float64)
    t = days.size
    gap = np.abs(days[:, None] - days[None, :])
    np.fill_diagonal(gap, -1.0)  # the date itself first
    # lexsort: primary key gap, secondary the date index (earlier first on ties)
    order = np.lexsort((np.broadcast_to(np.arange(t), (t, t)), gap), axis=1)
    return order[:, : min(k, t)]
