"""The halo graph: map a block function over spatial chunks, each read with context.

Built from dask's public graph specification only -- tasks as tuples
``(callable, *args)``, keys as references, nested lists and tasks evaluated in
place (`dask graph spec <https://docs.dask.org/en/stable/spec.html>`_) --
plus :class:`~dask.highlevelgraph.HighLevelGraph`, :func:`dask.optimization.cull`
and :func:`dask.get`. No private dask module is imported, so the graph does not
break when dask's internal task classes change.

Two memory rules shape it (measured by ``benchmarks/memory.py``):

* a neighbour's halo strip is *copied* by a task of its own, so the neighbour's
  chunk is freed as soon as its own users are done (:func:`dask.array.overlap`
  cuts views, which keep whole chunks alive while they wait);
* an input that waits for statistics over the whole region is *read again*
  inside the task that uses it (:func:`inline_reader`, :func:`reread`) instead
  of being held from a first read -- which would hold the whole region.
"""

from __future__ import annotations

from typing import Any

import dask.array as dsa
import numpy as np

__all__ = ["inline_reader", "reread", "with_halo"]

#: In-memory chunks larger than this are not re-read: holding them costs nothing more,
#: and a re-read would copy them into every task that reads them.
INLINE_LIMIT = 2**20


class _Read:
    """A callable computing one key of a (culled) graph in the calling task.

    Dask does not look inside it, so the graph travels as one opaque argument and
    its tasks run, with the synchronous scheduler, inside the task that calls it.
    """

    def __init__(self, graph: dict, key: Any) -> None:
        self.graph, self.key = graph, key

    def __call__(self) -> Any:
        import dask

        return dask.get(self.graph, self.key)


def _holds_data(graph: dict) -> bool:
    from dask.sizeof import sizeof

    return any(sizeof(v) > INLINE_LIMIT for v in graph.values())


def inline_reader(arr: dsa.Array):
    """A function giving, for a chunk key of ``arr``, a task that computes it inline.

    A task that embeds the reading of its input reads it when it runs and frees it
    when it ends. As separate tasks, reads are run early by dask and held until
    their users may run -- for the fill, that is after statistics over the whole
    region, so the whole region would be held. None for in-memory (numpy) input,
    which costs nothing to hold and would be copied into every task.
    """
    from dask.optimization import cull

    graph = dict(arr.__dask_graph__())
    if _holds_data(graph):
        return None

    def inline(key):
        return (_Read(cull(graph, [key])[0], key),)

    return inline


def reread(arr: dsa.Array, tag: str) -> dsa.Array:
    """``arr`` under new task keys, each chunk read inside its own task.

    Dask then computes ``arr`` again for the users of the copy instead of holding
    the first read for them. ``tag`` tells apart several re-reads of one array.
    In-memory input comes back unchanged (see :func:`inline_reader`).
    :func:`dask.graph_manipulation.clone` would do this, but its copies break
    dask's task fusion when a result is sliced (dask/dask#12455).
    """
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    inline = inline_reader(arr)
    if inline is None:
        return arr
    name = f"{arr.name}-{tag}-" + tokenize(arr)[:12]
    layer = {(name, *idx): inline((arr.name, *idx)) for idx in np.ndindex(arr.numblocks)}
    return dsa.Array(
        HighLevelGraph.from_collections(name, layer, dependencies=()), name, arr.chunks,
        meta=arr._meta,
    )  # fmt: skip


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


def _view(block: np.ndarray, sy: slice, sx: slice) -> np.ndarray:
    return block[..., sy, sx]


def _copy(block: np.ndarray, sy: slice, sx: slice) -> np.ndarray:
    return np.array(block[..., sy, sx], copy=True)


def _assemble(fn, pieces, origin, core, *extra):
    # ``pieces``: per array, a grid (rows of columns) of cropped neighbouring chunks.
    blocks = [np.block([list(row) for row in grid]) for grid in pieces]
    return fn(*blocks, *extra, origin=origin, core=core)


def with_halo(
    fn, arrays: list, halo: int, *, out_chunks: tuple, extra: tuple = (), inline_first=False
) -> dsa.Array:
    """Map ``fn`` over the spatial chunks of ``arrays``, each read with ``halo`` px of context.

    ``fn`` gets the blocks (with halo), then the values of ``extra`` (one-chunk dask
    arrays), and ``origin=`` and ``core=`` keywords, and returns only the core of its
    chunk, so no trimming is needed. With ``inline_first`` the first array's own
    chunk and its strips of the neighbours' are read inside each task (see
    :func:`inline_reader`).

    Examples
    --------
    >>> import functools
    >>> import dask.array as da
    >>> def mean3(block, *, origin, core):  # a 3 x 3 mean, returning the core only
    ...     (y0, y1), (x0, x1) = core
    ...     padded = np.pad(block, 1, mode="edge")
    ...     out = sum(padded[1 + dy : dy + block.shape[0] + 1, 1 + dx : dx + block.shape[1] + 1]
    ...               for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9
    ...     return out[y0:y1, x0:x1].astype(np.float32)
    >>> x = np.random.default_rng(0).random((9, 10), dtype=np.float32)
    >>> lazy = with_halo(functools.partial(mean3), [da.from_array(x, chunks=4)], 1,
    ...                  out_chunks=((4, 4, 1), (4, 4, 2)))
    >>> bool(np.allclose(lazy.compute(), mean3(x, origin=(0, 0), core=((0, 9), (0, 10)))))
    True
    """
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph, MaterializedLayer

    inline = inline_reader(arrays[0]) if inline_first else None
    ystart = np.cumsum((0, *arrays[0].chunks[-2]))
    xstart = np.cumsum((0, *arrays[0].chunks[-1]))
    name = f"xcloudfree-{fn.func.__name__.strip('_')}-" + tokenize(fn, *arrays, *extra, halo)
    lead = (0,) * (len(out_chunks) - 2)
    extras = [(e.name, *(0,) * e.ndim) for e in extra]

    dsk: dict = {}
    strips: dict = {}
    strip_name = f"{name}-strip"

    def crop(i, a, y, x, sy, sx, own):
        key = (a.name, *(0,) * (a.ndim - 2), y, x)
        if i == 0 and inline is not None:
            # Read here, neighbours' strips included: nothing of it waits in memory.
            return (_view, inline(key), sy, sx)
        if own:
            return (_view, key, sy, sx)
        # A neighbour's strip is copied in a task of its own, so the neighbour's
        # chunk can be freed as soon as its own users are done.
        strip = (strip_name, i, y, x, sy.start, sy.stop, sx.start, sx.stop)
        strips[strip] = (_copy, key, sy, sx)
        return strip

    for iy in range(len(ystart) - 1):
        y0, _, ys = _axis_plan(ystart, iy, halo)
        for ix in range(len(xstart) - 1):
            x0, _, xs = _axis_plan(xstart, ix, halo)
            pieces = [
                [[crop(i, a, y, x, sy, sx, (y, x) == (iy, ix)) for x, sx in xs] for y, sy in ys]
                for i, a in enumerate(arrays)
            ]
            core = (
                (int(ystart[iy]) - y0, int(ystart[iy + 1]) - y0),
                (int(xstart[ix]) - x0, int(xstart[ix + 1]) - x0),
            )
            dsk[(name, *lead, iy, ix)] = (_assemble, fn, pieces, (y0, x0), core, *extras)
    # An inlined array stays a dependency too; dask culls the tasks nobody reads.
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[*extra, *arrays])
    if strips:
        # Strips are cheap copies that another worker is waiting for. On a
        # distributed worker, a ready strip queued behind a fill of its own chunk
        # (dask's order puts that first) left the other worker idle for a whole
        # fill: 13 of 115 s with 2 workers (dask's task stream of remove() on a
        # LocalCluster). The priority runs them first; local schedulers ignore it.
        strip_layer = MaterializedLayer(strips, annotations={"priority": 100})
        layers = {**graph.layers, strip_name: strip_layer}
        deps = {**graph.dependencies, strip_name: {a.name for a in arrays}}
        deps[name] = deps[name] | {strip_name}
        graph = HighLevelGraph(layers, deps)
    return dsa.Array(graph, name, chunks=out_chunks, dtype=np.float32)
