"""Cloud-free composites: a removal result reduced to one image per period, by quality.

What Pangeo users build today with a median of masked data, but from the gap-filled
result and weighted by its per-pixel ``quality``: observed clear pixels (quality 1)
count fully, filled pixels by how sure their fill is, pixels with nothing to fill from
(quality 0) not at all. Lazy on dask like the result.
"""

from __future__ import annotations

import pandas as pd
import xarray as xr

from ..errors import CubeError, OptionError

__all__ = ["composite"]


def composite(result: xr.Dataset, freq: str = "1MS", *, min_quality: float = 0.0) -> xr.Dataset:
    """Quality-weighted composites of a :func:`xcloudfree.remove` result, one per period.

    Parameters
    ----------
    result
        The Dataset from ``remove`` (``reflectance`` and ``quality``).
    freq
        Any pandas frequency: ``"1MS"`` (calendar months, labelled by their first
        day), ``"QS-DEC"`` (seasons), ``"16D"``, ``"YS"``...
    min_quality
        Pixels of lower quality get no weight (0 keeps every filled pixel; 1 keeps
        observed clear pixels only, a masked mean composite).

    Returns
    -------
    xarray.Dataset
        ``reflectance`` ``(time, band, y, x)``: per period and pixel the mean of the
        result weighted by ``quality``, NaN where no date of the period has weight;
        ``quality`` ``(time, y, x)``: the weighted mean quality of what went in (1 =
        all observed clear); ``count`` ``(time, y, x)``: dates with weight. ``time``
        is the label of each period. Coordinates, CRS and attrs are kept.

    Raises
    ------
    CubeError
        If ``result`` is not a result of ``remove``.
    OptionError
        For a frequency pandas does not know or ``min_quality`` outside 0-1.

    Examples
    --------
    >>> import xcloudfree
    >>> cube = xcloudfree.datasets.sample_timeseries().sel(time=slice("2018-05", "2018-07"))
    >>> out = xcloudfree.remove(cube, method="nearest", progress=False)
    >>> monthly = composite(out, "1MS")
    >>> [str(t)[:7] for t in monthly.time.values], monthly.reflectance.dims
    (['2018-05', '2018-06', '2018-07'], ('time', 'band', 'y', 'x'))
    """
    if not isinstance(result, xr.Dataset) or not {"reflectance", "quality"} <= set(result):
        raise CubeError(
            "composite() takes the Dataset that xcloudfree.remove() returns (reflectance and "
            "quality): composite(xcloudfree.remove(cube), freq), or cube.cloudfree.composite(freq)"
        )
    if not 0 <= min_quality <= 1:
        raise OptionError(f"min_quality={min_quality} is outside 0-1: e.g. 0 or 0.5")
    try:
        pd.tseries.frequencies.to_offset(freq)
    except ValueError as err:
        raise OptionError(
            f"freq={freq!r} is not a pandas frequency ({err}): e.g. '1MS' (months), "
            "'QS-DEC' (seasons), '16D', 'YS'"
        ) from None
    quality = result["quality"]
    weight = quality.where(quality >= min_quality).where(quality > 0).fillna(0)
    refl = result["reflectance"]
    # Periods without a date come out NaN from resample; NaN, not 0, divides without
    # a warning.
    total = weight.resample(time=freq).sum().fillna(0)
    divisor = total.where(total > 0)
    reflectance = (refl * weight).resample(time=freq).sum() / divisor
    mean_quality = (quality.fillna(0) * weight).resample(time=freq).sum() / divisor
    count = (weight > 0).resample(time=freq).sum().fillna(0).astype("uint16")
    reflectance = reflectance.astype(refl.dtype).transpose(*refl.dims)
    reflectance.attrs = refl.attrs
    out = xr.Dataset(
        {
            "reflectance": reflectance,
            "quality": mean_quality.astype("float32"),
            "count": count,
        },
        attrs={**result.attrs, "composite": f"quality-weighted mean per {freq}"},
    )
    out["quality"].attrs = {"long_name": "weighted mean quality of the dates composited"}
    out["count"].attrs = {"long_name": "dates with weight in the composite"}
    if "spatial_ref" in result.coords:
        out = out.assign_coords(spatial_ref=result["spatial_ref"])
    return out
