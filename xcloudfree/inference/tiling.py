"""Windows over a block: where each model call reads, what it keeps, how tiles are blended.

Pure numpy and pure arithmetic, so the plan can be tested without a model.

A block (a whole array, or one dask chunk with its halo) is cut along each axis
into windows. Every window *keeps* a stretch of the block's core and *reads*
``halo`` more pixels on each side, so every kept pixel sees its whole receptive
field. Two rules make a window's output at a pixel independent of where the window
sits, so chunked and whole-array runs agree:

* a window starts on an **even global coordinate** and has an **even length**
  (where the block's edge is in the way, by one edge pixel of padding), so the
  half-resolution grids of the networks line up with those of any other window;
* neighbouring windows overlap by ``feather`` pixels around their common
  boundary and are **blended with linear ramps** whose weights sum to one, so
  whatever a too-small halo leaves different fades across the boundary instead
  of showing as a seam.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Window", "plan_windows"]


@dataclass(frozen=True)
class Span:
    """One window along one axis, in block coordinates."""

    read: slice  # what the model reads
    pad: tuple[int, int]  # edge pixels added before and after ``read`` (even start and length)
    keep: slice  # what is written, a part of ``read``
    weight: np.ndarray = field(repr=False)  # blending weight of each kept pixel

    @property
    def keep_in_read(self) -> slice:
        """``keep`` relative to the start of the padded window."""
        start = self.read.start - self.pad[0]
        return slice(self.keep.start - start, self.keep.stop - start)

    @property
    def length(self) -> int:
        """Length of the (padded) window the model sees."""
        return self.read.stop - self.read.start + sum(self.pad)


def _boundaries(start: int, stop: int, tile: int, origin: int) -> list[int]:
    """Split ``[start, stop)`` into near-equal parts of at most ``tile``, on even coordinates."""
    parts = max(1, -(-(stop - start) // tile))
    cuts = [start]
    for i in range(1, parts):
        cut = start + round(i * (stop - start) / parts)
        cut -= (origin + cut) % 2
        if cut > cuts[-1]:
            cuts.append(cut)
    return [*cuts, stop]


def _ramp(n: int, width: int, *, rise: bool, fall: bool) -> np.ndarray:
    # Rising and falling ramps of neighbours sum to exactly 1 pixel by pixel.
    w = np.ones(n, np.float32)
    if width:
        ramp = (np.arange(width, dtype=np.float32) + 0.5) / width
        if rise:
            w[:width] = ramp
        if fall:
            w[n - width :] = ramp[::-1]
    return w


def plan_axis(
    n: int, core: tuple[int, int], *, tile: int, halo: int, feather: int, origin: int
) -> list[Span]:
    """The windows along one axis of a block of length ``n``.

    Parameters
    ----------
    n
        Length of the block (core plus any halo it carries).
    core
        ``(start, stop)`` of the part of the block to produce.
    tile
        Most kept pixels per window (before feathering).
    halo
        Context read on each side of what is kept (clipped at the block's edges).
    feather
        Width of the blended overlap around each interior window boundary (even).
    origin
        Global coordinate of the block's first pixel (for the even-start rule).
    """
    k0, k1 = core
    cuts = _boundaries(k0, k1, tile, origin)
    half = feather // 2
    spans = []
    for i, (a, b) in enumerate(itertools.pairwise(cuts)):
        first, last = i == 0, i == len(cuts) - 2
        keep0 = a if first else a - half
        keep1 = b if last else b + half
        r0 = max(0, keep0 - halo)
        before = (origin + r0) % 2
        if before and r0 > 0:
            r0, before = r0 - 1, 0
        r1 = min(n, keep1 + halo)
        after = (before + r1 - r0) % 2
        if after and r1 < n:
            r1, after = r1 + 1, 0
        weight = _ramp(keep1 - keep0, 2 * half, rise=not first, fall=not last)
        spans.append(Span(slice(r0, r1), (before, after), slice(keep0, keep1), weight))
    return spans


@dataclass(frozen=True)
class Window:
    """A 2-D window: the product of one span along ``y`` and one along ``x``.

    Examples
    --------
    >>> w = plan_windows((100, 60), tile=64, halo=8)[0]
    >>> w.shape, w.weight.shape
    ((62, 60), (54, 60))
    """

    y: Span
    x: Span

    @property
    def read(self) -> tuple[slice, slice]:
        return self.y.read, self.x.read

    @property
    def keep(self) -> tuple[slice, slice]:
        return self.y.keep, self.x.keep

    @property
    def keep_in_read(self) -> tuple[slice, slice]:
        return self.y.keep_in_read, self.x.keep_in_read

    @property
    def pad(self) -> tuple[tuple[int, int], tuple[int, int]]:
        return self.y.pad, self.x.pad

    @property
    def shape(self) -> tuple[int, int]:
        """Spatial size of the (padded) model input."""
        return self.y.length, self.x.length

    @property
    def weight(self) -> np.ndarray:
        return np.outer(self.y.weight, self.x.weight)


def plan_windows(
    shape: tuple[int, int],
    *,
    core: tuple[tuple[int, int], tuple[int, int]] | None = None,
    tile: int,
    halo: int,
    feather: int = 8,
    origin: tuple[int, int] = (0, 0),
) -> list[Window]:
    """Windows that cover ``core`` of a block of spatial ``shape``.

    The blending weights of the windows sum to exactly one on every pixel of
    ``core``.

    Examples
    --------
    >>> ws = plan_windows((300, 100), tile=128, halo=16)
    >>> len(ws), ws[0].keep, ws[0].read
    (3, (slice(0, 104, None), slice(0, 100, None)), (slice(0, 120, None), slice(0, 100, None)))
    >>> total = np.zeros((300, 100))
    >>> for w in ws:
    ...     total[w.keep] += w.weight
    >>> bool(np.allclose(total, 1))
    True
    """
    if feather % 2 or feather < 0:
        raise ValueError(f"feather must be an even number of pixels >= 0, got {feather}")
    if tile < 4 * max(feather, 1):
        raise ValueError(f"tile ({tile}) must be at least 4 x feather ({feather}) and >= 4")
    core = core or ((0, shape[0]), (0, shape[1]))
    ys, xs = (
        plan_axis(n, c, tile=tile, halo=halo, feather=feather, origin=o)
        for n, c, o in zip(shape, core, origin, strict=True)
    )
    return [Window(y, x) for y in ys for x in xs]
