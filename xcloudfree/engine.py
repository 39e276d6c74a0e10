"""Running the model over cubes: windows, batches, devices, precision and dask.

The only module that runs networks over data. A *block* -- the whole array, or
one dask chunk with its halo -- is cut into windows (:mod:`xcloudfree.tiling`);
windows of every date to be filled are gathered into full batches for the
device, and overlapping windows are blended. Because every kept pixel sees its
whole receptive field and windows sit on a common even grid, the result does not
depend on the tiling or the chunking.

On dask the work is two passes, both lazy:

1. per chunk, the cloud mask and the regression statistics of every date pair
   (summed over the region: the regression base is scene-wide);
2. per chunk with its halo, the regression base, the networks and ``quality``.

The statistics and the fill read the input themselves (the fill inside its own
task) instead of keeping a first read in memory until the sums over the region
are complete; only the cloud mask, packed to one bit per pixel and date, waits
between the passes. Halo strips are copied out of neighbouring chunks, so a
chunk is freed once its own users are done. Peak memory is thus set by the chunk
size and the number of threads far more than by the region (see
``benchmarks/memory.py`` for the measured figures).

Models travel as references (:mod:`xcloudfree.modelcache`): each worker
process loads a model once, and no graph carries one.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import threading
from collections import defaultdict
from operator import getitem
from typing import Any

import dask.array as dsa
import numpy as np
import xarray as xr

from .baselines import (
    QUALITY_ATTRS,
    _apply_regression,
    _days,
    _finish,
    _pair_stats,
    _valid,
    expected_error,
    quality_from_error,
    regression_stats,
)
from .errors import OptionError
from .modelcache import get_model, model_ref, resolve_device
from .neighbours import nearest_dates
from .tiling import Window, plan_windows

__all__ = [
    "BATCH_PIXELS",
    "DTYPES",
    "TILE",
    "batch_pixels",
    "fill_with_model",
    "model_cloud_probability",
    "resolve_device",
]

#: Most pixels each window keeps along an axis (the model also reads its halo).
TILE = 640
#: Pixels (windows x window area) per forward pass when ``batch_size`` is None. On a
#: CPU bigger batches buy no speed (measured on the sample: one 354 px window per pass
#: runs as fast as four) and cost memory, so the budget is one window of a 128 px
#: chunk with its halo (a bigger window still runs alone): ~0.16 GB of activations,
#: and peak RSS of remove() on the sample 1.20 -> 1.05 GB against 2**17. On a GPU ~20 GB.
BATCH_PIXELS = {"cpu": 2**16, "cuda": 2**23}
#: Bytes of activations per pixel of a batch (10 bands, float32; measured 2.4 kB on
#: the sample), to fit the CPU budget to the memory actually free.
BYTES_PER_PIXEL = 2_500
#: Share of the free memory one batch may take on a CPU.
MEMORY_SHARE = 0.25
#: Halo of a block when only the adapted regression runs (two 3x3 layers, and a spare).
ADAPT_HALO = 3
#: Width of the blended overlap between neighbouring windows of a block.
FEATHER = 8
#: Accepted ``dtype=`` values: the precision of the networks' arithmetic.
DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16")
_DEVICE_LOCKS: dict[str, threading.Lock] = defaultdict(threading.Lock)


def check_options(device: Any, dtype: str, batch_size: int | None, tile: int) -> None:
    """Fail early, with the fix, on options that would only fail inside a task."""
    if dtype not in DTYPES:
        raise OptionError(
            f"dtype must be one of {DTYPES}, got {dtype!r}: use 'float32' (the default), "
            "or 'bfloat16' for mixed precision on a GPU"
        )
    dev = resolve_device(device)
    if dtype == "float16" and dev.type != "cuda":
        raise OptionError("dtype='float16' needs a CUDA device: use 'bfloat16' or 'float32' on CPU")
    if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size < 1):
        raise OptionError(
            f"batch_size must be an integer >= 1, got {batch_size!r}: leave it None to fit "
            "batches to the device's pixel budget"
        )
    if not isinstance(tile, (int, np.integer)) or tile < 4 * FEATHER:
        raise OptionError(
            f"tile must be an integer >= {4 * FEATHER}, got {tile!r}: leave the default "
            f"({TILE}) unless memory is short"
        )


@contextlib.contextmanager
def _running(dev, dtype: str):
    """Inference mode, mixed precision, and one forward at a time per device.

    Dask may run several tasks in threads of one worker; on a GPU they take turns,
    as dask-cuda advises (one thread per GPU), instead of splitting its memory, and
    on a CPU likewise (torch's own threads already use every core).
    """
    import torch

    # On a CPU too: torch already spreads one forward over every core, and two at once
    # would only double the activations in memory.
    lock = _DEVICE_LOCKS[str(dev)]
    cast = (
        torch.autocast(device_type=dev.type, dtype=getattr(torch, dtype))
        if dtype != "float32"
        else contextlib.nullcontext()
    )
    with lock, cast, torch.inference_mode():
        yield


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, or None on other C libraries."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _release_memory() -> None:
    """Give the heap memory freed by a block back to the operating system.

    glibc keeps freed blocks below its mmap threshold (up to 32 MB, raised by every
    large free) in per-thread arenas, so after a block of a few hundred MB of windows
    and activations the process keeps that memory, and the next block of another
    thread adds its own: the process grows to several blocks' worth. Dask's
    distributed workers trim for the same reason (``MALLOC_TRIM_THRESHOLD_``); a
    threaded scheduler or a plain call does not, so each block trims at its end.
    Costs milliseconds against seconds of forwards; a no-op off glibc.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _batches(jobs: list, size: int | None, dev):
    """Jobs grouped by window shape, in batches of ``size`` (None: by the pixel budget)."""
    by_shape: dict[tuple[int, int], list] = defaultdict(list)
    for job in jobs:
        by_shape[job[0].shape].append(job)
    budget = batch_pixels(dev)
    for (h, w), group in by_shape.items():
        n = size or max(1, budget // (h * w))
        for i in range(0, len(group), n):
            yield group[i : i + n]


def batch_pixels(dev) -> int:
    """Pixels per forward pass when ``batch_size`` is None.

    A GPU gets :data:`BATCH_PIXELS` ``["cuda"]``; a CPU the smaller of
    :data:`BATCH_PIXELS` ``["cpu"]`` and :data:`MEMORY_SHARE` of the memory free now
    (at :data:`BYTES_PER_PIXEL`), so a laptop with little free memory gets smaller
    batches instead of swapping.

    Examples
    --------
    >>> import torch
    >>> 2**15 <= batch_pixels(torch.device("cpu")) <= BATCH_PIXELS["cpu"]
    True
    """
    if dev.type != "cpu":
        return BATCH_PIXELS.get(dev.type, BATCH_PIXELS["cpu"])
    import psutil

    free = psutil.virtual_memory().available
    return int(min(BATCH_PIXELS["cpu"], max(2**15, MEMORY_SHARE * free / BYTES_PER_PIXEL)))


def _crop(a: np.ndarray, w: Window) -> np.ndarray:
    """``a[..., read_y, read_x]`` with the window's edge padding."""
    out = a[(..., *w.read)]
    if any(sum(w.pad, ())):
        out = np.pad(out, [(0, 0)] * (a.ndim - 2) + list(w.pad), mode="edge")
    return out


def _gather(a: np.ndarray, windows: list[Window], index: list | np.ndarray) -> np.ndarray:
    """Stack ``a[index[j]]`` cropped to ``windows[j]`` for every job ``j`` of a batch."""
    return np.stack([_crop(a[i], win) for win, i in zip(windows, index, strict=True)])


def _relative(keep: tuple[slice, slice], y0: int, x0: int) -> tuple[slice, slice]:
    """A window's kept region in the coordinates of the core starting at ``(y0, x0)``."""
    ky, kx = keep
    return slice(ky.start - y0, ky.stop - y0), slice(kx.start - x0, kx.stop - x0)


def _progress(total: int, show: bool, desc: str):
    from ._progress import progress_bar

    return progress_bar(
        total=total, desc=desc, unit="batch", disable=not show or total <= 1, leave=False
    )


# ---------------------------------------------------------------- blocks


def probability_block(
    block: np.ndarray,
    *,
    model: Any,
    device: Any,
    batch_size: int | None,
    tile: int,
    dtype: str = "float32",
    origin: tuple[int, int] = (0, 0),
    core: tuple[tuple[int, int], tuple[int, int]] | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Cloud probability ``(T, h, w)`` of the ``core`` of a core-first block ``(T, C, H, W)``.

    NaN input stays NaN. ``origin`` is the block's global position (see
    :mod:`xcloudfree.tiling`); ``core`` the part to return (default: all).
    """
    import torch

    net = get_model(model, device)
    dev = next(net.parameters()).device
    t, _, h, w = block.shape
    (y0, y1), (x0, x1) = core or ((0, h), (0, w))
    x = np.nan_to_num(block[:, :4].astype(np.float32), copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    out = np.zeros((t, y1 - y0, x1 - x0), np.float32)
    windows = plan_windows(
        (h, w), core=core, tile=tile, halo=net.config.mask_halo, feather=FEATHER, origin=origin
    )
    jobs = [(win, d) for win in windows for d in range(t)]
    batches = list(_batches(jobs, batch_size, dev))
    with _running(dev, dtype), _progress(len(batches), progress, "cloud mask") as bar:
        for batch in batches:
            inp = np.stack([_crop(x[d], win) for win, d in batch])
            prob = net.cloud_probability(torch.from_numpy(inp).to(dev))[:, 0].float().cpu().numpy()
            for (win, d), p in zip(batch, prob, strict=True):
                out[(d, *_relative(win.keep, y0, x0))] += win.weight * p[win.keep_in_read]
            bar.update()
    finite = np.isfinite(block[:, :4, y0:y1, x0:x1]).all(1)
    out[~finite] = np.nan
    del x
    _release_memory()
    return out


def fill_block(
    data: np.ndarray,
    mask: np.ndarray,
    stats: np.ndarray,
    adapters: np.ndarray | None = None,
    *,
    days: np.ndarray,
    model: Any,
    device: Any,
    batch_size: int | None,
    tile: int,
    k: int | None,
    stages: tuple[str, ...],
    dtype: str = "float32",
    origin: tuple[int, int] = (0, 0),
    core: tuple[tuple[int, int], tuple[int, int]] | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Fill the masked pixels of the ``core`` of one block.

    Parameters
    ----------
    data
        ``(T, C, H, W)`` core-first reflectance (every date).
    mask
        ``(T, H, W)`` bool, True where a pixel is to be filled.
    stats
        Regression statistics of the whole region (:func:`~xcloudfree.baselines.regression_stats`).
    adapters
        Per-scene corrections of the regression (:func:`xcloudfree.adaptation.fit_adapters`),
        or None.

    Returns
    -------
    numpy.ndarray
        ``(T, C + 1, h, w)``: the filled reflectance and, last, ``quality``.
    """
    import torch

    h, w = data.shape[-2:]
    (y0, y1), (x0, x1) = core or ((0, h), (0, w))
    valid = _valid(data, mask)
    regression, gap, spread = _apply_regression(data, valid, days, stats)
    if adapters is not None:
        from .adaptation import apply_adapters

        # A date's expected error shrinks as its correction did on held-out pixels.
        ratio = apply_adapters(data, valid, regression, adapters)
        spread *= np.square(ratio)[:, None, None]
    base, quality = _finish(data, valid, mask, regression, gap)
    del regression, valid
    # Filled pixels get the hybrid's expected error once the networks have run.
    refill = (mask & np.isfinite(gap))[:, y0:y1, x0:x1]
    spread = spread[:, y0:y1, x0:x1]
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
    if stages:
        net = get_model(model, device)
        dev = next(net.parameters()).device
        neighbours = nearest_dates(days, k or net.config.k)
        windows = plan_windows(
            (h, w), core=core, tile=tile, halo=net.config.halo, feather=FEATHER, origin=origin
        )
        # A window is run for a date only where that date has something to fill in it.
        jobs = [
            (win, d)
            for win in windows
            for d in np.flatnonzero(mask[(slice(None), *win.keep)].any((1, 2)))
        ]
        batches = list(_batches(jobs, batch_size, dev))
        with _running(dev, dtype), _progress(len(batches), progress, "filling") as bar:
            for batch in batches:
                wins = [win for win, _ in batch]
                targets = [d for _, d in batch]
                near = neighbours[targets]
                arrays = [
                    _gather(x, wins, near), _gather(cloud, wins, near),
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
    else:  # the base alone (the regression, adapted to the scene)
        out[...] = b[:, :, y0:y1, x0:x1]
    # How far the networks moved the fill from the regression is part of its error.
    departure = np.square(out - b[:, :, y0:y1, x0:x1]).mean(1) if stages else None
    method = "hybrid" if stages else "regression"
    error = np.nan_to_num(expected_error(method, spread, departure), nan=np.inf)
    score = quality_from_error(error)
    # A non-finite input value comes back as it was, in its band only: the other bands
    # of that pixel are valid data and keep theirs (or their fill).
    given = data[:, :, y0:y1, x0:x1]
    bad = nonfinite[:, :, y0:y1, x0:x1]
    out[bad] = given[bad]
    quality = filled[:, -1]
    np.copyto(quality, score, where=refill & np.isfinite(quality))
    del x, b, base, cloud, m, nonfinite, departure, error, score
    _release_memory()
    return filled


# ---------------------------------------------------------------- dask


def _axis_plan(starts: np.ndarray, i: int, halo: int) -> tuple[int, int, list[tuple[int, slice]]]:
    """Block ``i`` with ``halo`` px of context along one axis of chunk boundaries ``starts``.

    Returns the global start and stop of the haloed block, and the neighbouring
    chunks it is made of as ``(chunk index, slice within that chunk)``.
    """
    lo = max(int(starts[i]) - halo, 0)
    hi = min(int(starts[i + 1]) + halo, int(starts[-1]))
    pieces = []
    for j in range(len(starts) - 1):
        a, b = max(lo, int(starts[j])), min(hi, int(starts[j + 1]))
        if a < b:
            pieces.append((j, slice(a - int(starts[j]), b - int(starts[j]))))
    return lo, hi, pieces


def _copy(block: np.ndarray, index: tuple) -> np.ndarray:
    return np.array(block[index], copy=True)


def _assemble(fn, pieces, origin, core, *extra):
    # ``pieces``: per array, a grid (rows of columns) of cropped neighbouring chunks.
    blocks = [np.block([list(row) for row in grid]) for grid in pieces]
    return fn(*blocks, *extra, origin=origin, core=core)


def _inliner(arr: dsa.Array):
    """A function giving, for a chunk key of ``arr``, the task that computes it inline.

    A task that embeds the reading of its input reads it when it runs and frees it
    when it ends. As separate tasks, reads are run early by dask and held until
    their users may run -- for the fill, that is after statistics over the whole
    region, so the whole region would be held. None for in-memory (numpy) input,
    which costs nothing to hold and would be copied into every task.
    """
    from dask._task_spec import DataNode, convert_legacy_graph

    graph = convert_legacy_graph(dict(arr.__dask_graph__()))
    if any(
        isinstance(n, DataNode) and isinstance(n.value, np.ndarray) and n.value.nbytes > 2**20
        for n in graph.values()
    ):
        return None

    @functools.cache
    def inline(key):
        node = graph[key]
        if isinstance(node, DataNode):
            return node
        return node.substitute({dep: inline(dep) for dep in node.dependencies}, key=None)

    return inline


def _with_halo(
    fn, arrays: list, halo: int, *, out_chunks: tuple, extra: tuple = (), inline_first=False
):
    """Map ``fn`` over the spatial chunks of ``arrays``, each read with ``halo`` px of context.

    ``fn`` gets the blocks (with halo), then the values of ``extra`` (one-chunk dask
    arrays), and ``origin=`` and ``core=`` keywords, and returns only the core of its
    chunk, so no trimming is needed. With ``inline_first`` the first array is read
    inside each task (see :func:`_inliner`).

    The halo strips of neighbouring chunks are *copies* made by tasks of their own:
    :func:`dask.array.overlap.overlap` cuts them as views, which keep whole chunks in
    memory while they wait for their user -- a whole region, for a large one.
    """
    from dask._task_spec import List, Task, TaskRef
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    inline = _inliner(arrays[0]) if inline_first else None
    ystart = np.cumsum((0, *arrays[0].chunks[-2]))
    xstart = np.cumsum((0, *arrays[0].chunks[-1]))
    name = f"xcloudfree-{fn.func.__name__.strip('_')}-" + tokenize(fn, *arrays, *extra, halo)
    lead = (0,) * (len(out_chunks) - 2)
    extras = [TaskRef((e.name, *(0,) * e.ndim)) for e in extra]

    dsk = {}

    def crop(i, a, y, x, sy, sx, own):
        key = (a.name, *(0,) * (a.ndim - 2), y, x)
        if i == 0 and inline is not None:
            return Task(None, getitem, inline(key), (..., sy, sx))
        if own:
            return Task(None, getitem, TaskRef(key), (..., sy, sx))
        # A neighbour's strip is copied in a task of its own, so the neighbour's
        # chunk can be freed as soon as its own users are done.
        strip = (f"{name}-strip-{i}", y, x, sy.start, sy.stop, sx.start, sx.stop)
        dsk[strip] = Task(strip, _copy, TaskRef(key), (..., sy, sx))
        return TaskRef(strip)

    for iy in range(len(ystart) - 1):
        y0, _, ys = _axis_plan(ystart, iy, halo)
        for ix in range(len(xstart) - 1):
            x0, _, xs = _axis_plan(xstart, ix, halo)
            pieces = List(
                *(
                    List(
                        *(
                            List(*(crop(i, a, y, x, sy, sx, (y, x) == (iy, ix)) for x, sx in xs))
                            for y, sy in ys
                        )
                    )
                    for i, a in enumerate(arrays)
                )
            )
            core = (
                (int(ystart[iy]) - y0, int(ystart[iy + 1]) - y0),
                (int(xstart[ix]) - x0, int(xstart[ix + 1]) - x0),
            )
            key = (name, *lead, iy, ix)
            dsk[key] = Task(key, _assemble, fn, pieces, (y0, x0), core, *extras)
    # An inlined array stays a dependency: its graph holds the inlined tasks' own inputs.
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[*extra, *arrays])
    return dsa.Array(graph, name, chunks=out_chunks, dtype=np.float32)


def model_cloud_probability(
    cube: xr.DataArray,
    *,
    model: Any = None,
    device: Any = "auto",
    batch_size: int | None = None,
    tile: int = TILE,
    dtype: str = "float32",
    progress: bool = True,
) -> xr.DataArray:
    """The model's cloud probability ``(time, y, x)`` of a core-first cube, lazy on dask.

    ``progress`` shows a bar for numpy input; dask input shows progress through
    dask's own tools when computed.

    Examples
    --------
    >>> import xcloudfree
    >>> sample = xcloudfree.datasets.sample_timeseries()
    >>> cube = xcloudfree.cube.core_first(sample.isel(time=[0, 3], y=slice(0, 32), x=slice(0, 32)))
    >>> p = model_cloud_probability(cube, progress=False)
    >>> p.dims, float(p.isel(time=0).mean()) > float(p.isel(time=1).mean())
    (('time', 'y', 'x'), True)
    """
    check_options(device, dtype, batch_size, tile)
    ref = model_ref(model)
    net = get_model(ref, device)
    fn = functools.partial(
        probability_block, model=ref, device=device, batch_size=batch_size, tile=tile, dtype=dtype
    )
    coords = {k: v for k, v in cube.coords.items() if "band" not in v.dims}
    if cube.chunks is None:
        prob = fn(np.asarray(cube.values), progress=progress)
    else:
        data = cube.data.rechunk({1: -1})
        prob = _with_halo(
            fn, [data], net.config.mask_halo + 1, out_chunks=(data.chunks[0], *data.chunks[2:])
        )
    return xr.DataArray(
        prob, dims=("time", "y", "x"), coords=coords, name="cloud_probability",
        attrs={"long_name": "cloud probability", "units": "1", "source": "xcloudfree mask head"},
    )  # fmt: skip


def _reread(arr: dsa.Array, tag: str) -> dsa.Array:
    """``arr`` under new task keys, so dask computes it again instead of holding it.

    ``tag`` tells apart several re-reads of one array.
    :func:`dask.graph_manipulation.clone` would do this, but its copies break dask's
    task fusion when a result is sliced (dask/dask#12455), so the graph is copied
    here with every key renamed.
    """
    from dask._task_spec import convert_legacy_graph
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    graph = convert_legacy_graph(dict(arr.__dask_graph__()))
    suffix = f"-{tag}-" + tokenize(arr)[:12]

    def renamed(key):
        return (key[0] + suffix, *key[1:]) if isinstance(key, tuple) else key + suffix

    subs = {key: renamed(key) for key in graph}
    layer = {subs[key]: task.substitute(subs, key=subs[key]) for key, task in graph.items()}
    name = arr.name + suffix
    return dsa.Array(
        HighLevelGraph.from_collections(name, layer, dependencies=()), name, arr.chunks,
        meta=arr._meta,
    )  # fmt: skip


def _unpack_then_fill(data, packed, stats, adapters=None, *, dates: int, origin, core, **kwargs):
    mask = np.unpackbits(packed[:, 0], axis=0, count=dates).astype(bool)
    return fill_block(data, mask, stats, adapters, origin=origin, core=core, **kwargs)


def _adapters(data, mask, stats, days):
    """The per-scene corrections (:mod:`xcloudfree.adaptation`), lazily on dask."""
    from .adaptation import fit_adapters, n_parameters, training_windows

    windows = training_windows(data.shape[2:])
    crops = [data[:, :, ys, xs] for ys, xs in windows]
    masks = [mask[:, ys, xs] for ys, xs in windows]
    need = mask.any(axis=(1, 2))
    if isinstance(data, np.ndarray):
        return fit_adapters(crops, masks, need, stats, days=days)
    import dask

    fitted = dask.delayed(fit_adapters, pure=True)(crops, masks, need, stats, days=days)
    shape = (data.shape[0], n_parameters(data.shape[1]) + 2)
    return dsa.from_delayed(fitted, shape, dtype=np.float32)


def fill_with_model(
    cube: xr.DataArray,
    mask: xr.DataArray,
    *,
    model: Any = None,
    device: Any = "auto",
    batch_size: int | None = None,
    tile: int = TILE,
    k: int | None = None,
    stages: tuple[str, ...] = ("stgan", "cyclegan"),
    dtype: str = "float32",
    adapt: bool = False,
    progress: bool = True,
) -> tuple[xr.DataArray, xr.DataArray]:
    """Run the hybrid model on every masked pixel of a core-first cube; lazy on dask.

    Parameters
    ----------
    cube
        Core-first ``(time, band, y, x)`` reflectance; on dask, time and band must
        each be one chunk (see :func:`xcloudfree.chunking.apply_policy`).
    mask
        ``(time, y, x)`` bool, True where a pixel is to be filled.
    model, device, batch_size, tile, k, stages, dtype, adapt
        See :func:`xcloudfree.remove`.
    progress
        Show a progress bar (numpy input; for dask use dask's progress tools).

    Returns
    -------
    reflectance, quality : xarray.DataArray
        The filled cube (like ``cube``, float32) and ``quality`` (time, y, x) as
        defined in :func:`xcloudfree.baselines.fill`.

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
    check_options(device, dtype, batch_size, tile)
    ref = model_ref(model)
    # Without stages only the (adapted) regression runs: its 3x3 layers read 2 px.
    halo = get_model(ref, device).config.halo + 1 if stages else ADAPT_HALO
    c = cube.sizes["band"]
    days = _days(cube["time"].values)
    fn = functools.partial(
        fill_block, days=days, model=ref, device=device, batch_size=batch_size, tile=tile,
        k=k, stages=tuple(stages), dtype=dtype,
    )  # fmt: skip
    mask = mask.transpose("time", "y", "x")
    if cube.chunks is None and mask.chunks is None:
        data = np.asarray(cube.values, dtype=np.float32)
        m = np.asarray(mask.values, dtype=bool)
        stats = _pair_stats(data, _valid(data, m))
        adapters = _adapters(data, m, stats, days) if adapt else None
        both = fn(data, m, stats, adapters, progress=progress)
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
        stats = regression_stats(_reread(data, "stats"), m)
        t = data.shape[0]
        packed = m.map_blocks(
            np.packbits, axis=0, dtype=np.uint8, chunks=((-(-t // 8),), *m.chunks[1:])
        )[:, None]
        fill = functools.partial(_unpack_then_fill, dates=t, **fn.keywords)
        extra = (stats, _adapters(_reread(data, "adapt"), m, stats, days)) if adapt else (stats,)
        both = _with_halo(
            fill, [data, packed], halo, extra=extra, inline_first=True,
            out_chunks=((t,), (c + 1,), *data.chunks[2:]),
        )  # fmt: skip
    reflectance = cube.copy(data=both[:, :c])
    coords = {k: v for k, v in cube.coords.items() if "band" not in v.dims}
    quality = xr.DataArray(
        both[:, c], dims=("time", "y", "x"), coords=coords, name="quality", attrs=QUALITY_ATTRS
    )
    return reflectance, quality
