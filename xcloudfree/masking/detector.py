"""ukis-csmask's single-date cloud and shadow detector, on a tile grid fixed to the cube.

`ukis-csmask <https://github.com/dlr-eoc/ukis-csmask>`_ (DLR, Apache-2.0) ships U-Nets
(EfficientNet-B4 encoder) trained on SPARCS and CloudSEN12+, for L1C and L2A, with 4
(B02 B03 B04 NIR) or 6 (+ B11 B12) bands at about 30 m, as ONNX files in its wheel. Its
own entry point (``CSmask``) tiles whatever image it is given from that image's corner
and pads it at the edges, so a dask chunk would see other tiles and other padding than
the whole array: the classes would change with the chunking. Here the same models run
on a grid of tiles anchored to the cube's first pixel: the cube is averaged to about 30 m
over blocks anchored there, cut into :data:`CORE`-pixel tiles, and each tile is
classified with :data:`MARGIN` pixels of its neighbours around it (at the cube's edges,
mirrored as ukis-csmask pads). A pixel's class therefore depends on the data around it
only, never on the chunks, and a dask chunk needs :data:`MARGIN` coarse pixels of halo.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import OptionError
from .classes import CLEAR, NODATA, SHADOW, THICK

__all__ = [
    "CORE", "MARGIN", "MIN_CONTEXT", "classify", "classify_native", "coarsen",
    "detector_inputs", "model_for", "tile_chunks",
]  # fmt: skip

#: Side of the tile the models take (their ``target_size``).
TILE = 256
#: Smallest side, in coarse pixels, of a cube the default mask runs the detector on.
#: Below it most of each tile would be the mirrored image, a pattern the networks never
#: saw: on a 64 px crop of the sample (21 coarse pixels) they called 62 % and 100 % of
#: two clear dates cloud. A quarter of a tile, about 2 km.
MIN_CONTEXT = TILE // 4
#: Coarse pixels of context each tile reads on every side.
MARGIN = 32
#: Coarse pixels each tile classifies: the tile less its margins.
CORE = TILE - 2 * MARGIN
# Tiles per call of the network.
_BATCH = 8


@functools.lru_cache(maxsize=4)
def model_for(six_bands: bool, level: str):
    """The ONNX session and normalisation of one of ukis-csmask's models (cached).

    Returns ``(session, input_name, mean, std)``; ``mean``/``std`` are ``(bands, 1, 1)``.
    """
    try:
        import onnxruntime
        import ukis_csmask
    except ImportError as exc:
        raise OptionError(
            "the 'fused' and 'csmask' masks need ukis-csmask and onnxruntime: "
            "pip install 'ukis-csmask[cpu]', or use mask='temporal'"
        ) from exc
    stem = Path(ukis_csmask.__file__).parent / f"model_{6 if six_bands else 4}b_{level}"
    meta = json.loads(stem.with_suffix(".json").read_text())["data"]
    options = onnxruntime.SessionOptions()
    options.inter_op_num_threads = 1  # one graph branch at a time; the layers use the cores
    session = onnxruntime.InferenceSession(
        str(stem.with_suffix(".onnx")), sess_options=options,
        providers=["CPUExecutionProvider"],
    )  # fmt: skip
    mean, std = (
        np.asarray(v, np.float32)[:, None, None] for v in meta["dataset_statistics"]["img"]
    )
    return session, session.get_inputs()[0].name, mean, std


def detector_inputs(bands: Sequence[str]) -> tuple[list[str], bool]:
    """The cube's bands the detector reads, in its order, and whether SWIR is among them.

    Examples
    --------
    >>> detector_inputs(["B02", "B03", "B04", "B8A"])
    (['B02', 'B03', 'B04', 'B8A'], False)
    """
    bands = [str(b) for b in bands]
    names = ["B02", "B03", "B04", "B08" if "B08" in bands else "B8A"]
    six = "B11" in bands and "B12" in bands
    return ([*names, "B11", "B12"] if six else names), six


def classify(
    coarse: np.ndarray, *, level: str, offset: tuple[int, int] = (0, 0),
    whole: tuple[int, int] | None = None, region: tuple[tuple[int, int], ...] | None = None,
) -> np.ndarray:  # fmt: skip
    """Classes of coarse (about 30 m) dates: clear, thick cloud or shadow, per pixel.

    Parameters
    ----------
    coarse
        ``(T, bands, H, W)`` float32 reflectance in :func:`detector_inputs` order.
    level
        ``"l1c"`` or ``"l2a"``: which of the models.
    offset, whole, region
        Where ``coarse`` lies in the whole coarse cube (its first row and column), that
        cube's size, and the rows and columns to classify (``((r0, r1), (c0, c1))``,
        r0 and c0 on the tile grid); ``coarse`` must hold :data:`MARGIN` pixels around
        ``region`` where the cube has them. Default: the whole cube. Pixels outside
        ``region`` (the halo) are 0.

    Returns
    -------
    numpy.ndarray
        uint8 ``(T, H, W)``: ``CLEAR``, ``THICK`` or ``SHADOW``.

    Examples
    --------
    An overcast and a clear date of the sample:

    >>> import xcloudfree
    >>> cube = xcloudfree.datasets.sample_timeseries().sel(time=["2018-04-11", "2018-07-30"])
    >>> bands, _ = detector_inputs(cube["band"].values)
    >>> classes = classify(coarsen(cube.sel(band=bands).values[..., :255, :255], 3), level="l1c")
    >>> [round(float((c == THICK).mean()), 1) for c in classes]
    [1.0, 0.0]
    """
    t, b, h, w = coarse.shape
    whole = (h, w) if whole is None else whole
    region = ((0, whole[0]), (0, whole[1])) if region is None else region
    session, name, mean, std = model_for(b == 6, level)
    out = np.zeros((t, h, w), np.uint8)
    windows = []
    for y0 in range(region[0][0], region[0][1], CORE):
        for x0 in range(region[1][0], region[1][1], CORE):
            core = [(y0, min(y0 + CORE, whole[0])), (x0, min(x0 + CORE, whole[1]))]
            win = [(max(c0 - MARGIN, 0), min(c1 + MARGIN, n)) for (c0, c1), n in zip(core, whole)]
            windows.append((core, win))
    for i in range(t):
        norm = (coarse[i] - mean) / std
        for k in range(0, len(windows), _BATCH):
            chunk = windows[k : k + _BATCH]
            batch = []
            for _, ((a0, a1), (b0, b1)) in chunk:
                tile = norm[:, a0 - offset[0] : a1 - offset[0], b0 - offset[1] : b1 - offset[1]]
                # A tile cut by the cube's edge is mirrored to full size, as ukis-csmask pads.
                pad = [(0, 0), (0, TILE - tile.shape[1]), (0, TILE - tile.shape[2])]
                batch.append(np.pad(tile, pad, mode="symmetric"))
            labels = session.run(None, {name: np.stack(batch)})[0].argmax(1)
            for lab, (((y0, y1), (x0, x1)), win) in zip(labels, chunk):
                part = lab[y0 - win[0][0] : y1 - win[0][0], x0 - win[1][0] : x1 - win[1][0]]
                out[i, y0 - offset[0] : y1 - offset[0], x0 - offset[1] : x1 - offset[1]] = part
    return np.select([out == 1, out == 2], [THICK, SHADOW], CLEAR).astype(np.uint8)


def coarsen(values: np.ndarray, factor: int) -> np.ndarray:
    """Block means over ``factor`` x ``factor`` pixels anchored at the first pixel.

    ``values`` is ``(T, bands, H, W)`` with H and W multiples of ``factor``; NaN counts
    as 0 (such a pixel is nodata in the mask anyway). The sum runs in a fixed order,
    so a block's mean is the same to the bit whichever chunk it is computed in.
    """
    clean = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
    total = np.zeros((*clean.shape[:2], clean.shape[2] // factor, clean.shape[3] // factor),
                     np.float32)  # fmt: skip
    for dy in range(factor):
        for dx in range(factor):
            total += clean[:, :, dy::factor, dx::factor]
    return total / np.float32(factor * factor)


def tile_chunks(size: tuple[int, int], factor: int, chunks) -> list[list[int]]:
    """Coarse chunk bounds per axis: whole tiles, about as large as the cube's ``chunks``.

    A last chunk no wider than the margin joins the one before it (a halo of the margin
    needs neighbours at least that wide).

    Examples
    --------
    >>> tile_chunks((1000, 300), 3, ((500, 500), (300,)))
    [[0, 192, 334], [0, 100]]
    """
    out = []
    for n, c in zip(size, chunks):
        whole = -(-n // factor)
        step = max(1, round(max(c) / factor / CORE)) * CORE
        bounds = [*range(0, whole, step), whole]
        if len(bounds) > 2 and bounds[-1] - bounds[-2] <= MARGIN:
            bounds.pop(-2)
        out.append(bounds)
    return out


def classify_native(
    block: np.ndarray, *, starts: list[list[int]], at: tuple[int, int], factor: int,
    level: str, size: tuple[int, int],
) -> np.ndarray:  # fmt: skip
    """Classes of one chunk at the cube's resolution, NODATA where a band is not finite.

    ``block`` is ``(T, bands, h, w)`` in :func:`detector_inputs` order: chunk ``at`` of
    the coarse chunk bounds ``starts`` (:func:`tile_chunks`, in coarse pixels), with
    ``MARGIN * factor`` pixels of its neighbours where it has them; ``size`` is the
    cube's ``(height, width)``. The cube's last row and column are repeated to fill
    the last block mean, and the result is cut back to the chunk.
    """
    core, offset, pad = [], [], []
    for axis in (0, 1):
        c0, c1 = starts[axis][at[axis]], starts[axis][at[axis] + 1]
        core.append((c0, c1))
        lead = MARGIN * factor if (c0 > 0 and len(starts[axis]) > 2) else 0
        offset.append(c0 - lead // factor)
        end = c0 * factor - lead + block.shape[2 + axis]  # native end of the block
        pad.append((0, -end % factor) if end == size[axis] else (0, 0))
    values = np.pad(block, ((0, 0), (0, 0), *pad), mode="edge")
    whole = tuple(-(-n // factor) for n in size)
    coarse = classify(coarsen(values, factor), level=level, offset=tuple(offset), whole=whole,
                      region=tuple(core))  # fmt: skip
    (y0, y1), (x0, x1) = core
    part = coarse[:, y0 - offset[0] : y1 - offset[0], x0 - offset[1] : x1 - offset[1]]
    native = part.repeat(factor, axis=1).repeat(factor, axis=2)
    h = min(y1 * factor, size[0]) - y0 * factor
    w = min(x1 * factor, size[1]) - x0 * factor
    native = native[:, :h, :w]
    lead_y, lead_x = (y0 - offset[0]) * factor, (x0 - offset[1]) * factor
    bad = ~np.isfinite(block[:, :, lead_y : lead_y + h, lead_x : lead_x + w]).all(1)
    return np.where(bad, NODATA, native).astype(np.uint8)
