"""Writing a result of :func:`xcloudfree.remove` to Zarr or Cloud-Optimised GeoTIFFs.

What the command line writes, for Python users too (``out.cloudfree.to_zarr(...)``,
``out.cloudfree.to_cog(...)``): the CRS, band IDs, dates and the result's provenance
attrs travel with the files.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import xarray as xr

from .._progress import dask_progress
from ..errors import OptionError

__all__ = ["FORMATS", "to_cog", "to_zarr", "write_result"]

#: Output formats of :func:`write_result`.
FORMATS: tuple[str, ...] = ("zarr", "cog")

#: Per-date layers written as one multi-band GeoTIFF each (band i = date i), and their dtype.
_LAYERS = (
    ("cloud_mask", "uint8"), ("mask_class", "uint8"), ("fill_source", "uint8"),
    ("quality", "float32"), ("expected_error", "float32"), ("count", "uint16"),
)  # fmt: skip


def _for_zarr(result: xr.Dataset) -> xr.Dataset:
    ds = result.copy()
    if "cloud_mask" in ds:  # Zarr v3 and GDAL both read uint8, not bool
        ds["cloud_mask"] = ds["cloud_mask"].astype("uint8")
        ds["cloud_mask"].attrs.update(flag_values=[0, 1], flag_meanings="clear cloud")
    # Zarr v3 has no fixed-width unicode type; variable-length strings round-trip.
    return ds.assign_coords(band=ds["band"].astype(object))


def to_zarr(result: xr.Dataset, store: str | os.PathLike, *, progress: bool = True) -> Path:
    """Write a result (or a composite) to one Zarr store: every variable, the CRS and the attrs.

    ``cloud_mask`` is stored as uint8 (0/1, CF flags) and band labels as
    variable-length strings, so the store reads back in xarray and GDAL alike and
    writing raises no dtype warning. Lazy results are computed while writing.

    Parameters
    ----------
    result
        The Dataset from :func:`xcloudfree.remove`.
    store
        Local path of the store (replaced only once the new one is complete; for
        object stores use ``xarray.Dataset.to_zarr``).
    progress
        Show dask's progress bar while computing.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import xcloudfree, tempfile, pathlib
    >>> out = xcloudfree.remove(xcloudfree.datasets.sample_timeseries().isel(time=[0, 5]),
    ...                         method="nearest", progress=False)
    >>> path = to_zarr(out, pathlib.Path(tempfile.mkdtemp()) / "out.zarr", progress=False)
    >>> xr.open_zarr(path, consolidated=False)["reflectance"].dims
    ('time', 'band', 'y', 'x')
    """
    path = Path(store)
    markers = ("zarr.json", ".zgroup", ".zattrs")
    if path.exists() and not (path.is_dir() and any((path / m).exists() for m in markers)):
        raise OptionError(
            f"{path} exists and is not a Zarr store: writing would replace it; choose a "
            "new path, e.g. a name ending in .zarr"
        )
    # Written beside the target and moved in place when complete: a failed write (an
    # error in the graph, a full disk) leaves no store that opens as if it were whole.
    partial = path.with_name(f".{path.name}.partial-{uuid.uuid4().hex[:8]}")
    try:
        with dask_progress(progress):
            _for_zarr(result).to_zarr(partial, mode="w", consolidated=False)
        if path.exists():
            shutil.rmtree(path)
        os.replace(partial, path)
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    return path


def to_cog(
    result: xr.Dataset, directory: str | os.PathLike, *, progress: bool = True
) -> list[Path]:
    """Write a result (or a composite) as Cloud-Optimised GeoTIFFs, one per date plus layers.

    * ``reflectance_<date>.tif``: one band per spectral band, described by its ID
      (``B02``...), NaN as nodata, the date in the ``date`` tag;
    * ``cloud_mask.tif``, ``mask_class.tif``, ``fill_source.tif`` (uint8), ``quality.tif`` and
      ``expected_error.tif`` (float32) and, for a composite, ``count.tif`` (uint16),
      where the result has them: one band per date, each described by its date.

    Every file carries the result's attrs (method, mask, model, software) as tags.

    Parameters
    ----------
    result
        The Dataset from :func:`xcloudfree.remove` or :func:`xcloudfree.composite`;
        computed here if lazy.
    directory
        Created if needed.
    progress
        Show dask's progress bar while computing.

    Returns
    -------
    list of pathlib.Path
        What was written.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    with dask_progress(progress):
        result = result.compute()
    tags = {k: str(v) for k, v in result.attrs.items()}
    written = []
    times = [str(t)[:10] for t in result["time"].values]
    for i, date in enumerate(times):
        path = out / f"reflectance_{date}.tif"
        layer = result["reflectance"].isel(time=i)
        layer = layer.assign_attrs(long_name=tuple(str(b) for b in layer["band"].values))
        layer = layer.rio.write_nodata(np.nan, encoded=False)
        layer.rio.to_raster(path, driver="COG", compress="DEFLATE", tags={**tags, "date": date})
        written.append(path)
    for name, dtype in _LAYERS:
        if name not in result:
            continue
        layer = result[name].astype(dtype).rename(time="band")
        layer = layer.assign_coords(band=np.arange(1, len(times) + 1))
        flags = {  # CF flags of mask_class and fill_source, as text tags
            k: " ".join(map(str, np.atleast_1d(v)))
            for k, v in result[name].attrs.items()
            if k in ("flag_values", "flag_meanings")
        }
        layer.attrs = {"long_name": tuple(times)}
        path = out / f"{name}.tif"
        layer.rio.to_raster(
            path, driver="COG", compress="DEFLATE", tags={**tags, **flags, "dates": " ".join(times)}
        )
        written.append(path)
    return written


def write_result(
    result: xr.Dataset, out: str | os.PathLike, fmt: str = "zarr", *, progress: bool = True
) -> list[Path]:
    """Write the output of :func:`xcloudfree.remove` with its CRS, as the command line does.

    Parameters
    ----------
    result
        The Dataset from ``remove``.
    out
        A directory; created if needed.
    fmt
        ``"zarr"``: one store ``cloudfree.zarr`` (see :func:`to_zarr`). ``"cog"``:
        Cloud-Optimised GeoTIFFs (see :func:`to_cog`).
    progress
        Show dask's progress bar while computing.

    Returns
    -------
    list of pathlib.Path
        What was written.
    """
    if fmt not in FORMATS:
        raise OptionError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    out = Path(out)
    if fmt == "zarr":
        out.mkdir(parents=True, exist_ok=True)
        return [to_zarr(result, out / "cloudfree.zarr", progress=progress)]
    return to_cog(result, out, progress=progress)
