"""Benchmark cubes: the embedded real sample, mirror-tiled to a larger area."""

from __future__ import annotations

import numpy as np
import xarray as xr

import xcloudfree

# Dates of the sample with real partial clouds and clear neighbours (not all-cloudy).
DATES = slice(10, 18)


def tiled_sample(size: int, dates: slice = DATES) -> xr.DataArray:
    """The sample's ``dates`` mirror-padded to ``size`` x ``size`` px, in memory.

    Mirroring keeps the result real imagery without a seam of its own; the
    coordinates continue the sample's grid.
    """
    cube = xcloudfree.datasets.sample_timeseries().isel(time=dates)
    n = cube.sizes["y"]
    reps = -(-size // n)
    data = cube.values
    rows = [np.flip(data, 2) if i % 2 else data for i in range(reps)]
    data = np.concatenate(rows, axis=2)
    cols = [np.flip(data, 3) if i % 2 else data for i in range(reps)]
    data = np.concatenate(cols, axis=3)[:, :, :size, :size]
    step_y = float(cube.y[1] - cube.y[0])
    step_x = float(cube.x[1] - cube.x[0])
    coords = {
        "time": cube.time,
        "band": cube.band,
        "y": float(cube.y[0]) + step_y * np.arange(size),
        "x": float(cube.x[0]) + step_x * np.arange(size),
    }
    out = xr.DataArray(data, dims=cube.dims, coords=coords, attrs=cube.attrs)
    return out.rio.write_crs(cube.rio.crs)
