"""The ``cloudfree`` accessors: thin bindings of the plain functions.

``DataArray.cloudfree`` is for a cube: each method calls the function of the same
purpose with the DataArray first, so ``cube.cloudfree.remove(...)`` equals
``xcloudfree.remove(cube, ...)``. ``Dataset.cloudfree`` is for the result of
``remove()``: writing it and looking at it.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import xarray as xr

from .errors import CubeError
from .fills.composite import composite
from .io.writers import to_cog, to_zarr
from .masking import cloud_mask, cloud_probability, mask_classes
from .metrics import summary
from .plotting import plot
from .removal import remove

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _bind(
    func: Callable[..., Any], *, name: str | None = None, owner: str = "CloudFreeAccessor"
) -> Callable[..., Any]:
    """An accessor method calling ``func`` with the accessor's object first.

    The method carries ``func``'s docstring and signature (less its first
    parameter), as rioxarray's accessor methods do, so ``help()`` and tab completion
    show the real options.
    """

    @functools.wraps(func)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return func(self._obj, *args, **kwargs)

    params = list(inspect.signature(func).parameters.values())[1:]
    this = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    method.__signature__ = inspect.signature(func).replace(parameters=[this, *params])
    method.__name__ = name or func.__name__
    method.__qualname__ = f"{owner}.{method.__name__}"
    del method.__wrapped__  # inspect.signature would follow it back to func
    return method


__all__ = ["CloudFreeAccessor", "CloudFreeResultAccessor"]


@xr.register_dataarray_accessor("cloudfree")
class CloudFreeAccessor:
    """Cloud removal, masks, metrics and quicklooks on a ``(time, band, y, x)`` cube.

    Registered on :class:`xarray.DataArray` by ``import xcloudfree``.

    Examples
    --------
    >>> import xcloudfree
    >>> cube = xcloudfree.datasets.sample_timeseries().isel(time=slice(12, 16))
    >>> out = cube.cloudfree.remove(method="nearest")
    >>> out.identical(xcloudfree.remove(cube, method="nearest"))
    True
    """

    def __init__(self, obj: xr.DataArray) -> None:
        self._obj = obj

    remove = _bind(remove)
    mask = _bind(cloud_mask, name="mask")
    mask_classes = _bind(mask_classes)
    cloud_probability = _bind(cloud_probability)
    metrics = _bind(summary, name="metrics")

    def composite(
        self, freq: str = "1MS", *, min_quality: float = 0.0, method: str = "hybrid",
        **kwargs: Any,
    ) -> xr.Dataset:  # fmt: skip
        """Cloud-free composites per period: :func:`xcloudfree.remove` (``method`` and
        ``**kwargs``) then :func:`xcloudfree.composite` (``freq``, ``min_quality``)."""
        return composite(remove(self._obj, method, **kwargs), freq, min_quality=min_quality)

    plot = _bind(plot)


@xr.register_dataset_accessor("cloudfree")
class CloudFreeResultAccessor:
    """Results of :func:`xcloudfree.remove` (write, plot, composite) and odc-stac style
    band Datasets (remove, mask) on :class:`xarray.Dataset`.

    Registered by ``import xcloudfree``. A Dataset with one ``(time, y, x)``
    variable per band, as ``odc.stac.load`` returns it, is a cube too:
    ``ds.cloudfree.remove()`` equals ``xcloudfree.remove(ds)``.

    Examples
    --------
    >>> import xcloudfree, tempfile
    >>> cube = xcloudfree.datasets.sample_timeseries().isel(time=slice(12, 16))
    >>> out = cube.cloudfree.remove(method="nearest")
    >>> files = out.cloudfree.to_cog(tempfile.mkdtemp(), progress=False)
    >>> sorted(p.name for p in files)[:2]
    ['cloud_mask.tif', 'fill_source.tif']
    >>> bands = cube.to_dataset("band")  # one variable per band, as odc-stac loads
    >>> bands.cloudfree.remove(method="nearest").identical(out)
    True
    """

    def __init__(self, obj: xr.Dataset) -> None:
        self._obj = obj

    def _result(self, *need: str) -> xr.Dataset:
        missing = [name for name in ("reflectance", *need) if name not in self._obj]
        if missing:
            raise CubeError(
                f"this works on a result of xcloudfree.remove() (it needs {missing}); this "
                f"Dataset has {sorted(map(str, self._obj.data_vars))}: remove clouds first, "
                "e.g. ds.cloudfree.remove()"
            )
        return self._obj

    # For band Datasets (odc-stac style): the cube functions, which accept them.
    remove = _bind(remove, owner="CloudFreeResultAccessor")
    mask_classes = _bind(mask_classes, owner="CloudFreeResultAccessor")

    def to_zarr(self, store: str | os.PathLike, *, progress: bool = True) -> Path:
        """Write a result or composite to one Zarr store (:func:`xcloudfree.io.writers.to_zarr`)."""
        return to_zarr(self._result(), store, progress=progress)

    def to_cog(self, directory: str | os.PathLike, *, progress: bool = True) -> list[Path]:
        """Write a result or composite as Cloud-Optimised GeoTIFFs; see
        :func:`xcloudfree.io.writers.to_cog`."""
        return to_cog(self._result(), directory, progress=progress)

    def composite(self, freq: str = "1MS", *, min_quality: float = 0.0) -> xr.Dataset:
        """Quality-weighted composites of a result per period; see
        :func:`xcloudfree.composite`."""
        return composite(self._result("quality"), freq, min_quality=min_quality)

    def plot(self, cube: xr.DataArray | None = None, **kwargs: Any) -> Figure:
        """Quicklook of a result (and of the input ``cube`` if given); see
        :func:`xcloudfree.plot`."""
        return plot(cube, self._result("cloud_mask"), **kwargs)
