"""The chunking policy for dask cubes, and the automatic rechunk that enforces it.

What a task needs, and why:

* **time: one chunk.** A cloudy pixel may be filled from any date of its series
  (the nearest clear one can be months away), and the regression base and the
  ``quality`` variable look along the whole series. A task therefore holds every
  date of *its spatial chunk* -- never of the whole region: the region is split in
  space instead.
* **band: one chunk.** The networks read all bands of a pixel together.
* **y / x: at least the halo.** Each chunk is read with a halo of context (the
  model's receptive field plus one pixel), and dask can only take a halo from a
  neighbouring chunk that is at least as wide. Chunks of 512-2048 px keep the halo's
  share of the work small (about 20 % at 1024 px).
* **task memory.** A task's working set grows with ``dates x bands x chunk area``;
  where it would exceed ``xcloudfree.task-memory`` (dask config; by default half
  the memory available per thread, 1-4 GiB) the spatial chunks are made smaller.

:func:`apply_policy` rechunks a cube that breaks a rule and warns with a
:class:`~xcloudfree.errors.RechunkWarning` saying what it did; the band merge is
always needed after a STAC load and is silent. :func:`suggest_chunks` gives the
chunks to ask for when opening data, so that nothing has to be rechunked.
"""

from __future__ import annotations

import os
import sys
import warnings

import dask
import xarray as xr

from .errors import RechunkWarning

_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def _caller_level() -> int:
    """The ``stacklevel`` of the first caller outside xcloudfree, so a warning points
    at the user's line whatever the depth of the call inside the package."""
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level


__all__ = [
    "DEFAULT_CHUNK",
    "apply_policy",
    "chunk_size",
    "overlap_depth",
    "suggest_chunks",
    "task_bytes",
]

#: Spatial chunk size suggested for new cubes (pixels).
DEFAULT_CHUNK = 1024
#: Without ``xcloudfree.task-memory`` set, a task may hold this share of the memory
#: available per thread, within these bounds.
TASK_MEMORY_SHARE = 0.5
TASK_MEMORY_BOUNDS = (2**30, 4 * 2**30)
# Float32 copies of a block a fill task holds at once (input, base, output, temporaries).
_COPIES = 4


def _budget() -> int:
    """Bytes one fill task may hold: the dask config ``xcloudfree.task-memory`` when set,
    else :data:`TASK_MEMORY_SHARE` of the memory available per thread (1-4 GiB).

    The memory per thread is that of the workers of the current ``distributed`` client
    (their memory limit over their threads, the smallest), or without one this
    machine's available memory over dask's threads: a laptop gets smaller chunks than
    a large node instead of swapping.
    """
    memory = dask.config.get("xcloudfree.task-memory", None)
    if memory is not None:
        return int(dask.utils.parse_bytes(memory))
    low, high = TASK_MEMORY_BOUNDS
    return int(min(high, max(low, TASK_MEMORY_SHARE * _memory_per_thread())))


def _memory_per_thread() -> float:
    try:
        from distributed import get_client

        workers = get_client().scheduler_info()["workers"].values()
    except (ImportError, ValueError):  # no distributed, or no client
        workers = []
    limits = [w["memory_limit"] / max(w["nthreads"], 1) for w in workers if w.get("memory_limit")]
    if limits:
        return min(limits)
    import psutil

    threads = dask.config.get("num_workers", None) or os.cpu_count() or 1
    return psutil.virtual_memory().available / threads


def task_bytes(dates: int, bands: int, chunk: tuple[int, int], halo: int) -> int:
    """Estimated working set of one fill task, in bytes.

    Examples
    --------
    >>> round(task_bytes(30, 10, (1024, 1024), 48) / 2**30, 2)
    6.73
    """
    return _COPIES * 4 * dates * (bands + 2) * (chunk[0] + 2 * halo) * (chunk[1] + 2 * halo)


def overlap_depth(shape: tuple[int, ...], halo: int) -> dict[int, int]:
    """``dask.array.overlap`` depth of ``halo`` px on the last two axes of a ``shape`` array.

    No deeper than the array: a cube narrower than the halo is one chunk anyway.

    Examples
    --------
    >>> overlap_depth((6, 4, 100, 30), 49)
    {0: 0, 1: 0, 2: 49, 3: 29}
    """
    depth = dict.fromkeys(range(len(shape) - 2), 0)
    for axis in (len(shape) - 2, len(shape) - 1):
        depth[axis] = min(halo, shape[axis] - 1)
    return depth


def _axis(n: int, size: int, minimum: int) -> tuple[int, ...]:
    """Chunks of ``size`` along an axis of ``n``; a last piece under ``minimum`` joins the last."""
    size = max(size, minimum)
    full, rest = divmod(n, size)
    chunks = [size] * full
    if rest:
        if chunks and rest < minimum:
            chunks[-1] += rest
        else:
            chunks.append(rest)
    return tuple(chunks) or (n,)


def chunk_size(dates: int, bands: int, *, halo: int = 49, size: int = DEFAULT_CHUNK) -> int:
    """The largest spatial chunk, ``size`` halved as needed, whose task fits the memory budget.

    Examples
    --------
    >>> chunk_size(6, 4), chunk_size(60, 10)
    (1024, 512)
    """
    while size > 2 * halo and task_bytes(dates, bands, (size, size), halo) > _budget():
        size //= 2
    return size


def suggest_chunks(
    sizes: dict[str, int], *, halo: int = 49, size: int = DEFAULT_CHUNK
) -> dict[str, tuple[int, ...]]:
    """Chunks that satisfy the policy for a cube of these ``sizes``.

    Parameters
    ----------
    sizes
        ``{"time": T, "band": C, "y": H, "x": W}`` (e.g. ``cube.sizes``).
    halo
        Context the computation reads around each chunk.
    size
        Preferred spatial chunk; made smaller when a task would exceed the memory
        budget.

    Examples
    --------
    >>> suggest_chunks({"time": 12, "band": 4, "y": 2500, "x": 900}, size=1024)["y"]
    (1024, 1024, 452)
    """
    t, c = sizes.get("time", 1), sizes.get("band", 1)
    size = chunk_size(t, c, halo=halo, size=size)
    out = {"time": (t,), "band": (c,)}
    for dim in ("y", "x"):
        out[dim] = _axis(sizes[dim], min(size, sizes[dim]), min(halo, sizes[dim]))
    return out


def _describe(chunks: dict[str, tuple[int, ...]]) -> str:
    def one(c: tuple[int, ...]) -> str:
        # regular chunks (a shorter last one aside) read as one size
        regular = len(set(c[:-1])) <= 1 and c[-1] <= c[0]
        return str(c[0]) if regular else f"{min(c)}-{max(c)}"

    return "{" + ", ".join(f"{d}: {one(c)}" for d, c in chunks.items()) + "}"


def apply_policy(cube: xr.DataArray, *, halo: int) -> xr.DataArray:
    """Rechunk a dask cube ``(time, band, y, x)`` where its chunks break the policy.

    Numpy-backed cubes are returned unchanged. Merging bands into one chunk is
    silent; merging dates, growing spatial chunks smaller than ``halo`` or
    shrinking chunks over the task-memory budget warns with a
    :class:`~xcloudfree.errors.RechunkWarning` that says what was done.

    Examples
    --------
    >>> import warnings, xcloudfree
    >>> cube = xcloudfree.datasets.sample_timeseries().chunk({"time": 1, "y": 20, "x": 128})
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     out = apply_policy(cube, halo=49)
    >>> out.chunks[0], out.chunks[2], out.chunks[3]
    ((30,), (98, 98, 60), (128, 128))
    >>> print(w[0].message)  # doctest: +ELLIPSIS
    rechunked the cube from {time: 1, band: 10, y: 20, x: 128} to {time: 30, ...
    """
    if cube.chunks is None:
        return cube
    current = dict(zip(cube.dims, cube.chunks, strict=True))
    target = dict(current)
    target["band"] = (cube.sizes["band"],)
    reasons = []
    if len(current["time"]) > 1:
        target["time"] = (cube.sizes["time"],)
        reasons.append(
            "the dates were merged into one chunk, because a pixel may be filled from any "
            "date of its series"
        )
    for dim in ("y", "x"):
        if min(current[dim]) < halo and cube.sizes[dim] > min(current[dim]):
            widest = max(current[dim])
            # Keep the user's chunk size where it is usable; only a short last piece merges.
            target[dim] = _axis(cube.sizes[dim], widest if widest >= halo else 2 * halo, halo)
            reasons.append(
                f"{dim} chunks of {min(current[dim])} px are narrower than the {halo} px halo "
                "the model reads around each chunk"
            )
    t, c = cube.sizes["time"], cube.sizes["band"]
    chunk = (max(target["y"]), max(target["x"]))
    if task_bytes(t, c, chunk, halo) > _budget():
        suggested = suggest_chunks(dict(cube.sizes), halo=halo, size=max(chunk))
        target["y"], target["x"] = suggested["y"], suggested["x"]
        reasons.append(
            f"a task would hold {t} dates x {c} bands of {chunk[0]} x {chunk[1]} px "
            f"(~{task_bytes(t, c, chunk, halo) / 2**30:.1f} GiB), over the task-memory budget "
            f"of {_budget() / 2**30:.1f} GiB (dask config 'xcloudfree.task-memory')"
        )
    if target == current:
        return cube
    if reasons:
        warnings.warn(
            f"rechunked the cube from {_describe(current)} to {_describe(target)}: "
            + "; ".join(reasons)
            + ". Chunk the input like xcloudfree.chunking.suggest_chunks(cube.sizes) to avoid "
            "this rechunk.",
            RechunkWarning,
            stacklevel=_caller_level(),
        )
    return cube.chunk(target)
