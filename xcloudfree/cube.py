"""The cube contract: checks, band names and scaling.

A *cube* is an :class:`xarray.DataArray` with dims ``("time", "band", "y", "x")``,
float32 reflectance on a 0-1 scale, ``time`` as ``datetime64`` (strictly
increasing) and ``band`` labelled with Sentinel-2 band IDs (``B01`` ... ``B12``,
``B8A``).  Coordinates, attributes and the CRS (rioxarray / odc-geo
``spatial_ref``) are carried through every operation.

Every public entry point of xcloudfree calls :func:`as_cube` once, so the checks
and their error messages live here alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .errors import BandError, CubeError, DimensionError, DTypeError, ScaleError, TimeError

__all__ = [
    "BAND_IDS",
    "CORE_BANDS",
    "DIMS",
    "as_cube",
    "band_id",
    "nir_band",
    "normalize_band_names",
    "rgb_bands",
]

DIMS: tuple[str, str, str, str] = ("time", "band", "y", "x")

#: Sentinel-2 MSI band IDs in wavelength order.
BAND_IDS: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07",
    "B08", "B8A", "B09", "B10", "B11", "B12",
)  # fmt: skip

#: Bands every method needs: blue, green, red and a NIR band (B08, or B8A where B08 is absent).
CORE_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B08")

# STAC common names (eo extension) and the asset keys of Earth Search v1
# (which uses common names) and Planetary Computer (which uses IDs).
_COMMON_NAMES: dict[str, str] = {
    "coastal": "B01",
    "blue": "B02",
    "green": "B03",
    "red": "B04",
    "rededge1": "B05",
    "rededge2": "B06",
    "rededge3": "B07",
    "nir": "B08",
    "nir08": "B8A",
    "nir09": "B09",
    "cirrus": "B10",
    "swir16": "B11",
    "swir22": "B12",
}


def _alias_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for band in BAND_IDS:
        short = band[1:].lstrip("0") or "0"  # "B02" -> "2", "B8A" -> "8A"
        for key in (band, f"B{short}", f"S2_{band}", f"S2_B{short}"):
            table[key.lower()] = band
    for name, band in _COMMON_NAMES.items():
        table[name] = band
    table["narrow_nir"] = "B8A"
    table["rededge4"] = "B8A"
    return table


_ALIASES = _alias_table()


def band_id(name: Any) -> str:
    """Return the Sentinel-2 band ID for a band label.

    Accepts IDs in any case and with or without the leading zero (``"b2"``,
    ``"B02"``), STAC common names (``"red"``, ``"nir08"``, ``"swir16"``), the
    Earth Search / Planetary Computer asset keys and ``s2_``-prefixed names.

    Parameters
    ----------
    name
        The label to normalise.

    Returns
    -------
    str
        The band ID, e.g. ``"B04"``.

    Raises
    ------
    BandError
        If the label is not a Sentinel-2 band.

    Examples
    --------
    >>> band_id("red"), band_id("b8a"), band_id("swir16"), band_id("B2")
    ('B04', 'B8A', 'B11', 'B02')
    """
    key = str(name).strip().lower()
    try:
        return _ALIASES[key]
    except KeyError:
        raise BandError(
            f"unknown band label {name!r}: use a Sentinel-2 band ID ({', '.join(BAND_IDS)}) "
            f"or a STAC common name ({', '.join(_COMMON_NAMES)})"
        ) from None


def normalize_band_names(cube: xr.DataArray) -> xr.DataArray:
    """Relabel the ``band`` coordinate with Sentinel-2 band IDs.

    Parameters
    ----------
    cube
        A DataArray with a ``band`` dimension labelled with IDs, common names or
        asset keys.

    Returns
    -------
    xarray.DataArray
        The same data with ``band`` labels such as ``"B04"``; order is kept.

    Raises
    ------
    BandError
        If a label is unknown, or two labels name the same band.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.zeros((2, 1, 1)), dims=("band", "y", "x"),
    ...                   coords={"band": ["red", "nir"]})
    >>> normalize_band_names(da).band.values.tolist()
    ['B04', 'B08']
    """
    if "band" not in cube.dims:
        raise DimensionError(f"the array has no 'band' dimension (dims are {cube.dims})")
    labels = cube["band"].values.tolist() if "band" in cube.coords else None
    if labels is None or all(isinstance(v, (int, np.integer)) for v in labels):
        long_name = cube.attrs.get("long_name")
        if isinstance(long_name, (list, tuple)) and len(long_name) == cube.sizes["band"]:
            labels = list(long_name)  # rioxarray keeps GeoTIFF band descriptions here
        else:
            raise BandError(
                "the 'band' coordinate holds no band names: label it, e.g. "
                "cube.assign_coords(band=['B02', 'B03', 'B04', 'B08'])"
            )
    ids = [band_id(v) for v in labels]
    seen: dict[str, Any] = {}
    for label, band in zip(labels, ids):
        if band in seen:
            raise BandError(
                f"bands {seen[band]!r} and {label!r} are both {band}: drop one, e.g. "
                f"cube.drop_sel(band={label!r})"
            )
        seen[band] = label
    out = cube.assign_coords(band=np.array(ids, dtype=object).astype(str))
    if "long_name" in out.attrs and isinstance(out.attrs["long_name"], (list, tuple)):
        out.attrs = {k: v for k, v in out.attrs.items() if k != "long_name"}
    return out


def nir_band(bands: Iterable[str]) -> str:
    """Return the NIR band to use: ``B08`` when present, else ``B8A``.

    Raises
    ------
    BandError
        If neither is present.

    Examples
    --------
    >>> nir_band(["B02", "B03", "B04", "B8A"])
    'B8A'
    """
    bands = list(bands)
    for cand in ("B08", "B8A"):
        if cand in bands:
            return cand
    raise BandError(
        f"no NIR band: the cube has {bands}, but needs B08 (or B8A where B08 is absent)"
    )


def rgb_bands() -> tuple[str, str, str]:
    """The band IDs of true-colour red, green, blue.

    Examples
    --------
    >>> rgb_bands()
    ('B04', 'B03', 'B02')
    """
    return ("B04", "B03", "B02")


def _check_core_bands(bands: Sequence[str], required: Sequence[str]) -> None:
    missing = []
    for band in required:
        if band == "B08" and "B8A" in bands:
            continue
        if band not in bands:
            missing.append(band)
    if missing:
        raise BandError(
            f"missing required band(s) {missing}; the cube has {list(bands)}. Load them too, "
            "e.g. xcloudfree.load_stac(..., bands=['blue', 'green', 'red', 'nir'])"
        )


def _check_time(cube: xr.DataArray) -> xr.DataArray:
    if "time" not in cube.coords:
        raise TimeError(
            "the cube has no 'time' coordinate: assign acquisition dates, e.g. "
            "cube.assign_coords(time=pd.to_datetime([...]))"
        )
    time = cube["time"]
    if isinstance(time.dtype, pd.DatetimeTZDtype):
        raise TimeError(
            f"'time' is timezone-aware ({time.dtype}); a cube's dates are UTC without a "
            "zone: cube.assign_coords(time=cube.indexes['time'].tz_convert(None))"
        )
    if time.dtype == object and time.size and hasattr(time.values[0], "calendar"):
        raise TimeError(
            "'time' holds cftime dates: convert them to numpy datetime64, e.g. "
            "cube.convert_calendar('standard', use_cftime=False)"
        )
    if not np.issubdtype(time.dtype, np.datetime64):
        raise TimeError(
            f"'time' has dtype {time.dtype}, not datetime64: convert it, e.g. "
            "cube.assign_coords(time=pd.to_datetime(cube.time.values))"
        )
    values = time.values
    if np.isnat(values).any():
        raise TimeError(
            "'time' holds NaT values: drop those dates, e.g. cube.isel(time=cube.time.notnull())"
        )
    if values.size > 1:
        step = np.diff(values.astype("datetime64[ns]").astype(np.int64))
        if (step == 0).any():
            dup = np.unique(values[1:][step == 0])
            raise TimeError(
                f"duplicated time(s) {[str(d)[:19] for d in dup]}: merge acquisitions of the same "
                "day first, e.g. cube.groupby('time').first() or load_stac(groupby='solar_day')"
            )
        if (step < 0).any():
            raise TimeError("'time' is not increasing: sort it first, cube.sortby('time')")
    return cube


def _check_dtype(dtype: np.dtype, scale: float | None) -> None:
    if dtype.kind not in "iuf":
        raise DTypeError(
            f"the cube has dtype {dtype}, which cannot hold reflectance: pass float reflectance "
            "(0-1) or integer DN with scale=, e.g. scale=1e-4 for Sentinel-2 DN"
        )
    if scale is None and np.issubdtype(dtype, np.integer):
        raise ScaleError(
            f"the cube holds integers ({dtype}), which look like digital numbers: pass "
            "scale= to convert them to 0-1 reflectance, e.g. scale=1e-4 for Sentinel-2 "
            "L1C/L2A DN (and offset=-0.1 for L2A processing baseline >= 04.00)"
        )


def _to_float32(cube: xr.DataArray, scale: float | None, offset: float) -> xr.DataArray:
    dtype = cube.dtype
    with xr.set_options(keep_attrs=True):
        if scale is None and offset == 0:
            return cube if dtype == np.float32 else cube.astype(np.float32)
        scale = 1.0 if scale is None else scale
        return (cube.astype(np.float32) * np.float32(scale) + np.float32(offset)).astype(np.float32)


# Cloud tops reach about 1.5-2 in TOA reflectance; anything far above is not on a 0-1 scale.
_MAX_PLAUSIBLE_REFLECTANCE = 5.0


def _check_values(cube: xr.DataArray) -> None:
    """Eager checks that need the values; skipped for dask arrays to keep them lazy."""
    if cube.chunks is not None or cube.size == 0:
        return
    values = cube.values
    finite = np.isfinite(values)
    if not finite.any():
        raise CubeError(
            "every value of the cube is NaN: check the load (bbox, time range, nodata) "
            "before removing clouds"
        )
    high = float(np.max(values, where=finite, initial=-np.inf))
    if high > _MAX_PLAUSIBLE_REFLECTANCE:
        raise ScaleError(
            f"the cube reaches {high:g}, so it is not reflectance on a 0-1 scale: pass "
            "scale=1e-4 if it holds Sentinel-2 values x 10000"
        )


def band_variables(ds: xr.Dataset) -> tuple[list, list, Any]:
    """Split the variables of an odc-stac style Dataset: bands, others, and the SCL.

    Examples
    --------
    >>> ds = xr.Dataset({"red": 1, "nir": 2, "SCL": 3, "ndvi": 4})
    >>> band_variables(ds)
    (['red', 'nir'], ['ndvi'], 'SCL')
    """
    bands, other, scl = [], [], None
    for name in ds.data_vars:
        if str(name).lower() == "scl":
            scl = name
            continue
        try:
            band_id(str(name))
        except BandError:
            other.append(name)
        else:
            bands.append(name)
    return bands, other, scl


def _from_band_dataset(ds: xr.Dataset) -> xr.DataArray:
    """Stack an odc-stac style Dataset (one variable per band) into a cube."""
    bands, other, scl = band_variables(ds)
    if other or not bands:
        raise DimensionError(
            f"got an xarray.Dataset whose variables {other or list(ds.data_vars)} are not "
            "Sentinel-2 bands: a cube is one variable per band (as odc.stac.load gives) "
            "or a DataArray; pick the bands, e.g. ds[['B02', 'B03', 'B04', 'B08']], or "
            "stack them: ds[bands].to_dataarray('band').transpose('time', 'band', 'y', 'x')"
        )
    spatial = {k: v for k, v in {"latitude": "y", "longitude": "x"}.items() if k in ds.dims}
    ds = ds.rename(spatial)
    cube = ds[bands].to_dataarray("band")
    if set(cube.dims) == set(DIMS):
        cube = cube.transpose(*DIMS)
    if scl is not None:
        cube = cube.assign_coords(scl=ds[scl])
    cube.name = "reflectance"
    cube.attrs = dict(ds.attrs)
    return cube


def as_cube(
    obj: Any,
    *,
    scale: float | None = None,
    offset: float = 0.0,
    required_bands: Sequence[str] | None = CORE_BANDS,
    check_values: bool = True,
) -> xr.DataArray:
    """Validate an input against the cube contract and return it as a cube.

    Parameters
    ----------
    obj
        A DataArray with dims ``("time", "band", "y", "x")``, or an odc-stac style
        Dataset with one ``(time, y, x)`` variable per band (named by band ID or
        common name; an ``scl``/``SCL`` variable becomes the ``scl`` coordinate).
    scale, offset
        For integer (DN) input: ``reflectance = DN * scale + offset``. Integer input
        without ``scale`` is refused.
    required_bands
        Bands that must be present (``B08`` is satisfied by ``B8A``). ``None``
        requires nothing.
    check_values
        Check eager (numpy) input for an all-NaN cube and values far above 1.
        Dask input is never read here, so it stays lazy.

    Returns
    -------
    xarray.DataArray
        Float32 cube with normalised band labels; coordinates, attributes and CRS
        are those of the input.

    Raises
    ------
    DimensionError, BandError, ScaleError, DTypeError, TimeError, CubeError
        Each with a message that names the problem and the fix.

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> dn = xr.DataArray(
    ...     np.full((2, 4, 3, 3), 1200, dtype="uint16"), dims=("time", "band", "y", "x"),
    ...     coords={"time": pd.date_range("2024-01-01", periods=2),
    ...             "band": ["blue", "green", "red", "nir"]})
    >>> cube = as_cube(dn, scale=1e-4)
    >>> str(cube.dtype), cube.band.values.tolist(), round(float(cube.max()), 4)
    ('float32', ['B02', 'B03', 'B04', 'B08'], 0.12)
    """
    if isinstance(obj, xr.Dataset):
        obj = _from_band_dataset(obj)
    if not isinstance(obj, xr.DataArray):
        raise DimensionError(
            f"expected an xarray.DataArray with dims {DIMS}, got {type(obj).__name__}"
        )
    cube = obj
    if tuple(cube.dims) != DIMS:
        if set(cube.dims) == set(DIMS):
            raise DimensionError(
                f"the cube's dims are {cube.dims}, not in the order {DIMS}: "
                "cube.transpose('time', 'band', 'y', 'x')"
            )
        hint = ""
        if {"lat", "lon"} <= set(cube.dims) or {"latitude", "longitude"} <= set(cube.dims):
            hint = " Rename geographic dims, e.g. cube.rename(lat='y', lon='x')."
        elif "time" not in cube.dims:
            hint = " A single date needs a time axis too: cube.expand_dims(time=[date])."
        raise DimensionError(f"the cube's dims are {cube.dims}, expected {DIMS}.{hint}")
    cube = normalize_band_names(cube)
    if required_bands:
        _check_core_bands(cube["band"].values.tolist(), required_bands)
    cube = _check_time(cube)
    _check_dtype(cube.dtype, scale)
    if scale is not None and cube.dtype.kind == "f" and cube.chunks is None and cube.size:
        _check_not_scaled_twice(cube, scale)
    cube = _mask_nodata(cube)
    cube = _to_float32(cube, scale, offset)
    if check_values:
        _check_values(cube)
    return cube


def declared_nodata(cube: xr.DataArray) -> float | None:
    """The nodata value a cube declares (rioxarray's ``rio.write_nodata``, a
    ``_FillValue`` or ``nodata`` attribute or encoding), or None; NaN counts as none.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> declared_nodata(xr.DataArray(np.zeros(2), attrs={"_FillValue": 0}))
    0.0
    """
    for source in (cube.attrs, cube.encoding):
        for key in ("_FillValue", "nodata", "missing_value"):
            value = source.get(key)
            if value is not None and np.ndim(value) == 0 and not np.isnan(float(value)):
                return float(value)
    return None


def _mask_nodata(cube: xr.DataArray) -> xr.DataArray:
    """Declared nodata, and DN 0 of integer Sentinel-2 input, become NaN: missing, not ground.

    Sentinel-2 L1C and L2A products write 0 for "no data" (valid DN start at 1).
    """
    nodata = declared_nodata(cube)
    integer = cube.dtype.kind in "iu"
    if nodata is None and not integer:
        return cube
    missing = cube == nodata if nodata is not None else False
    if integer:
        missing = missing | (cube == 0)
    with xr.set_options(keep_attrs=True):
        out = cube.astype(np.float32).where(~missing)
    # The declaration is honoured: NaN now stands for it, and writers write NaN.
    for source in (out.attrs, out.encoding):
        for key in ("_FillValue", "nodata", "missing_value"):
            source.pop(key, None)
    return out


def _check_not_scaled_twice(cube: xr.DataArray, scale: float) -> None:
    top = float(np.nanmax(np.abs(cube.values))) if np.isfinite(cube.values).any() else 0.0
    if scale < 0.01 and 0 < top <= _MAX_PLAUSIBLE_REFLECTANCE:
        raise ScaleError(
            f"scale={scale} was given, but the cube is float with values up to {top:.3g}: it "
            "already holds 0-1 reflectance. Drop scale= (it is for integer or 0-10000 DN)"
        )


def core_first(cube: xr.DataArray) -> xr.DataArray:
    """Reorder bands so that blue, green, red and NIR come first, the rest after.

    This is the band order the models expect; :func:`xcloudfree.remove` restores
    the caller's order afterwards.

    Raises
    ------
    BandError
        If a core band is missing.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> c = xr.DataArray(np.zeros((1, 5, 1, 1)), dims=DIMS,
    ...                  coords={"band": ["B11", "B8A", "B04", "B03", "B02"]})
    >>> [str(b) for b in core_first(c).band.values]
    ['B02', 'B03', 'B04', 'B8A', 'B11']
    """
    bands = [str(b) for b in cube["band"].values]
    core = ["B02", "B03", "B04", nir_band(bands)]
    _check_core_bands(bands, core)
    return cube.sel(band=core + [b for b in bands if b not in core])
