"""Real Sentinel-2 sample data shipped inside the package.

The sample is read from package data with :mod:`importlib.resources`; nothing is
ever downloaded.

Attribution
-----------
Contains modified Copernicus Sentinel data (2018). The time series is ROI 146 of
SEN12MS-CR-TS: P. Ebel, Y. Xu, M. Schmitt, X. X. Zhu, "SEN12MS-CR-TS: A Remote
Sensing Data Set for Multi-modal Multi-temporal Cloud Removal", IEEE TGRS 2022
(Technical University of Munich; open data).
"""

from __future__ import annotations

import functools
import json
import lzma
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor used below)
import xarray as xr
from affine import Affine

__all__ = ["sample_timeseries"]

_SAMPLE = "roi146_timeseries"


@functools.lru_cache(maxsize=1)
def _read_sample() -> tuple[np.ndarray, dict[str, Any]]:
    files = resources.files("xcloudfree") / "data"
    meta = json.loads((files / f"{_SAMPLE}.json").read_text())
    raw = lzma.decompress((files / f"{_SAMPLE}.u16.xz").read_bytes())
    dn = np.frombuffer(raw, dtype="<u2").reshape(meta["shape"])
    dn.flags.writeable = False  # the cache hands out one array; copies are made below
    return dn, meta


def sample_timeseries(
    chunks: dict[str, int] | str | None = None, *, bands: list[str] | None = None
) -> xr.DataArray:
    """The embedded real 30-date Sentinel-2 L1C series of one place near Rome.

    256 x 256 pixels of about 10 m (EPSG:4326) north-east of Rome, 30 acquisitions
    from 2018-01-06 to 2018-12-22 with real clouds: about 16 clear dates, 6 partly
    cloudy and 8 overcast. Top-of-atmosphere reflectance (L1C), all bands on the
    10 m grid, stored losslessly in the package (about 11 MB).

    Source: ROI 146 of SEN12MS-CR-TS (Ebel et al., IEEE TGRS 2022, Technical
    University of Munich). Contains modified Copernicus Sentinel data 2018.

    Parameters
    ----------
    chunks
        Dask chunks (as for :meth:`xarray.DataArray.chunk`); ``None`` returns numpy.
    bands
        Subset of band IDs or names; default all ten: ``B02 B03 B04 B05 B06 B07 B08
        B8A B11 B12``.

    Returns
    -------
    xarray.DataArray
        A cube ``(time, band, y, x)`` of float32 reflectance (0-1) with CRS,
        transform and coordinates.

    Examples
    --------
    >>> cube = sample_timeseries()
    >>> cube.sizes["time"], cube.band.values.tolist()[:4], str(cube.rio.crs)
    (30, ['B02', 'B03', 'B04', 'B05'], 'EPSG:4326')
    """
    dn, meta = _read_sample()
    transform = Affine(*meta["transform"])
    ny, nx = dn.shape[-2:]
    x = transform.c + (np.arange(nx) + 0.5) * transform.a
    y = transform.f + (np.arange(ny) + 0.5) * transform.e
    data = dn.astype(np.float32) * np.float32(meta["scale"])
    cube = xr.DataArray(
        data,
        dims=("time", "band", "y", "x"),
        coords={
            "time": pd.to_datetime(meta["dates"]).values.astype("datetime64[ns]"),
            "band": list(meta["bands"]),
            "y": y,
            "x": x,
        },
        name="reflectance",
        attrs={
            "long_name": "top-of-atmosphere reflectance",
            "units": "1",
            "product": "Sentinel-2 L1C",
            "source": meta["source"],
            "attribution": meta["attribution"],
        },
    )
    cube = cube.rio.write_crs(meta["crs"]).rio.write_transform(transform)
    if bands is not None:
        from .cube import band_id

        cube = cube.sel(band=[band_id(b) for b in bands])
    if chunks is not None:
        cube = cube.chunk(chunks)
    return cube
