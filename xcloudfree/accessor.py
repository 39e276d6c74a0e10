"""The ``cloudfree`` accessors: thin bindings of the plain functions.

``DataArray.cloudfree`` is for a cube: each method calls the function of the same
purpose with the DataArray first, so ``cube.cloudfree.remove(...)`` equals
``xcloudfree.remove(cube, ...)``. ``Dataset.cloudfree`` is for the result of
``remove()``: writing it and looking at it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import xarray as xr

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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

    def remove(self, method: str = "hybrid", **kwargs: Any) -> xr.Dataset:
        """Remove clouds; see :func:`xcloudfree.remove`."""
        from .removal import remove

        return remove(self._obj, method, **kwargs)

    def mask(self, *args: Any, **kwargs: Any) -> xr.DataArray | tuple[xr.DataArray, xr.DataArray]:
        """The cloud mask that :meth:`remove` applies with the same arguments (and with
        ``return_probability=True`` the probability); see :func:`xcloudfree.cloud_mask`."""
        from .masking import cloud_mask

        return cloud_mask(self._obj, *args, **kwargs)

    def mask_classes(self, *args: Any, **kwargs: Any) -> xr.Dataset:
        """Mask class (clear, thick, thin/haze, shadow, snow, nodata), bool mask and
        probability per pixel and date; see :func:`xcloudfree.mask_classes`."""
        from .masking import mask_classes

        return mask_classes(self._obj, *args, **kwargs)

    def cloud_probability(self, *args: Any, **kwargs: Any) -> xr.DataArray:
        """Probability (0-1) of cloud, haze or shadow; see :func:`xcloudfree.cloud_probability`."""
        from .masking import cloud_probability

        return cloud_probability(self._obj, *args, **kwargs)

    def metrics(
        self, reference: xr.DataArray, mask: xr.DataArray | None = None, **kwargs: Any
    ) -> xr.Dataset:
        """Scalar quality metrics of this cube against ``reference``;
        see :func:`xcloudfree.metrics.summary`."""
        from .metrics import summary

        return summary(self._obj, reference, mask=mask, **kwargs)

    def composite(
        self, freq: str = "1MS", *, min_quality: float = 0.0, method: str = "hybrid",
        **kwargs: Any,
    ) -> xr.Dataset:  # fmt: skip
        """Cloud-free composites per period: :func:`xcloudfree.remove` (``method`` and
        ``**kwargs``) then :func:`xcloudfree.composite` (``freq``, ``min_quality``)."""
        from .composite import composite
        from .removal import remove

        return composite(remove(self._obj, method, **kwargs), freq, min_quality=min_quality)

    def plot(self, result: xr.Dataset | None = None, **kwargs: Any) -> Figure:
        """True-colour quicklook with the cloud mask; see :func:`xcloudfree.plot`."""
        from .plotting import plot

        return plot(self._obj, result, **kwargs)


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
    ['cloud_mask.tif', 'mask_class.tif']
    >>> bands = cube.to_dataset("band")  # one variable per band, as odc-stac loads
    >>> bands.cloudfree.remove(method="nearest").identical(out)
    True
    """

    def __init__(self, obj: xr.Dataset) -> None:
        self._obj = obj

    def _result(self, *need: str) -> xr.Dataset:
        missing = [name for name in ("reflectance", *need) if name not in self._obj]
        if missing:
            from .errors import CubeError

            raise CubeError(
                f"this works on a result of xcloudfree.remove() (it needs {missing}); this "
                f"Dataset has {sorted(map(str, self._obj.data_vars))}: remove clouds first, "
                "e.g. ds.cloudfree.remove()"
            )
        return self._obj

    def remove(self, method: str = "hybrid", **kwargs: Any) -> xr.Dataset:
        """Remove clouds from a band Dataset; see :func:`xcloudfree.remove`."""
        from .removal import remove

        return remove(self._obj, method, **kwargs)

    def mask_classes(self, *args: Any, **kwargs: Any) -> xr.Dataset:
        """Mask classes of a band Dataset; see :func:`xcloudfree.mask_classes`."""
        from .masking import mask_classes

        return mask_classes(self._obj, *args, **kwargs)

    def to_zarr(self, store: str | os.PathLike, *, progress: bool = True) -> Path:
        """Write a result or composite to one Zarr store; see :func:`xcloudfree.writers.to_zarr`."""
        from .writers import to_zarr

        return to_zarr(self._result(), store, progress=progress)

    def to_cog(self, directory: str | os.PathLike, *, progress: bool = True) -> list[Path]:
        """Write a result or composite as Cloud-Optimised GeoTIFFs; see
        :func:`xcloudfree.writers.to_cog`."""
        from .writers import to_cog

        return to_cog(self._result(), directory, progress=progress)

    def composite(self, freq: str = "1MS", *, min_quality: float = 0.0) -> xr.Dataset:
        """Quality-weighted composites of a result per period; see
        :func:`xcloudfree.composite`."""
        from .composite import composite

        return composite(self._result("quality"), freq, min_quality=min_quality)

    def plot(self, cube: xr.DataArray | None = None, **kwargs: Any) -> Figure:
        """Quicklook of a result (and of the input ``cube`` if given); see
        :func:`xcloudfree.plot`."""
        from .plotting import plot

        return plot(cube, self._result("cloud_mask"), **kwargs)
