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
import os
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
import rioxarray
import xarray as xr
from affine import Affine

__all__ = ["read_geotiff", "read_greenearthnet", "sample_timeseries"]

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
    data = dn.astype(np.float32)
    data *= np.float32(meta["scale"])  # in place: one cube-sized array, not two
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
    # in place: rioxarray's default deep-copies the cube for each attribute it writes
    cube.rio.write_crs(meta["crs"], inplace=True).rio.write_transform(transform, inplace=True)
    if bands is not None:
        from ..cube import band_id

        cube = cube.sel(band=[band_id(b) for b in bands])
    if chunks is not None:
        cube = cube.chunk(chunks)
    return cube


def read_geotiff(path: str | os.PathLike, *, time: Any = None, scale: float = 1e-4) -> xr.DataArray:
    """Read one Sentinel-2 GeoTIFF (bands named in its descriptions) as a one-date cube.

    Parameters
    ----------
    path
        A multi-band GeoTIFF whose band descriptions are band names (``B02``...).
    time
        Its acquisition date; default: the ``YYYY-MM-DD`` found in the file name.
    scale
        Factor from stored integers to reflectance (``1e-4`` for Sentinel-2 DN).

    Returns
    -------
    xarray.DataArray
        ``(time: 1, band, y, x)`` float32 reflectance with CRS (lazily read).

    Raises
    ------
    ValueError
        If no date is given and none is in the file name.

    Examples
    --------
    >>> import tempfile, pathlib, xcloudfree
    >>> bands = ["B02", "B03", "B04", "B08"]
    >>> one = xcloudfree.datasets.sample_timeseries().isel(time=12).sel(band=bands)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "S2_2018-05-31.tif"
    >>> dn = (one * 10000).round().astype("uint16")
    >>> dn.attrs["long_name"] = tuple(bands)  # written as the band descriptions
    >>> dn.rio.to_raster(path)
    >>> cube = read_geotiff(path)
    >>> cube.dims, [str(b) for b in cube.band.values], str(cube.time.values[0])[:10]
    (('time', 'band', 'y', 'x'), ['B02', 'B03', 'B04', 'B08'], '2018-05-31')
    """
    import re

    from ..cube import as_cube

    if time is None:
        found = re.search(r"\d{4}-\d{2}-\d{2}", os.path.basename(os.fspath(path)))
        if found is None:
            raise ValueError(f"no YYYY-MM-DD date in {os.fspath(path)!r}: pass time=")
        time = found.group(0)
    da = rioxarray.open_rasterio(path)
    da = da.expand_dims(time=[pd.Timestamp(time).to_datetime64()])
    return as_cube(da, scale=scale)


def read_greenearthnet(
    path: str | os.PathLike, *, classes: bool = False
) -> tuple[xr.DataArray, xr.DataArray]:
    """Read a GreenEarthNet L2A minicube: the acquired dates as a cube, and its cloud mask.

    Only days with an acquisition (``s2_avail == 1``) are kept; ``lat``/``lon``
    become ``y``/``x`` and the bands ``s2_B02 ... s2_B8A`` become ``B02 ... B8A``.

    Parameters
    ----------
    path
        The minicube's NetCDF file.
    classes
        Return the ``s2_dlmask`` classes (uint8, the mask classes of
        :mod:`xcloudfree.masking.classes`: 0 clear, 1 thick cloud, 2 thin cloud,
        3 cloud shadow; CloudSEN12's coding, which the dlmask follows) instead of
        the boolean ``s2_dlmask > 0``.

    Returns
    -------
    cube, mask : xarray.DataArray
        ``(time, band, y, x)`` float32 surface reflectance and the cloud mask
        ``(time, y, x)``: bool, or uint8 classes.

    Examples
    --------
    A GreenEarthNet minicube is not embedded in the package (the shared data has two):

    >>> cube, dlmask = read_greenearthnet("minicube.nc")  # doctest: +SKIP
    >>> cube.dims, dlmask.dims  # doctest: +SKIP
    (('time', 'band', 'y', 'x'), ('time', 'y', 'x'))
    """
    from ..cube import as_cube

    ds = xr.open_dataset(path)
    ds = ds.isel(time=np.flatnonzero(ds["s2_avail"].values == 1))
    bands = [v for v in ("s2_B02", "s2_B03", "s2_B04", "s2_B8A") if v in ds]
    cube = ds[bands].to_dataarray("band").transpose("time", "band", "lat", "lon")
    cube = cube.rename(lat="y", lon="x").astype(np.float32).load()
    cube.attrs = {"product": "Sentinel-2 L2A", "units": "1"}
    dl = ds["s2_dlmask"].rename(lat="y", lon="x")
    mask = (dl.fillna(0).astype(np.uint8) if classes else dl > 0).load()
    return as_cube(cube), mask.transpose("time", "y", "x").rename("cloud_mask")
