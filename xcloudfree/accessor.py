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

    def mask(self, **kwargs: Any) -> xr.DataArray | tuple[xr.DataArray, xr.DataArray]:
        """Cloud mask (and with ``return_probability=True`` the probability);
        see :func:`xcloudfree.cloud_mask`."""
        from .masking import cloud_mask

        return cloud_mask(self._obj, **kwargs)

    def cloud_probability(self, **kwargs: Any) -> xr.DataArray:
        """Cloud probability (0-1); see :func:`xcloudfree.cloud_probability`."""
        from .masking import cloud_probability

        return cloud_probability(self._obj, **kwargs)

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
