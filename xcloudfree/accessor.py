"""The ``DataArray.cloudfree`` accessor: thin bindings of the plain functions.

Each method calls the function of the same purpose with the DataArray first, so
``cube.cloudfree.remove(...)`` equals ``xcloudfree.remove(cube, ...)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import xarray as xr

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["CloudFreeAccessor"]


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

    def plot(self, result: xr.Dataset | None = None, **kwargs: Any) -> Figure:
        """True-colour quicklook with the cloud mask; see :func:`xcloudfree.plot`."""
        from .plotting import plot

        return plot(self._obj, result, **kwargs)
