"""Filling from the same date's surroundings, where no other date can help.

A pixel under cloud whose every other date is cloudy too -- every cloudy pixel of a
single-date cube -- has no observation in time to fill from. What the date itself
still holds is its clear pixels around the cloud. This module fills such pixels by
*multi-scale normalised convolution*: at each of the scales :data:`SIGMAS` the clear
pixels' values and their count are smoothed by the same Gaussian, and their ratio is
a weighted mean of the clear pixels nearby; a pixel takes the finest scale whose
kernel holds enough clear pixels (:data:`MIN_WEIGHT`; the coarsest takes any within
reach). Small holes get detail from a few pixels away, large
ones a smooth blend of the land around them. It cannot invent what the cloud hides
(a field boundary inside a large hole is lost), so such pixels are marked as filled
from the surroundings (``fill_source == 2``) and get the larger expected error of
their scale (:data:`ERROR_BY_SCALE`).

Measured by ``benchmarks/single_date.py`` on the held-out worldwide cloudy/clear
pairs (the own mask, PSNR over the whole image against a later clear date): 31.99 dB
against 27.66 for the cloudy input; a flat mean of the date's clear pixels gives 31.94
there, and 1 dB less than this fill on held-out clear images with real cloud shapes cut
in (``benchmarks/results/single_date.md``).

The convolution pads with zero weight, so a pixel's value depends only on the pixels
within :data:`REACH`: with that halo, dask chunks give exactly the eager result.
"""

from __future__ import annotations

import itertools

import dask.array as dsa
import numpy as np
import xarray as xr
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from . import smoothing
from .baselines import quality_from_error

__all__ = [
    "ERROR_BY_SCALE", "FALLBACKS", "FILL_SOURCE_ATTRS", "MIN_WEIGHT", "REACH", "SIGMAS", "inpaint",
    "inpaint_unfilled",
]  # fmt: skip

#: Gaussian scales (px), finest first: a pixel takes the finest one that reaches a clear pixel.
SIGMAS: tuple[int, ...] = (4, 8, 16, 32, 64, 128)
#: Pixels beyond which nothing is drawn from (the kernel radius of the largest scale):
#: a hole farther than this from every clear pixel is left as it is.
REACH: int = smoothing.radius(SIGMAS[-1])
#: Smoothed share of clear pixels a scale needs to fill a pixel (bar the coarsest, which
#: takes any clear pixel within reach): below it, the few clear pixels at the kernel's
#: edge say too little. Chosen on training data by ``scripts/inpaint_rule.py``.
MIN_WEIGHT = 0.02
_ANY = 1e-6
#: Expected absolute error (reflectance, band mean) of a pixel filled at each scale of
#: :data:`SIGMAS`: the mean real error, per scale, of holes cut by the *training*
#: worldwide pairs' own masks into the *training* clear patches of the L1C series
#: (``scripts/inpaint_error.py``).
ERROR_BY_SCALE: tuple[float, ...] = (0.0179, 0.0254, 0.0294, 0.0331, 0.0402, 0.0431)
#: Accepted ``fallback=`` values of :func:`xcloudfree.remove`.
FALLBACKS: tuple[str, ...] = ("inpaint", "keep", "nan")
#: Attributes of the ``fill_source`` variable of :func:`xcloudfree.remove`.
FILL_SOURCE_ATTRS = {
    "long_name": "source of each pixel's value",
    "flag_values": np.array([0, 1, 2, 3], dtype=np.uint8),
    "flag_meanings": "observed other_dates same_date_surroundings not_filled",
    "description": (
        "0: observed (clear, or no data); 1: filled from clear observations at other "
        "dates; 2: no other date is clear there, filled from the clear pixels around it "
        "on the same date (xcloudfree.fills.spatial); 3: nothing to fill from, the "
        "input kept (or NaN with fallback='nan')"
    ),
}


def inpaint(
    values: np.ndarray, source: np.ndarray, hole: np.ndarray, *, min_weight: float = MIN_WEIGHT
):
    """Fill ``hole`` pixels of one date from its ``source`` pixels.

    Parameters
    ----------
    values
        ``(band, y, x)`` reflectance of one date.
    source
        ``(y, x)`` bool, the clear pixels to draw from (their values must be finite).
    hole
        ``(y, x)`` bool, the pixels to fill.
    min_weight
        Smoothed share of clear pixels a scale needs (see :data:`MIN_WEIGHT`).

    Returns
    -------
    filled, scale : numpy.ndarray
        ``filled`` ``(band, y, x)`` float32: the estimate at hole pixels that a scale
        reaches, NaN elsewhere; ``scale`` ``(y, x)`` int8: the index into
        :data:`SIGMAS` used, -1 where none reached (or not a hole).

    Examples
    --------
    >>> import numpy as np
    >>> values = np.full((1, 20, 20), 0.3, "f4")
    >>> hole = np.zeros((20, 20), bool); hole[5:10, 5:10] = True
    >>> filled, scale = inpaint(values, ~hole, hole)
    >>> round(float(filled[0, 7, 7]), 4), int(scale[7, 7]), int(scale[0, 0])
    (0.3, 0, -1)
    """
    weight = source.astype(np.float32)
    scale = np.full(hole.shape, -1, dtype=np.int8)
    filled = np.full(values.shape, np.nan, dtype=np.float32)
    todo = hole.copy()
    if not source.any():
        return filled, scale
    clear = np.where(source, values, 0).astype(np.float32)
    for i, sigma in enumerate(SIGMAS):
        if not todo.any():  # most holes are reached at a fine scale: stop there
            break
        # Only the holes left and what lies within this scale's kernel of them: the
        # smoothing there is exactly that of the whole array (zero padding at its edges).
        win = smoothing.around(todo, smoothing.radius(sigma))
        support = smoothing.smooth(weight[win], sigma)
        take = todo[win] & (support > (min_weight if i < len(SIGMAS) - 1 else _ANY))
        if not take.any():
            continue
        for k in range(values.shape[0]):
            filled[k][win][take] = smoothing.smooth(clear[k][win], sigma)[take] / support[take]
        scale[win][take] = i
        todo[win] &= ~take
    return filled, scale


def _block(refl, quality, cloud, *, fallback):
    """Per ``(time, band, y, x)`` block: the fallback applied, ``quality`` and the source.

    Returns ``(T, B + 2, Y, X)``: reflectance, quality, fill_source.
    """
    t, b = refl.shape[:2]
    out = np.empty((t, b + 2, *refl.shape[2:]), dtype=np.float32)
    out[:, :b] = refl
    out[:, b] = quality
    finite = np.isfinite(refl).all(axis=1)
    cloud = cloud.astype(bool)
    unfilled = _unfilled(refl, quality, cloud)
    # NaN quality says no data: kept as it is, and counted as observed.
    source = np.where(cloud & ~np.isnan(quality), np.where(quality == 0, 3, 1), 0)
    out[:, b + 1] = source
    for i in range(t):
        if not unfilled[i].any() or fallback == "keep":
            continue
        if fallback == "nan":
            out[i, :b][:, unfilled[i]] = np.nan
            continue
        _paste(out, i, *inpaint(refl[i], ~cloud[i] & finite[i], unfilled[i]))
    return out


def _paste(out: np.ndarray, d: int, filled: np.ndarray, scale: np.ndarray) -> None:
    """Date ``d``'s same-date fill into ``out`` where a scale reached: value, quality, source."""
    b = out.shape[1] - 2
    done = scale >= 0
    out[d, :b][:, done] = filled[:, done]
    out[d, b][done] = quality_from_error(np.asarray(ERROR_BY_SCALE, np.float32)[scale[done]])
    out[d, b + 1][done] = 2


def inpaint_unfilled(
    reflectance: xr.DataArray,
    quality: xr.DataArray,
    cloud: xr.DataArray,
    fallback: str,
    observed: xr.DataArray | None = None,
) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    """Apply ``fallback`` to the cloudy pixels that no other date could fill.

    Those pixels are the ones a fill left as they were, with ``quality == 0``. With
    ``"inpaint"`` they are filled from the same date's clear pixels (:func:`inpaint`)
    where one lies within :data:`REACH`, and their quality is that of the scale's
    expected error; ``"keep"`` leaves them as they are; ``"nan"`` makes them NaN.

    Parameters
    ----------
    reflectance
        The fill's ``(time, band, y, x)`` reflectance.
    quality
        Its ``(time, y, x)`` quality.
    cloud
        The ``(time, y, x)`` bool mask that was filled.
    fallback
        One of :data:`FALLBACKS`.
    observed
        The cube that was filled (its clear pixels are the fill's). On dask, the tasks
        that find what to fill and cut the strips around it read it, not the fill, so
        that no chunk's fill waits in memory for its neighbours'.

    Returns
    -------
    reflectance, quality, fill_source : xarray.DataArray
        Lazy where the input is; ``fill_source`` is uint8 with CF flags
        (:data:`FILL_SOURCE_ATTRS`).
    """
    refl = reflectance.transpose("time", "band", "y", "x")
    q = quality.transpose("time", "y", "x")
    c = cloud.transpose("time", "y", "x").astype(bool)
    b = refl.sizes["band"]
    if refl.chunks is None:
        both = _block(refl.values, q.values, np.asarray(c.values), fallback=fallback)
    else:
        basis = None
        if observed is not None and observed.chunks is not None:
            obs = observed.transpose("time", "band", "y", "x")
            if "band" in obs.coords and "band" in refl.coords:
                obs = obs.sel(band=refl["band"].values)
            basis = obs.data
        both = _lazy(refl.data, dsa.asarray(q.data), dsa.asarray(c.data), fallback, basis)
    out = refl.copy(data=both[:, :b])
    quality = q.copy(data=both[:, b]).assign_attrs(quality.attrs)
    source = q.copy(data=both[:, b + 1].astype(np.uint8)).rename("fill_source")
    return out, quality, source.assign_attrs(FILL_SOURCE_ATTRS)


def _lazy(data, quality, cloud, fallback: str, observed=None) -> dsa.Array:
    """:func:`_block` over dask chunks; ``(T, B + 2, Y, X)`` chunked in space like ``data``.

    ``observed`` (the filled cube, or None for ``data`` itself) is what the tasks that
    find the dates to fill and cut the strips read.
    """
    data = data.rechunk({0: -1, 1: -1})
    b = data.shape[1]
    space = data.chunks[2:]
    if fallback != "inpaint":  # nothing spatial: one task per chunk, no halo
        grid = (data.chunks[0], *space)
        return dsa.map_blocks(
            _block4, data, quality.rechunk(grid)[:, None], cloud.rechunk(grid)[:, None],
            chunks=(data.chunks[0], (b + 2,), *space), dtype=np.float32, fallback=fallback,
        )  # fmt: skip
    # Three tasks per chunk, so that only what a fill needs moves between workers:
    # which dates have something to fill from the surroundings (a few bytes); the strips
    # of those dates within reach of each chunk that needs them (nothing, mostly); and
    # the chunk's own result, pasted over a canvas of the strips it gets. A chunk
    # narrower than the reach gets strips from the chunks beyond its neighbours too;
    # chunks under a third of the reach are merged first, so that no chunk has more
    # than 7 x 7 around it (a graph that stays small) while none grows much (memory).
    merged = tuple(_at_least(c, min(REACH // 3, sum(c))) for c in space)
    data = data.rechunk({2: merged[0], 3: merged[1]})
    quality = quality.rechunk((data.chunks[0], *merged))
    cloud = cloud.rechunk((data.chunks[0], *merged))
    basis = data if observed is None else observed.rechunk((-1, -1, *merged))
    # Read from storage inside the tasks that use it, so that no read is held for them
    # (see xcloudfree.inference.halo.inline_reader); in-memory input is used as it is.
    from ..inference.halo import _axis_plan, inline_reader

    inline = inline_reader(basis) if observed is not None else None
    token = tokenize(data, quality, cloud, fallback, basis)
    name, flags, strips = (
        f"{step}-{token}" for step in ("inpaint-unfilled", "unfilled-dates", "inpaint-strips")
    )
    bounds = [np.cumsum((0, *c)).tolist() for c in merged]
    ny, nx = len(merged[0]), len(merged[1])
    # Per chunk, the chunks within its reach and the part of each that lies in it: the
    # halo plan of the engine's blocks (inference.halo), with the reach as halo.
    plans = [[_axis_plan(np.asarray(e), i, REACH) for i in range(len(e) - 1)] for e in bounds]
    near: dict = {(i, j): [] for i in range(ny) for j in range(nx)}
    gives: dict = {(i, j): [] for i in range(ny) for j in range(nx)}
    for i, j in near:
        wy0, _, rows = plans[0][i]
        wx0, _, cols = plans[1][j]
        for (k, sy), (m, sx) in itertools.product(rows, cols):
            if (k, m) == (i, j):
                continue
            y0, x0 = bounds[0][k] - wy0, bounds[1][m] - wx0
            on_canvas = (y0 + sy.start, y0 + sy.stop, x0 + sx.start, x0 + sx.stop)
            near[(i, j)].append(((k, m), len(gives[(k, m)]), on_canvas))
            gives[(k, m)].append(((i, j), (sy.start, sy.stop, sx.start, sx.stop)))
    dsk: dict = {}
    for (i, j), given in gives.items():
        d, c = (basis.name, 0, 0, i, j), (cloud.name, 0, i, j)
        d = d if inline is None else inline(d)
        dsk[(flags, i, j)] = (_unfilled_dates, d, c)
        dsk[(strips, i, j)] = (
            _strips, d, c, [local for _, local in given], [(flags, *t) for t, _ in given]
        )  # fmt: skip
    for (i, j), around in near.items():
        d, q, c = (data.name, 0, 0, i, j), (quality.name, 0, i, j), (cloud.name, 0, i, j)
        wy0, wy1, _ = plans[0][i]
        wx0, wx1, _ = plans[1][j]
        canvas = (wy1 - wy0, wx1 - wx0, bounds[0][i] - wy0, bounds[1][j] - wx0)
        dsk[(name, 0, 0, i, j)] = (
            _with_strips, d, q, c, canvas, [(at, put) for _, at, put in around],
            [(strips, *src) for src, _, _ in around],
        )  # fmt: skip
    needs = [data, quality, cloud] + ([basis] if inline is None else [])
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=needs)
    out = dsa.Array(
        graph, name, chunks=(data.chunks[0], (b + 2,), *merged), dtype=np.float32,
        meta=np.empty((0, 0, 0, 0), np.float32),
    )  # fmt: skip
    return out.rechunk({2: space[0], 3: space[1]})


def _at_least(chunks: tuple[int, ...], size: int) -> tuple[int, ...]:
    """``chunks`` with neighbours merged until each is at least ``size`` (the last may join)."""
    out: list[int] = []
    for c in chunks:
        if out and out[-1] < size:
            out[-1] += c
        else:
            out.append(c)
    if len(out) > 1 and out[-1] < size:
        last = out.pop()
        out[-1] += last
    return tuple(out)


def _unfilled(refl, quality, cloud) -> np.ndarray:
    # quality 0 says a fill found nothing to fill from; non-finite values are no data.
    return cloud.astype(bool) & (quality == 0) & np.isfinite(refl).all(axis=1)


def _unfilled_dates(observed, cloud) -> np.ndarray:
    """``(T,)`` bool: the dates with a pixel for the same-date fill in this chunk.

    From the cube before the fill: a cloudy pixel with data that no date has clear
    data at -- what every fill leaves with ``quality == 0`` (:func:`_unfilled`).
    """
    cloud = cloud.astype(bool)
    finite = np.isfinite(observed).all(axis=1)
    never = ~(finite & ~cloud).any(axis=0)
    return (cloud & finite & never).any(axis=(1, 2))


def _strips(refl, cloud, parts, wanted):
    """For each chunk within reach: this chunk's part ``(y0, y1, x0, x1)`` on the dates it needs.

    Returns a list like ``parts``: None where the chunk needs no date, else
    ``(dates, values (n, B, h, w), source (n, h, w))``.
    """
    out = []
    for (y0, y1, x0, x1), dates in zip(parts, wanted, strict=True):
        dates = np.flatnonzero(dates)
        if not dates.size:
            out.append(None)
            continue
        values = refl[dates][:, :, y0:y1, x0:x1]
        source = np.isfinite(values).all(axis=1) & ~cloud[dates][:, y0:y1, x0:x1].astype(bool)
        out.append((dates, values, source))
    return out


def _with_strips(refl, quality, cloud, canvas, placed, strips):
    """:func:`_block` of a chunk, filling from its surroundings with the strips it got.

    ``canvas`` is ``(height, width, y, x)``: the region within reach of the chunk and
    where the chunk sits in it; ``placed`` gives, per chunk around, the index of this
    chunk's strip in its :func:`_strips` and where that strip goes on the canvas.
    """
    out = _block(refl, quality, cloud, fallback="keep")
    unfilled = _unfilled(refl, quality, cloud)
    dates = np.flatnonzero(unfilled.any(axis=(1, 2)))
    if not dates.size:
        return out
    b, (h, w) = refl.shape[1], refl.shape[2:]
    height, width, cy, cx = canvas
    centre = (slice(cy, cy + h), slice(cx, cx + w))
    for d in dates:
        # The chunk and all within reach of it, with no source elsewhere.
        values = np.zeros((b, height, width), np.float32)
        source = np.zeros((height, width), bool)
        values[(slice(None), *centre)] = refl[d]
        source[centre] = np.isfinite(refl[d]).all(axis=0) & ~cloud[d].astype(bool)
        for (at, (y0, y1, x0, x1)), given in zip(placed, strips, strict=True):
            there, strip, ok = given[at]  # that chunk's part on this chunk's dates
            k = int(np.searchsorted(there, d))
            values[:, y0:y1, x0:x1] = strip[k]
            source[y0:y1, x0:x1] = ok[k]
        hole = np.zeros(source.shape, bool)
        hole[centre] = unfilled[d]
        filled, scale = inpaint(values, source, hole)
        _paste(out, d, filled[(slice(None), *centre)], scale[centre])
    return out


def _block4(data, quality, cloud, *, fallback):
    # quality and cloud come as (T, 1, Y, X), so that dask lines their axes up with data's.
    return _block(data, quality[:, 0], cloud[:, 0], fallback=fallback)
