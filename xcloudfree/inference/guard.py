"""The scene checks the networks: how much of their change to the base each date keeps.

The shipped networks were trained on other places and seasons; on a user's scene
they may improve the regression base or make it worse (measured on held-out
dates: from -0.2 dB on the L1C series to -4.2 dB on a Swedish L2A cube). The
scene can tell which: on each date, the scene's own cloud shapes (another date's
mask) are laid over clear pixels whose truth is known, the base and the networks
fill them, and a least-squares weight

    alpha = clip(sum((truth - base) * (net - base)) / sum((net - base) ** 2), 0, 1)

says how much of the networks' departure from the base brings the fill closer
to the truth there. The fill then keeps ``base + alpha * (net - base)``: 0 gives
the base back, 1 the networks' output. Dates with too few simulated pixels take
the weight pooled over the dates that have them; a scene with no such date at all
(every pixel cloudy on every date) gives no evidence, and gets 0.

Dates are simulated in two interleaved groups (:data:`GROUPS`), so that a date's
nearest neighbours keep their clear pixels as they do under real clouds. The weights
are fitted once per scene on :data:`WINDOWS` windows spread over the region
(:func:`.adaptation.training_windows`), so they do not depend on the chunking. Each
window and group is a trial of its own (:func:`window_sums`; one dask task each, so
workers share them), and :func:`guard_from_sums` adds their sums up.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GROUPS", "MIN_PIXELS", "WINDOWS", "fit_guard", "guard_from_sums", "window_sums"]

#: Windows (of :data:`.adaptation.WINDOW` px) the guard simulates on: half the
#: adaptation's, as its trial fills cost as much as the fill of the windows itself.
WINDOWS = 2
#: Simulated pixels (all bands) a date needs for a weight of its own.
MIN_PIXELS = 400
#: Share of a date's clear pixels the laid cloud should cover (the donor date is the
#: one whose mask comes closest to it).
COVER = 0.35
#: The two interleaved groups of dates simulated in turn.
GROUPS = (slice(0, None, 2), slice(1, None, 2))


def _donors(mask: np.ndarray, usable: np.ndarray, dates: slice) -> np.ndarray:
    """``(T, h, w)``: per date of ``dates``, another date's real cloud shape over its clear
    pixels; no cloud on the other dates."""
    t = mask.shape[0]
    sim = np.zeros_like(mask)
    clear = usable.reshape(t, -1)
    flat = mask.reshape(t, -1)
    for d in range(t)[dates]:
        n = clear[d].sum()
        if n < MIN_PIXELS:
            continue
        cover = (flat & clear[d]).sum(1) / n
        cover[d] = np.inf
        cover[cover < 0.05] = np.inf
        best = int(np.argmin(np.abs(cover - COVER)))
        if np.isfinite(cover[best]):
            sim[d] = mask[best] & usable[d]
    return sim


def window_sums(data, mask, stats, adapters=None, *, group: int, days, options) -> np.ndarray:
    """One window's evidence from one of the two groups of dates (:data:`GROUPS`).

    Returns ``(3, T)``: per date, sum((truth - base) * (net - base)), sum((net - base)^2)
    and the count of simulated values; zero for the other group's dates. The windows
    and groups are independent trials, so on dask each is its own task
    (:func:`xcloudfree.inference.engine.fill_with_model`) and :func:`guard_from_sums`
    adds them up.
    """
    from .devices import release_memory
    from .engine import fill_block

    data = data.astype(np.float32)
    out = np.zeros((3, data.shape[0]))
    usable = ~mask & np.isfinite(data).all(1)
    # Only this group's dates: each trial finds the donors of its own dates.
    laid = _donors(mask, usable, GROUPS[group])
    if not laid.any():
        return out
    trial = mask | laid
    # The networks fill only this group's dates: the others are not scored.
    net, base = fill_block(
        data, trial, stats, adapters, days=days, options=options, dates=laid.any((1, 2)),
        with_base=True,
    )  # fmt: skip
    net = net[:, :-1]
    where = laid[:, None] & np.isfinite(net) & np.isfinite(base)
    e = np.where(where, data - base, 0.0)
    n = np.where(where, net - base, 0.0)
    out[:] = [(e * n).sum((1, 2, 3)), (n * n).sum((1, 2, 3)), where.sum((1, 2, 3))]
    del net, base, e, n, where
    release_memory()  # before the next trial's or the fill's own big arrays
    return out


def guard_from_sums(parts: list[np.ndarray]) -> np.ndarray:
    """``(T,)`` float32 weights in 0-1 from the :func:`window_sums` of every trial.

    The parts are added in the order given, so the eager and the dask paths, which
    give them in the same order, agree to the bit.
    """
    num, den, count = sum(parts, np.zeros_like(parts[0]))
    own = (count >= MIN_PIXELS) & (den > 0)
    pooled = num[own].sum() / den[own].sum() if own.any() else 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = np.where(own, num / den, pooled)
    return np.clip(alpha, 0.0, 1.0).astype(np.float32)


def fit_guard(
    windows: list[np.ndarray],
    masks: list[np.ndarray],
    stats: np.ndarray,
    adapters: np.ndarray | None = None,
    *,
    days: np.ndarray,
    options,
) -> np.ndarray:
    """Per date, the share of the networks' departure from the base to keep.

    Parameters
    ----------
    windows, masks
        ``(T, C, h, w)`` reflectance and ``(T, h, w)`` fill masks of the windows.
    stats, adapters
        The scene's regression statistics and per-scene corrections (or None), as
        the fill uses them.
    days
        Days of the dates.
    options
        The engine's :class:`~xcloudfree.options.EngineOptions` (with stages).

    Returns
    -------
    numpy.ndarray
        ``(T,)`` float32 in 0-1.
    """
    parts = [
        window_sums(data, mask, stats, adapters, group=g, days=days, options=options)
        for data, mask in zip(windows, masks, strict=True)
        for g in range(len(GROUPS))
    ]
    return guard_from_sums(parts)
