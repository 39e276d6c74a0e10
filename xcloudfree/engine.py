"""Running the model over cubes: windows with a halo, batches of tiles, devices, dask.

The only module that knows about chunks, halos, batches and devices. A block
(numpy, or one dask chunk with its halo) is cut into overlapping windows of
``tile`` pixels; each window is run with ``halo`` pixels of context on every side
and only its interior is kept, so the result does not depend on the tiling or the
chunking (the halo covers the networks' receptive field). Windows of all dates to
be filled are batched together onto the device.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import dask.array as dsa
import numpy as np
import xarray as xr

from .baselines import _days
from .neighbours import nearest_dates

__all__ = ["fill_with_model", "model_cloud_probability", "resolve_device"]

#: Default window size in pixels (context included).
TILE = 512


def resolve_device(device: Any = "auto"):
    """``"auto"`` -> CUDA when available, else CPU; anything else as ``torch.device``."""
    import torch

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@functools.lru_cache(maxsize=8)
def _load_path(path: str, device: str):
    from .models import load_model

    model = load_model(path, device=device)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def get_model(model: Any, device: Any):
    """The model to run: ``None`` the shipped one, a path loaded once, or the object given."""
    from .models import HybridModel, pretrained

    dev = resolve_device(device)
    if model is None:
        return pretrained(str(dev))
    if isinstance(model, (str, os.PathLike)):
        return _load_path(os.fspath(model), str(dev))
    if isinstance(model, HybridModel):
        return model.to(dev).eval()
    raise TypeError(
        "model must be None (the shipped model), a path or a HybridModel, "
        f"got {type(model).__name__}"
    )


def _windows(n: int, tile: int, halo: int) -> list[tuple[int, int, int, int]]:
    """Windows along one axis as (read_start, read_stop, write_start, write_stop)."""
    core = max(tile - 2 * halo, 1)
    if n <= tile:
        return [(0, n, 0, n)]
    out = []
    for start in range(0, n, core):
        stop = min(start + core, n)
        out.append((max(0, start - halo), min(n, stop + halo), start, stop))
    return out


def _iter_windows(h: int, w: int, tile: int, halo: int):
    for ry0, ry1, wy0, wy1 in _windows(h, tile, halo):
        for rx0, rx1, wx0, wx1 in _windows(w, tile, halo):
            read = (slice(ry0, ry1), slice(rx0, rx1))
            keep = (slice(wy0 - ry0, wy1 - ry0), slice(wx0 - rx0, wx1 - rx0))
            write = (slice(wy0, wy1), slice(wx0, wx1))
            yield read, keep, write


def _batches(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def probability_block(
    block: np.ndarray, *, model: Any, device: Any, batch_size: int, tile: int
) -> np.ndarray:
    """Cloud probability ``(T, H, W)`` of a ``(T, C, H, W)`` core-first block (NaN stays NaN)."""
    import torch

    net = get_model(model, device)
    dev = next(net.parameters()).device
    halo = net.config.halo
    t, _, h, w = block.shape
    finite = np.isfinite(block[:, :4]).all(1)
    x = np.nan_to_num(block[:, :4].astype(np.float32))
    out = np.full((t, h, w), np.nan, np.float32)
    with torch.inference_mode():
        for read, keep, write in _iter_windows(h, w, tile, halo):
            for dates in _batches(list(range(t)), batch_size):
                window = x[dates[0] : dates[-1] + 1, :, read[0], read[1]]
                inp = torch.from_numpy(np.ascontiguousarray(window)).to(dev)
                prob = net.cloud_probability(inp)[:, 0].float().cpu().numpy()
                for j, d in enumerate(dates):
                    out[d][write[0], write[1]] = prob[j][keep[0], keep[1]]
    out[~finite] = np.nan
    return out


def fill_block(
    block: np.ndarray,
    *,
    bands: int,
    days: np.ndarray,
    model: Any,
    device: Any,
    batch_size: int,
    tile: int,
    k: int | None,
    stages: tuple[str, ...],
) -> np.ndarray:
    """Fill one block ``(T, 2C + 2, H, W)`` = data, base, cloud, mask -> ``(T, C, H, W)``."""
    import torch

    net = get_model(model, device)
    dev = next(net.parameters()).device
    halo = net.config.halo
    c = bands
    data, base = block[:, :c], block[:, c : 2 * c]
    cloud_in, mask = block[:, 2 * c], block[:, 2 * c + 1] > 0.5
    t, _, h, w = data.shape
    out = np.array(data, dtype=np.float32, copy=True)
    targets = [i for i in range(t) if mask[i].any()]
    if not targets:
        return out
    nan = ~np.isfinite(data).all(1)
    x = np.nan_to_num(data.astype(np.float32))
    cloud = np.where(nan, 1.0, np.nan_to_num(cloud_in, nan=1.0)).astype(np.float32)
    b = np.nan_to_num(base.astype(np.float32))
    m = mask.astype(np.float32)
    neighbours = nearest_dates(days, k or net.config.k)
    with torch.inference_mode():
        for read, keep, write in _iter_windows(h, w, tile, halo):
            ry, rx = read
            for group in _batches(targets, batch_size):
                idx = neighbours[group]
                # crop first (a view), then gather: only the window is copied
                tensors = [
                    x[:, :, ry, rx][idx],
                    cloud[:, ry, rx][idx][:, :, None],
                    b[:, :, ry, rx][group],
                    m[:, ry, rx][group][:, None],
                ]
                dates, cl, ba, mk = (
                    torch.from_numpy(np.ascontiguousarray(a)).to(dev) for a in tensors
                )
                pred = net(dates, cl, ba, mk, stages=stages).float().cpu().numpy()
                for j, target in enumerate(group):
                    out[target][:, write[0], write[1]] = pred[j][:, keep[0], keep[1]]
    out[np.broadcast_to(nan[:, None], out.shape)] = np.nan
    return out


def _map_with_halo(arr, block_fn, halo: int, bands: int | None):
    """Run ``block_fn`` on every spatial chunk of a 4-D dask array with a ``halo`` of context.

    The output has ``bands`` channels on axis 1, or loses axis 1 when ``bands`` is None.
    """
    ov = dsa.overlap.overlap(arr, depth={2: halo, 3: halo}, boundary="none")
    spatial = (ov.chunks[2], ov.chunks[3])
    if bands is None:
        out = ov.map_blocks(
            block_fn, drop_axis=1, dtype=np.float32, chunks=(ov.chunks[0], *spatial)
        )
        return dsa.overlap.trim_internal(out, {1: halo, 2: halo}, boundary="none")
    out = ov.map_blocks(block_fn, dtype=np.float32, chunks=(ov.chunks[0], (bands,), *spatial))
    return dsa.overlap.trim_internal(out, {2: halo, 3: halo}, boundary="none")


def model_cloud_probability(
    cube: xr.DataArray,
    *,
    model: Any = None,
    device: Any = "auto",
    batch_size: int = 8,
    tile: int = TILE,
) -> xr.DataArray:
    """The model's cloud probability ``(time, y, x)`` of a core-first cube, lazy on dask."""
    net = get_model(model, device)
    halo = net.config.halo
    kwargs = {"model": model, "device": device, "batch_size": batch_size, "tile": tile}
    coords = {k: v for k, v in cube.coords.items() if "band" not in v.dims}
    if cube.chunks is None:
        prob = probability_block(np.asarray(cube.values), **kwargs)
    else:
        prob = _map_with_halo(
            cube.data.rechunk({1: -1}), lambda blk: probability_block(blk, **kwargs), halo, None
        )
    return xr.DataArray(
        prob, dims=("time", "y", "x"), coords=coords, name="cloud_probability",
        attrs={"long_name": "cloud probability", "units": "1", "source": "xcloudfree mask head"},
    )  # fmt: skip


def fill_with_model(
    cube: xr.DataArray,
    cloud: xr.DataArray,
    mask: xr.DataArray,
    base: xr.DataArray,
    *,
    model: Any = None,
    device: Any = "auto",
    batch_size: int = 8,
    tile: int = TILE,
    k: int | None = None,
    stages: tuple[str, ...] = ("stgan", "cyclegan"),
) -> xr.DataArray:
    """Run the hybrid model on every date with masked pixels; lazy on dask.

    ``cube`` and ``base`` are core-first ``(time, band, y, x)``; ``cloud`` (each
    date's 0-1 cloud input to the networks, the fill mask as float in
    :func:`xcloudfree.remove`) and ``mask`` (where to fill) are ``(time, y, x)``.
    Returns a cube like ``cube``.
    """
    net = get_model(model, device)
    halo = net.config.halo
    c = cube.sizes["band"]
    parts = [
        cube,
        base,
        cloud.expand_dims(band=1, axis=1),
        mask.astype(np.float32).expand_dims(band=1, axis=1),
    ]
    kwargs = {
        "bands": c, "days": _days(cube["time"].values), "model": model, "device": device,
        "batch_size": batch_size, "tile": tile, "k": k, "stages": tuple(stages),
    }  # fmt: skip
    if cube.chunks is None and base.chunks is None:
        stacked = np.concatenate([np.asarray(p.values, dtype=np.float32) for p in parts], axis=1)
        out = fill_block(stacked, **kwargs)
    else:
        chunks = cube.chunks or base.chunks
        ychunks, xchunks = chunks[2], chunks[3]
        arrs = [
            dsa.asarray(p.data).astype(np.float32).rechunk((-1, -1, ychunks, xchunks))
            for p in parts
        ]
        stacked = dsa.concatenate(arrs, axis=1).rechunk({1: -1})
        out = _map_with_halo(stacked, lambda blk: fill_block(blk, **kwargs), halo, c)
    return cube.copy(data=out)
