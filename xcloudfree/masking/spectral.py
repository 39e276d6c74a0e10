"""The documented per-date spectral cloud test (``method="spectral"``).

A per-date test on top-of-atmosphere or surface reflectance that needs only the
core bands:

* **brightness**: clouds are bright in blue, ``B02 > 0.14``;
* **haze-optimised transform** (HOT, Zhang et al. 2002): clouds and haze raise blue
  much more than red, ``B02 - 0.5 * B04 > 0.07``; bright soil, sand and urban
  surfaces are bright in blue too but fail this test;
* **cirrus**: where band ``B10`` is present (L1C only), ``B10 > 0.01`` flags thin
  cirrus that the visible bands barely see.

A pixel is cloudy when it passes both the brightness and HOT tests, or the cirrus
test.  ``cloud_probability`` is the same logic with each threshold softened by a
logistic ramp, so ``cloud_probability > 0.5`` is exactly the mask before dilation.
The thresholds were chosen on the real ``s2cloudless_scene`` reference mask of the
shared data. It finds no shadows and flags bright bare fields; the default mask of
:func:`xcloudfree.remove` is the temporal one of :mod:`xcloudfree.masking`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from scipy import ndimage

from ..cube import as_cube
from ..errors import OptionError

__all__ = ["cloud_probability", "dilate_mask"]

BLUE_THRESHOLD = 0.14
HOT_THRESHOLD = 0.07
CIRRUS_THRESHOLD = 0.01
# Widths of the logistic ramps around each threshold (reflectance units).
_BLUE_SOFTNESS = 0.02
_HOT_SOFTNESS = 0.015
_CIRRUS_SOFTNESS = 0.002


def _sigmoid(x: xr.DataArray) -> xr.DataArray:
    return 1.0 / (1.0 + np.exp(-x))


def cloud_probability(
    cube: xr.DataArray,
    *,
    scale: float | None = None,
    method: str = "spectral",
    model: Any = None,
    device: Any = "auto",
    batch_size: int | None = None,
    dtype: str = "float32",
    progress: bool = True,
) -> xr.DataArray:
    """Per-pixel cloud probability from the spectral test or the model's mask head.

    Parameters
    ----------
    cube
        A cube (see :func:`xcloudfree.as_cube`) with at least ``B02`` and ``B04``
        (``"spectral"``) or B02, B03, B04 and B08/B8A (``"model"``).
    scale
        Passed to :func:`~xcloudfree.as_cube` for integer (DN) input.
    method
        ``"spectral"`` (the documented test, no torch needed) or ``"model"`` (the
        cloud-mask head of the hybrid model, the default mask of
        :func:`xcloudfree.remove`).
    model, device, batch_size, dtype
        For ``"model"``: the model (default: the shipped one), its device, windows
        per forward pass and arithmetic precision, as for :func:`xcloudfree.remove`.
    progress
        For ``"model"`` on numpy input: show a progress bar.

    Returns
    -------
    xarray.DataArray
        ``cloud_probability`` (time, y, x), float32 in 0-1; NaN where the input is
        NaN. Lazy for dask input.

    Examples
    --------
    >>> import xcloudfree
    >>> cube = xcloudfree.datasets.sample_timeseries().isel(time=[0, 2])
    >>> p = cloud_probability(cube)
    >>> p.dims, float(p.isel(time=1).mean()) > float(p.isel(time=0).mean())
    (('time', 'y', 'x'), True)
    """
    if method == "model":
        from ..options import EngineOptions

        options = EngineOptions(model=model, device=device, batch_size=batch_size, dtype=dtype)
        return checked_probability(as_cube(cube, scale=scale), method, options, progress)
    if method != "spectral":
        raise OptionError(f"unknown mask method {method!r}: choose 'spectral' or 'model'")
    cube = as_cube(cube, scale=scale, required_bands=("B02", "B04"))
    return checked_probability(cube, method)


def checked_probability(
    cube: xr.DataArray, method: str, options: Any = None, progress: bool = False
) -> xr.DataArray:
    """:func:`cloud_probability` of a cube already checked by :func:`~xcloudfree.as_cube`.

    ``options`` (:class:`~xcloudfree.options.EngineOptions`, validated) run the
    ``"model"`` head; the spectral test needs none.
    """
    if method == "model":
        from ..cube import core_first
        from ..inference.engine import model_cloud_probability

        return model_cloud_probability(core_first(cube), options, progress=progress)
    if not {"B02", "B04"} <= {str(b) for b in cube["band"].values}:
        as_cube(cube, required_bands=("B02", "B04"))  # the BandError that names the fix
    blue = cube.sel(band="B02", drop=True)
    red = cube.sel(band="B04", drop=True)
    bright = (blue - BLUE_THRESHOLD) / _BLUE_SOFTNESS
    hot = (blue - 0.5 * red - HOT_THRESHOLD) / _HOT_SOFTNESS
    # min() of the margins is a soft AND: both tests must pass.
    prob = _sigmoid(np.minimum(bright, hot))
    if "B10" in cube["band"].values:
        cirrus = _sigmoid((cube.sel(band="B10", drop=True) - CIRRUS_THRESHOLD) / _CIRRUS_SOFTNESS)
        prob = np.maximum(prob, cirrus)
    prob = prob.astype(np.float32)
    prob.name = "cloud_probability"
    prob.attrs = {
        "long_name": "cloud probability",
        "units": "1",
        "description": "spectral cloud test (brightness and HOT, cirrus where B10 exists)",
    }
    return prob


def _dilate_block(block: np.ndarray, radius: int) -> np.ndarray:
    footprint = _disk(radius)[None]  # no dilation across time
    return ndimage.binary_dilation(block, structure=footprint)


def _disk(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return (yy**2 + xx**2) <= radius**2 + radius  # rounder than a strict circle at small radii


def dilate_mask(mask: xr.DataArray, radius: int) -> xr.DataArray:
    """Grow a boolean ``(time, y, x)`` mask by ``radius`` pixels in space.

    Dask input stays lazy and is processed with ``map_overlap`` using a halo of
    ``radius`` pixels, so the result does not depend on the chunking.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> m = xr.DataArray(np.zeros((1, 5, 5), bool), dims=("time", "y", "x"))
    >>> m[0, 2, 2] = True
    >>> int(dilate_mask(m, 1).sum())
    9
    """
    if radius <= 0:
        return mask
    if tuple(mask.dims) != ("time", "y", "x"):
        raise ValueError(f"dilate_mask needs dims ('time', 'y', 'x'), got {mask.dims}")
    data = mask.data
    if isinstance(data, np.ndarray):
        out = _dilate_block(data, radius)
    else:
        out = data.map_overlap(
            _dilate_block,
            depth={0: 0, 1: radius, 2: radius},
            boundary="none",
            dtype=bool,
            radius=radius,
        )
    return mask.copy(data=out)
