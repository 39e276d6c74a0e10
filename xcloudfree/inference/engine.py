"""Running the networks over cubes: windows, batches and the two dask passes.

The one module that runs networks over data, from options already validated
(:class:`xcloudfree.options.EngineOptions`). A *block* -- the whole array, or
one dask chunk with its halo -- is cut into windows (:mod:`.tiling`); windows of
every date to be filled are gathered into full batches for the device
(:mod:`.devices`), and overlapping windows are blended. Because every kept pixel
sees its whole receptive field and windows sit on a common even grid, the result
does not depend on the tiling or the chunking.

On dask the work is two passes, both lazy:

1. per chunk, the cloud mask and the regression statistics of every date pair
   (summed over the region: the regression base is scene-wide);
2. per chunk with its halo (:mod:`.halo`), the regression base, the networks and
   ``quality``.

The statistics and the fill read the input themselves (the fill inside its own
task) instead of keeping a first read in memory until the sums over the region
are complete; only the cloud mask, packed to one bit per pixel and date, waits
between the passes. Halo strips are copied out of neighbouring chunks, so a
chunk is freed once its own users are done. Peak memory is thus set by the chunk
size and the number of threads far more than by the region (see
``benchmarks/memory.py`` for the measured figures).

Models travel as references (:mod:`.modelcache`): each worker process loads a
model once, and no graph carries one.
"""

from __future__ import annotations

import functools

import dask.array as dsa
import numpy as np
import xarray as xr

from ..fills.baselines import (
    QUALITY_ATTRS,
    _apply_regression,
    _days,
    _finish,
    _pair_stats,
    _valid,
    expected_error,
    local_correction,
    pair_maps,
    quality_from_error,
    regression_stats,
)
from ..fills.neighbours import nearest_dates
from ..options import FEATHER, EngineOptions
from .devices import batches, release_memory, running
from .halo import reread, with_halo
from .modelcache import get_model
from .tiling import Window, plan_windows

__all__ = [
    "ADAPT_HALO",
    "fill_block",
    "fill_with_model",
    "map_neighbours",
    "model_cloud_probability",
    "probability_block",
]

#: Halo of a block when only the adapted regression runs (two 3x3 layers, and a spare).
ADAPT_HALO = 3


def _crop(a: np.ndarray, w: Window) -> np.ndarray:
    """``a[..., read_y, read_x]`` with the window's edge padding."""
    out = a[(..., *w.read)]
    if any(sum(w.pad, ())):
        out = np.pad(out, [(0, 0)] * (a.ndim - 2) + list(w.pad), mode="edge")
    return out


def _gather(a: np.ndarray, windows: list[Window], index: list | np.ndarray) -> np.ndarray:
    """Stack ``a[index[j]]`` cropped to ``windows[j]`` for every job ``j`` of a batch."""
    return np.stack([_crop(a[i], win) for win, i in zip(windows, index, strict=True)])


def map_neighbours(
    dates: np.ndarray, index: np.ndarray, gain: np.ndarray, offset: np.ndarray
) -> np.ndarray:
    """Each job's other dates in its target's radiometry, in place.

    What the STGAN of a model with :attr:`~xcloudfree.models.HybridConfig.map_neighbours`
    reads: every date but the target through the regression's pair fit into the target.

    ``dates`` is ``(N, K, C, H, W)`` with ``index`` ``(N, K)`` the dates gathered, the
    first the target; ``gain`` and ``offset`` are ``(T, T, C)``
    (:func:`~xcloudfree.fills.baselines.pair_maps`).

    Examples
    --------
    >>> dates = np.ones((1, 2, 1, 2, 2), np.float32)
    >>> gain, offset = np.full((2, 2, 1), 2, np.float32), np.full((2, 2, 1), 0.5, np.float32)
    >>> map_neighbours(dates, np.array([[1, 0]]), gain, offset)[0, :, 0, 0, 0].tolist()
    [1.0, 2.5]
    """
    for j, near in enumerate(index):
        for i, source in enumerate(near[1:], 1):
            scale = gain[near[0], source][:, None, None]
            dates[j, i] *= scale
            dates[j, i] += offset[near[0], source][:, None, None]
    return dates


def _departure(out: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Band-mean squared difference ``(T, h, w)`` of two ``(T, C, h, w)`` fills.

    Band by band: the whole-array expression held two cube-sized temporaries at the
    moment a fill's memory peaks.
    """
    total = np.zeros((out.shape[0], *out.shape[2:]), np.float32)
    for k in range(out.shape[1]):
        diff = out[:, k] - base[:, k]
        total += np.square(diff, out=diff)
    total /= out.shape[1]
    return total


def _relative(keep: tuple[slice, slice], y0: int, x0: int) -> tuple[slice, slice]:
    """A window's kept region in the coordinates of the core starting at ``(y0, x0)``."""
    ky, kx = keep
    return slice(ky.start - y0, ky.stop - y0), slice(kx.start - x0, kx.stop - x0)


def _progress(total: int, show: bool, desc: str):
    from .._progress import progress_bar

    return progress_bar(
        total=total, desc=desc, unit="batch", disable=not show or total <= 1, leave=False
    )


# ---------------------------------------------------------------- blocks


def probability_block(
    block: np.ndarray,
    *,
    options: EngineOptions,
    origin: tuple[int, int] = (0, 0),
    core: tuple[tuple[int, int], tuple[int, int]] | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Cloud probability ``(T, h, w)`` of the ``core`` of a core-first block ``(T, C, H, W)``.

    NaN input stays NaN. ``origin`` is the block's global position (see
    :mod:`xcloudfree.inference.tiling`); ``core`` the part to return (default: all).
    """
    import torch

    net = get_model(options.model, options.device)
    dev = next(net.parameters()).device
    t, _, h, w = block.shape
    (y0, y1), (x0, x1) = core or ((0, h), (0, w))
    x = np.nan_to_num(block[:, :4].astype(np.float32), copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    out = np.zeros((t, y1 - y0, x1 - x0), np.float32)
    windows = plan_windows(
        (h, w), core=core, tile=options.tile, halo=net.config.mask_halo, feather=FEATHER,
        origin=origin,
    )  # fmt: skip
    jobs = [(win, d) for win in windows for d in range(t)]
    groups = list(batches(jobs, options.batch_size, dev))
    with running(dev, options.dtype), _progress(len(groups), progress, "cloud mask") as bar:
        for batch in groups:
            inp = np.stack([_crop(x[d], win) for win, d in batch])
            prob = net.cloud_probability(torch.from_numpy(inp).to(dev))[:, 0].float().cpu().numpy()
            for (win, d), p in zip(batch, prob, strict=True):
                out[(d, *_relative(win.keep, y0, x0))] += win.weight * p[win.keep_in_read]
            bar.update()
    finite = np.isfinite(block[:, :4, y0:y1, x0:x1]).all(1)
    out[~finite] = np.nan
    del x
    release_memory()
    return out


def fill_block(
    data: np.ndarray,
    mask: np.ndarray,
    stats: np.ndarray,
    adapters: np.ndarray | None = None,
    guard: np.ndarray | None = None,
    *,
    days: np.ndarray,
    options: EngineOptions,
    dates: np.ndarray | None = None,
    origin: tuple[int, int] = (0, 0),
    core: tuple[tuple[int, int], tuple[int, int]] | None = None,
    progress: bool = False,
    with_base: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Fill the masked pixels of the ``core`` of one block.

    Parameters
    ----------
    data
        ``(T, C, H, W)`` core-first reflectance (every date).
    mask
        ``(T, H, W)`` bool, True where a pixel is to be filled.
    stats
        Regression statistics of the whole region
        (:func:`~xcloudfree.fills.baselines.regression_stats`).
    adapters
        Per-scene corrections of the regression (:func:`.adaptation.fit_adapters`), or None.
    guard
        ``(T,)``: the share of the networks' departure from the base each date keeps
        (:func:`.guard.fit_guard`), or None to keep all of it.
    dates
        ``(T,)`` bool: the dates the networks run on, or None for every date. For the
        guard's trial fills, which score only some dates; the others' masked pixels
        then keep their input.
    with_base
        Also return the core's base: what the same call with ``stages=()`` would give
        as reflectance (the guard scores the networks against it without a second fill).

    Returns
    -------
    numpy.ndarray
        ``(T, C + 1, h, w)``: the filled reflectance and, last, ``quality``; with
        ``with_base``, a tuple of it and the ``(T, C, h, w)`` base.
    """
    import torch

    h, w = data.shape[-2:]
    (y0, y1), (x0, x1) = core or ((0, h), (0, w))
    valid = _valid(data, mask)
    regression, gap, spread, source = _apply_regression(data, valid, days, stats)
    if adapters is None:
        # The base is the "local" fill: the regression corrected by its own misses on
        # the date's clear pixels around the cloud (the adapters learn their correction
        # of the plain regression, so they replace it).
        regression = local_correction(data, valid, mask, regression)
    else:
        from .adaptation import apply_adapters

        # A date's expected error shrinks as its correction did on held-out pixels.
        ratio = apply_adapters(data, valid, regression, adapters)
        spread *= np.square(ratio)[:, None, None]
    base, quality = _finish(data, valid, mask, regression, gap)
    del regression, valid
    # Filled pixels get the hybrid's expected error once the networks have run.
    refill = (mask & np.isfinite(gap))[:, y0:y1, x0:x1]
    # With no clear observation of a pixel on any date there is nothing to fill from:
    # the input is kept (and quality says 0), never a guess from cloud.
    unfilled = (mask & ~np.isfinite(gap))[:, y0:y1, x0:x1]
    spread = spread[:, y0:y1, x0:x1]
    source = source[:, y0:y1, x0:x1]
    del gap
    nonfinite = ~np.isfinite(data)
    nan = nonfinite.any(1)
    # +-inf is no reflectance: read as 0 like NaN (and flagged as cloud below), or the
    # convolutions would spread it over the whole window.
    x = np.nan_to_num(data.astype(np.float32), copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    # The filled reflectance and, as its last band, quality: one array, no concatenation.
    filled = np.empty((x.shape[0], x.shape[1] + 1, y1 - y0, x1 - x0), np.float32)
    filled[:, -1] = quality[:, y0:y1, x0:x1]
    del quality
    out = filled[:, :-1]
    out[...] = x[:, :, y0:y1, x0:x1]
    # The networks' cloud input is the fill mask, and nodata counts as cloud.
    cloud = (mask | nan).astype(np.float32)[:, None]
    b = np.nan_to_num(base, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    m = mask.astype(np.float32)[:, None]
    stages = options.stages
    if stages:
        net = get_model(options.model, options.device)
        dev = next(net.parameters()).device
        neighbours = nearest_dates(days, options.k or net.config.k)
        maps = pair_maps(stats) if net.config.map_neighbours else None
        windows = plan_windows(
            (h, w), core=core, tile=options.tile, halo=net.config.halo, feather=FEATHER,
            origin=origin,
        )  # fmt: skip
        # A window is run for a date only where that date has something to fill in it,
        # and not for a date the guard gives none of the networks' change (alpha 0: the
        # result is the base either way, to the bit; most dates of most scenes).
        todo = mask if dates is None else mask & dates[:, None, None]
        if guard is not None:
            todo = todo & (guard > 0)[:, None, None]
        jobs = [
            (win, d)
            for win in windows
            for d in np.flatnonzero(todo[(slice(None), *win.keep)].any((1, 2)))
        ]
        groups = list(batches(jobs, options.batch_size, dev))
        with running(dev, options.dtype), _progress(len(groups), progress, "filling") as bar:
            for batch in groups:
                wins = [win for win, _ in batch]
                targets = [d for _, d in batch]
                near = neighbours[targets]
                dates_in = _gather(x, wins, near)
                if maps is not None:
                    map_neighbours(dates_in, near, *maps)
                arrays = [
                    dates_in, _gather(cloud, wins, near),
                    _gather(b, wins, targets), _gather(m, wins, targets),
                ]  # fmt: skip
                tensors = [torch.from_numpy(a).to(dev) for a in arrays]
                pred = net(*tensors, stages=stages).float().cpu().numpy()
                for win, d, p in zip(wins, targets, pred, strict=True):
                    here = (d, slice(None), *_relative(win.keep, y0, x0))
                    # Outside the mask the model returns its input, so adding weighted
                    # differences equals blending the windows' outputs.
                    seen = p[(slice(None), *win.keep_in_read)] - x[(d, slice(None), *win.keep)]
                    out[here] += win.weight * seen
                bar.update()
        if guard is not None:
            core_base = b[:, :, y0:y1, x0:x1]
            out -= core_base
            out *= guard[:, None, None, None]
            out += core_base
    else:  # the base alone (the regression, adapted to the scene)
        out[...] = b[:, :, y0:y1, x0:x1]
    # The networks' inputs go before the scoring below: it runs at the block's peak.
    del x, cloud, m
    # How far the networks moved the fill from the regression is part of its error.
    departure = _departure(out, b[:, :, y0:y1, x0:x1]) if stages else None
    method = "hybrid" if stages else "regression"
    level = out.mean(1)
    error = np.nan_to_num(expected_error(method, spread, departure, source, level), nan=np.inf)
    score = quality_from_error(error)
    # A non-finite input value comes back as it was, in its band only: the other bands
    # of that pixel are valid data and keep theirs (or their fill).
    given = data[:, :, y0:y1, x0:x1]
    bad = nonfinite[:, :, y0:y1, x0:x1]

    def keep_given(a: np.ndarray) -> np.ndarray:
        a[bad] = given[bad]
        np.copyto(a, given, where=unfilled[:, None])
        return a

    keep_given(out)
    quality = filled[:, -1]
    np.copyto(quality, score, where=refill & np.isfinite(quality))
    # The base as the base-only branch above returns it.
    core_base = keep_given(b[:, :, y0:y1, x0:x1].copy()) if with_base else None
    del b, base, nonfinite, departure, error, score, source, level
    release_memory()
    return (filled, core_base) if with_base else filled


# ---------------------------------------------------------------- dask


def model_cloud_probability(
    cube: xr.DataArray, options: EngineOptions | None = None, *, progress: bool = True
) -> xr.DataArray:
    """The model's cloud probability ``(time, y, x)`` of a core-first cube, lazy on dask.

    ``options`` says which model runs and how (default: the shipped model, as
    :class:`~xcloudfree.options.EngineOptions` gives it); ``stages`` and ``adapt``
    do not apply. ``progress`` shows a bar for numpy input; dask input shows
    progress through dask's own tools when computed.

    Examples
    --------
    >>> import xcloudfree
    >>> sample = xcloudfree.datasets.sample_timeseries()
    >>> cube = xcloudfree.cube.core_first(sample.isel(time=[0, 3], y=slice(0, 32), x=slice(0, 32)))
    >>> p = model_cloud_probability(cube, progress=False)
    >>> p.dims, float(p.isel(time=0).mean()) > float(p.isel(time=1).mean())
    (('time', 'y', 'x'), True)
    """
    options = options or EngineOptions()
    net = options.network()
    fn = functools.partial(probability_block, options=options)
    coords = {k: v for k, v in cube.coords.items() if "band" not in v.dims}
    if cube.chunks is None:
        prob = fn(np.asarray(cube.values), progress=progress)
    else:
        data = cube.data.rechunk({1: -1})
        prob = with_halo(
            fn, [data], net.config.mask_halo + 1, out_chunks=(data.chunks[0], *data.chunks[2:])
        )
    return xr.DataArray(
        prob, dims=("time", "y", "x"), coords=coords, name="cloud_probability",
        attrs={"long_name": "cloud probability", "units": "1", "source": "xcloudfree mask head"},
    )  # fmt: skip


def _unpack_then_fill(data, packed, stats, *scene, names, dates: int, origin, core, **kwargs):
    mask = np.unpackbits(packed[:, 0], axis=0, count=dates).astype(bool)
    fits = dict(zip(names, scene, strict=True))
    return fill_block(data, mask, stats, **fits, origin=origin, core=core, **kwargs)


def _fit_on_blocks(*blocks, fit, n: int, out_shape, out_dtype, **kwargs):
    # blocks: n crops, n masks, then the other whole arrays (stats, ...).
    crops, masks, rest = blocks[:n], blocks[n : 2 * n], blocks[2 * n :]
    out = np.asarray(fit(list(crops), list(masks), *rest, **kwargs), out_dtype)
    return out.reshape(out_shape)


def _lazy_fit(fit, crops, masks, extra, out_shape, dtype=np.float32, **kwargs) -> dsa.Array:
    """``fit(crops, masks, *extra, **kwargs)`` as a one-chunk dask array.

    Built with :func:`dask.array.blockwise` (every input given whole to one task)
    rather than :func:`dask.delayed`, which would copy the graphs of its array
    arguments -- the cloud mask's among them -- and so compute the mask twice.
    """
    args: list = []
    for k, a in enumerate([*crops, *masks, *extra]):
        args += [a, tuple(f"a{k}_{d}" for d in range(a.ndim))]
    index = tuple(f"out{d}" for d in range(len(out_shape)))
    return dsa.blockwise(
        _fit_on_blocks, index, *args, new_axes=dict(zip(index, out_shape)), concatenate=True,
        dtype=dtype, meta=np.empty((0,) * len(out_shape), dtype), fit=fit, n=len(crops),
        out_shape=out_shape, out_dtype=dtype, **kwargs,
    )  # fmt: skip


def _scene_fits(data, mask, stats, days, options: EngineOptions) -> dict:
    """What is fitted once per scene before the fill, lazily on dask.

    The per-scene corrections of the regression (:mod:`.adaptation`, with
    ``adapt``) and the networks' guard (:mod:`.guard`, with stages and ``guard``),
    both on the same windows spread over the region.
    """
    from .adaptation import WINDOWS as ADAPT_WINDOWS
    from .adaptation import fit_adapters, n_parameters, training_windows
    from .guard import GROUPS, WINDOWS, fit_guard

    eager = isinstance(data, np.ndarray)

    def windows(count):
        """The crops and masks of ``count`` windows spread over the region."""
        spans = training_windows(data.shape[2:], count)
        # On dask each window is read again for the fits (never held from another
        # pass), and only the chunks under the windows are read.
        crops = [
            data[:, :, ys, xs] if eager else reread(data[:, :, ys, xs], f"window{count}-{i}")
            for i, (ys, xs) in enumerate(spans)
        ]
        return crops, [mask[:, ys, xs] for ys, xs in spans]

    t, c = data.shape[:2]
    fits: dict = {}
    if options.adapt:
        need = mask.any(axis=(1, 2))
        crops, masks = windows(ADAPT_WINDOWS)
        extra = (need, stats)
        fits["adapters"] = (
            fit_adapters(crops, masks, *extra, days=days)
            if eager
            else _lazy_fit(fit_adapters, crops, masks, extra, (t, n_parameters(c) + 2), days=days)
        )
    if options.stages and options.guard:
        extra = (stats, fits["adapters"]) if "adapters" in fits else (stats,)
        crops, masks = windows(WINDOWS)
        if eager:
            fits["guard"] = fit_guard(crops, masks, *extra, days=days, options=options)
        else:
            # Each window and group of dates is a trial of its own task, so that the
            # workers share them; one small task adds their float64 sums up in the
            # eager order.
            parts = [
                _lazy_fit(_guard_trial, [crop], [m], extra, (3, t), np.float64, group=g,
                          days=days, options=options)
                for crop, m in zip(crops, masks, strict=True)
                for g in range(len(GROUPS))
            ]  # fmt: skip
            fits["guard"] = dsa.map_blocks(
                _guard_from_stack, dsa.stack(parts).rechunk(-1), drop_axis=(0, 1),
                chunks=((t,),), dtype=np.float32,
            )  # fmt: skip
    return fits


def _guard_trial(crops, masks, *extra, group, days, options):
    from .guard import window_sums

    return window_sums(crops[0], masks[0], *extra, group=group, days=days, options=options)


def _guard_from_stack(sums):
    from .guard import guard_from_sums

    return guard_from_sums(list(sums))


def fill_with_model(
    cube: xr.DataArray,
    mask: xr.DataArray,
    options: EngineOptions | None = None,
    *,
    progress: bool = True,
) -> tuple[xr.DataArray, xr.DataArray]:
    """Fill every masked pixel of a core-first cube with the model; lazy on dask.

    Parameters
    ----------
    cube
        Core-first ``(time, band, y, x)`` reflectance; on dask, time and band must
        each be one chunk (see :func:`xcloudfree.chunking.apply_policy`).
    mask
        ``(time, y, x)`` bool, True where a pixel is to be filled.
    options
        Which model runs and how (:class:`~xcloudfree.options.EngineOptions`;
        default: the shipped hybrid). With ``stages=()`` no network runs: the
        (adapted) regression alone is returned.
    progress
        Show a progress bar (numpy input; for dask use dask's progress tools).

    Returns
    -------
    reflectance, quality : xarray.DataArray
        The filled cube (like ``cube``, float32) and ``quality`` (time, y, x) as
        defined in :func:`xcloudfree.fills.baselines.fill`.

    Examples
    --------
    >>> import xcloudfree
    >>> sample = xcloudfree.datasets.sample_timeseries()
    >>> crop = sample.isel(time=slice(12, 16), y=slice(0, 32), x=slice(0, 32))
    >>> cube = xcloudfree.cube.core_first(crop)
    >>> mask = xcloudfree.cloud_mask(cube, dilate=2)
    >>> refl, quality = fill_with_model(cube, mask, progress=False)
    >>> refl.dims, refl.dtype.name, quality.name
    (('time', 'band', 'y', 'x'), 'float32', 'quality')
    """
    options = options or EngineOptions()
    # Without stages only the (adapted) regression runs: its 3x3 layers read 2 px.
    halo = options.network().config.halo + 1 if options.stages else ADAPT_HALO
    c = cube.sizes["band"]
    days = _days(cube["time"].values)
    fn = functools.partial(fill_block, days=days, options=options)
    mask = mask.transpose("time", "y", "x")
    if cube.chunks is None and mask.chunks is None:
        data = np.asarray(cube.values, dtype=np.float32)
        m = np.asarray(mask.values, dtype=bool)
        stats = _pair_stats(data, _valid(data, m))
        both = fn(data, m, stats, **_scene_fits(data, m, stats, days, options), progress=progress)
    else:
        data = dsa.asarray(cube.data).astype(np.float32)
        if len(data.chunks[0]) > 1 or len(data.chunks[1]) > 1:
            raise ValueError(
                "fill_with_model needs time and band in one chunk each: "
                "use xcloudfree.chunking.apply_policy(cube, halo=...) first"
            )
        m = dsa.asarray(mask.data).astype(bool).rechunk(data.chunks[:1] + data.chunks[2:])
        # Each pass reads the input itself: a first read kept for later users (the
        # statistics wait for the mask, the fill for the statistics of the whole region)
        # would pin every chunk of the region in memory.
        stats = regression_stats(reread(data, "stats"), m)
        t = data.shape[0]
        packed = m.map_blocks(
            np.packbits, axis=0, dtype=np.uint8, chunks=((-(-t // 8),), *m.chunks[1:])
        )[:, None]
        fits = {}
        if options.adapt or (options.stages and options.guard):
            fits = _scene_fits(data, m, stats, days, options)
        fill = functools.partial(_unpack_then_fill, names=tuple(fits), dates=t, **fn.keywords)
        extra = (stats, *fits.values())
        both = with_halo(
            fill, [data, packed], halo, extra=extra, inline_first=True,
            out_chunks=((t,), (c + 1,), *data.chunks[2:]),
        )  # fmt: skip
    reflectance = cube.copy(data=both[:, :c])
    coords = {k: v for k, v in cube.coords.items() if "band" not in v.dims}
    quality = xr.DataArray(
        both[:, c], dims=("time", "y", "x"), coords=coords, name="quality", attrs=QUALITY_ATTRS
    )
    return reflectance, quality
