"""How the networks run: one entry point for mask + fill, and everything under it.

:func:`run` is the model path of :func:`xcloudfree.remove`: it chunks the cube for
the model's halo, resolves the cloud mask, and fills with the engine. Under it,
one module per concern:

:mod:`.engine`
    the block functions (cloud probability, fill) and the two dask passes;
:mod:`.halo`
    the halo graph: a block function over spatial chunks with context, built from
    dask's public graph specification;
:mod:`.devices`
    which device, batch sizes, mixed precision, one forward at a time;
:mod:`.modelcache`
    models loaded once per process and referred to by small picklable handles;
:mod:`.tiling`
    windows of a block on a common grid, so results do not depend on the chunking;
:mod:`.adaptation`
    the per-scene correction of the regression base learned from the scene itself;
:mod:`.guard`
    how much of the networks' change each date keeps, measured on the scene itself.

The networks themselves (pure torch) are in :mod:`xcloudfree.models`; options
arrive validated (:mod:`xcloudfree.options`). A second learned method needs a
network in :mod:`xcloudfree.models` and its block function here, nothing else.
"""

from __future__ import annotations

import xarray as xr

from ..chunking import apply_policy
from ..cube import core_first
from ..masking import resolve_mask
from ..options import RemovalOptions
from .engine import ADAPT_HALO, fill_with_model

__all__ = ["run"]


def run(
    cube: xr.DataArray, options: RemovalOptions, mask: xr.DataArray | None = None
) -> xr.Dataset:
    """Mask and fill a checked cube with the engine, lazily on dask.

    Parameters
    ----------
    cube
        A cube already checked by :func:`xcloudfree.as_cube`, in any band order.
    options
        Validated options with an engine (``method="hybrid"``, or ``adapt=True``).
    mask
        The caller's mask DataArray, exactly when ``options.mask`` is None.

    Returns
    -------
    xarray.Dataset
        ``reflectance`` in the cube's band order, ``quality``, ``cloud_mask`` and,
        for a computed mask, ``mask_class`` and ``cloud_probability``.

    Examples
    --------
    >>> import xcloudfree
    >>> cube = xcloudfree.datasets.sample_timeseries().isel(time=slice(12, 15), y=slice(0, 32),
    ...                                                     x=slice(0, 32))
    >>> out = run(cube, RemovalOptions.build("regression", adapt=True, progress=False))
    >>> sorted(out.data_vars)
    ['cloud_mask', 'cloud_probability', 'mask_class', 'quality', 'reflectance']
    """
    engine = options.engine
    if engine is None:
        raise ValueError(f"method={options.method!r} runs no network: use xcloudfree.remove")
    if engine.stages:
        halo = engine.network().config.halo + 1
    else:  # the adapted regression alone: its 3x3 layers, and the mask's dilation
        halo = max(ADAPT_HALO, (options.dilate or 2) + 1)
    order = cube["band"]
    ordered = apply_policy(core_first(cube), halo=halo)
    masks = resolve_mask(ordered, options.mask, mask)
    reflectance, quality = fill_with_model(
        ordered, masks["cloud_mask"], engine, progress=options.progress
    )
    reflectance = reflectance.sel(band=order.values).assign_coords(band=order)
    return masks.assign(reflectance=reflectance, quality=quality)
