"""Cloud shadows need a cloud: the geometric check on the shadow class.

A cloud's shadow lies on the ground displaced from the cloud away from the sun, by
the cloud's height over the tangent of the sun's elevation. A dark pixel with no
thick cloud anywhere within that distance cannot be a cloud shadow, whatever its
spectrum says: it is terrain shade under a low sun, dark forest, a wet field or a
burn scar. The temporal network alone called such pixels shadow on clear dates
(hillsides of the November clear patches, Sweden's forest on clear summer days),
and a fill then replaced real ground with another date.

The check here turns ``shadow`` into ``clear`` where no cloud is within the search
radius. The cloud evidence is the network's thick class, or a probability of thick
cloud above :data:`EVIDENCE_PROBABILITY` (thin haze alone casts no shadow a fill
needs to remove, and the network's thin class also covers haze veils, which would
let every shadow through). The radius is per date:

* from the cube's ``sun_elevation`` coordinate (degrees, per date, kept by
  :func:`xcloudfree.load_stac`) where there is one: :data:`CLOUD_HEIGHT_M` over
  ``tan(elevation)``, within :data:`MIN_RADIUS_M` - :data:`MAX_RADIUS_M`;
* :data:`MAX_RADIUS_M` otherwise (the widest search).

Limits: the search is isotropic (a square of that half-width), so a dark patch on the
sunward side of a cloud still passes; under a sun lower than about 27 degrees a 3 km
cloud's shadow can fall beyond the 6 km cap, and a cloud outside the cube (its shadow
inside) is not seen. A search along the sun's azimuth only was measured and not used:
on the Hungary cube (128 px, 2.6 km) it dropped 1673 of 15 811 reference shadow pixels,
mostly of clouds outside the cube.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import ndimage

from .classes import CLEAR, SHADOW, THICK

__all__ = [
    "CLOUD_HEIGHT_M",
    "EVIDENCE_PROBABILITY",
    "MAX_RADIUS_M",
    "MIN_RADIUS_M",
    "search_radius",
    "shadows_need_clouds",
]

#: Height of the highest cloud whose shadow is looked for (low and middle cloud cast
#: the dark shadows a fill must remove; cirrus shadows are faint).
CLOUD_HEIGHT_M = 3000.0
#: Bounds of the search radius: the high-sun floor, and the radius used when the sun's
#: elevation is unknown (a sun about 27 degrees high, a winter noon at 50 N).
MIN_RADIUS_M = 1000.0
MAX_RADIUS_M = 6000.0
#: Probability of thick cloud that counts as a cloud able to cast a shadow, chosen on
#: training dates by ``scripts/mask_shadow_rule.py``.
EVIDENCE_PROBABILITY = 0.2


def _pixel_metres(cube: xr.DataArray) -> float:
    """Pixel size in metres along x (degrees converted at the equator's 111 km)."""
    step = abs(float(cube["x"][1] - cube["x"][0])) if cube.sizes["x"] > 1 else 10.0
    return step * 111_000 if step < 0.1 else step  # degrees on a geographic grid


def search_radius(cube: xr.DataArray) -> np.ndarray:
    """Per date, in pixels: how far from a cloud its shadow may fall.

    Examples
    --------
    >>> import xcloudfree
    >>> cube = xcloudfree.datasets.sample_timeseries().isel(time=[0, 1])
    >>> search_radius(cube).tolist()  # 9.97 m pixels, sun elevation unknown: 6 km
    [602, 602]
    >>> search_radius(cube.assign_coords(sun_elevation=("time", [60.0, 20.0]))).tolist()
    [174, 602]
    """
    metres = np.full(cube.sizes["time"], MAX_RADIUS_M)
    if "sun_elevation" in cube.coords and cube.coords["sun_elevation"].dims == ("time",):
        elevation = np.asarray(cube.coords["sun_elevation"].values, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            reach = CLOUD_HEIGHT_M / np.tan(np.radians(elevation))
        known = np.isfinite(reach) & (elevation > 0)
        metres[known] = np.clip(reach[known], MIN_RADIUS_M, MAX_RADIUS_M)
    return np.ceil(metres / _pixel_metres(cube)).astype(int)


def _near(evidence: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Per date, the pixels within ``radius[t]`` (a square) of an evidence pixel."""
    out = np.empty_like(evidence)
    for t, r in enumerate(radius):
        if not evidence[t].any():  # the common clear date: nothing to grow
            out[t] = False
            continue
        # Two 1-D running maxima: O(pixels) whatever the radius.
        grown = ndimage.maximum_filter1d(evidence[t].view(np.uint8), 2 * int(r) + 1, axis=0)
        out[t] = ndimage.maximum_filter1d(grown, 2 * int(r) + 1, axis=1).view(bool)
    return out


def _clear_orphans(classes: np.ndarray, near: np.ndarray) -> np.ndarray:
    return np.where((classes == SHADOW) & ~near, np.uint8(CLEAR), classes)


def shadows_need_clouds(
    classes: xr.DataArray, p_thick: xr.DataArray, radius: np.ndarray
) -> xr.DataArray:
    """Call ``shadow`` pixels with no thick cloud within ``radius`` (per date) clear.

    Parameters
    ----------
    classes
        uint8 mask classes ``(time, y, x)`` before dilation.
    p_thick
        Probability of thick cloud, same shape (NaN where there is no data).
    radius
        Search radius in pixels per date, see :func:`search_radius`.

    Dask input stays lazy: a ``map_overlap`` of the bool cloud evidence with a halo of
    the largest radius, so the result does not depend on the chunking.

    Examples
    --------
    >>> cls = xr.DataArray(np.zeros((1, 1, 9), np.uint8), dims=("time", "y", "x"))
    >>> cls[0, 0, [0, 7]] = SHADOW; cls[0, 0, 8] = THICK
    >>> p = xr.zeros_like(cls, dtype=float).where(cls != THICK, 1.0)
    >>> shadows_need_clouds(cls, p, np.array([2])).values[0, 0].tolist()
    [0, 0, 0, 0, 0, 0, 0, 3, 1]
    """
    evidence = (classes == THICK) | (p_thick > EVIDENCE_PROBABILITY)
    data, ev = classes.data, evidence.data
    radius = np.asarray(radius, dtype=int)
    if isinstance(data, np.ndarray):
        out = _clear_orphans(data, _near(np.asarray(ev), radius))
    else:
        import dask.array as dsa

        # No wider than the scene: beyond it the filter already sees everything.
        depth = {0: 0, 1: min(int(radius.max()), data.shape[1] - 1),
                 2: min(int(radius.max()), data.shape[2] - 1)}  # fmt: skip
        near = ev.map_overlap(_near, depth=depth, boundary="none", dtype=bool, radius=radius)
        # dask widens chunks narrower than the halo; keep the classes' chunks.
        near = near.rechunk(data.chunks)
        out = dsa.map_blocks(_clear_orphans, data, near, dtype=np.uint8)
    return classes.copy(data=out)
