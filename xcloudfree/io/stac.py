"""Search a STAC API for Sentinel-2 scenes and load them as a lazy reflectance cube.

:func:`load_stac` searches with :mod:`pystac_client` and loads with :mod:`odc.stac`;
:func:`load_items` does the loading part for items you already have.  Both return a
cube as defined in :mod:`xcloudfree.cube`: dims ``("time", "band", "y", "x")``,
float32 reflectance on a 0-1 scale with NaN where there is no data, ``band``
labelled with Sentinel-2 band IDs, ``time`` sorted, the CRS in the ``spatial_ref``
coordinate (read by both ``cube.odc`` and ``cube.rio``), and dask-backed: nothing is
read until you compute.

Turning digital numbers into reflectance
----------------------------------------
odc-stac (0.5) reads the ``nodata`` and ``data_type`` of ``raster:bands`` but not
``scale`` or ``offset``: it returns the raw DN.  The conversion therefore happens
here, per item and per band, so nothing is applied twice::

    reflectance = (DN + offset / scale) * scale      (NaN where DN == nodata)

``scale`` is the asset's declared ``raster:bands`` scale (``1e-4`` for Sentinel-2
when none is declared; ``1`` for float assets).  ``offset`` harmonises processing
baselines: since baseline 04.00 (January 2022, and every reprocessed "05.xx"
scene) L2A DN carry ``BOA_ADD_OFFSET = -1000``, i.e. ``reflectance = (DN - 1000) /
10000``, so old and new scenes only agree once it is removed.  For each item:

1. ``earthsearch:boa_offset_applied`` is true: Earth Search already removed the
   offset from the pixels, so the offset is 0, whatever ``raster:bands`` declares
   (those items still declare ``-0.1``; applying it would subtract it twice).
2. otherwise a non-zero declared offset (Earth Search's ``-0.1``) is used as is;
3. otherwise ``s2:processing_baseline >= 04.00`` (Planetary Computer declares no
   offset) gives ``-1000 * scale``, i.e. ``-0.1``;
4. otherwise the declared offset, or 0.

The rule needs the metadata to be right: a catalog that labels harmonised pixels
as raw (Earth Search has had such items) cannot be told apart from its metadata.

Items of one solar day are fused into one time step by odc-stac, in DN.  Items
whose calibration differs are kept in separate groups during the load and fused
afterwards in reflectance, so a mosaic of an old- and a new-baseline tile still
agrees across the seam.
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pystac
import xarray as xr

from ..chunking import chunk_size
from ..cube import DIMS, band_id
from ..errors import BandError, StacError

__all__ = [
    "DEFAULT_BANDS",
    "DEFAULT_CATALOG",
    "DEFAULT_CHUNKS",
    "DEFAULT_COLLECTION",
    "load_items",
    "load_stac",
]

#: Earth Search v1 (Element 84, AWS): public, no sign-in, Sentinel-2 L2A COGs.
DEFAULT_CATALOG = "https://earth-search.aws.element84.com/v1"
DEFAULT_COLLECTION = "sentinel-2-l2a"

#: The 10 and 20 m surface bands; B01, B09 (60 m, atmosphere) and B10 (absent in L2A) are
#: left out because cloud removal gains nothing from them.
DEFAULT_BANDS: tuple[str, ...] = (
    "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12",
)  # fmt: skip

#: Every date in one chunk (cloud removal needs a pixel's whole series, see
#: :mod:`xcloudfree.chunking`) and 1024 x 1024 px, made smaller where a task would
#: exceed the task-memory budget for the number of dates and bands loaded.
DEFAULT_CHUNKS: dict[str, int] = {"time": -1, "y": 1024, "x": 1024}

# Sentinel-2 DN are reflectance x 10000; used when an asset declares no scale.
_S2_SCALE = 1e-4
# BOA_ADD_OFFSET (L2A) / RADIO_ADD_OFFSET (L1C) of processing baseline >= 04.00, in DN.
_BASELINE_4_OFFSET_DN = -1000.0
_BASELINE_4 = 4.0
# Sentinel-2 marks no-data with DN 0; used when an asset declares no nodata.
_S2_NODATA = 0

# Arguments of odc.stac.load that load_stac sets itself.
_RESERVED_ODC_KWARGS = frozenset({"items", "bands", "groupby", "chunks", "dtype"})
_GRID_KWARGS = frozenset({"geobox", "like"})
_EXTENT_KWARGS = frozenset({"geopolygon", "intersects", "x", "y", "lon", "lat", "bbox"})

# RFC 3339 dates, possibly partial ("2024", "2024-06"), as the STAC API accepts them.
_DATE_RE = re.compile(r"^\d{4}(-\d{2}(-\d{2}([T ].+)?)?)?$")


# --------------------------------------------------------------------------- arguments


def _check_bbox(bbox: Any) -> tuple[float, float, float, float]:
    try:
        values = tuple(float(v) for v in bbox)
    except (TypeError, ValueError):
        raise StacError(
            f"bbox={bbox!r} is not four numbers: pass (west, south, east, north) in degrees, "
            "e.g. bbox=(12.45, 41.85, 12.55, 41.95)"
        ) from None
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise StacError(
            f"bbox={bbox!r} is not four finite numbers: pass (west, south, east, north) in "
            "degrees, e.g. bbox=(12.45, 41.85, 12.55, 41.95)"
        )
    west, south, east, north = values
    if not (
        -180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= 90 and -90 <= north <= 90
    ):
        raise StacError(
            f"bbox={values} is outside longitude -180..180 / latitude -90..90: pass "
            "(west, south, east, north) in degrees (EPSG:4326), not projected metres"
        )
    if west >= east:
        raise StacError(
            f"bbox west ({west}) is not less than east ({east}): the order is "
            "(west, south, east, north); swap them, or split a box that crosses the antimeridian"
        )
    if south >= north:
        raise StacError(
            f"bbox south ({south}) is not less than north ({north}): the order is "
            "(west, south, east, north)"
        )
    return values


def _check_geometry(geometry: Any) -> Mapping[str, Any]:
    """A GeoJSON Polygon or MultiPolygon dict from a dict, a Feature or a ``__geo_interface__``."""
    geo = getattr(geometry, "__geo_interface__", geometry)
    if isinstance(geo, Mapping) and geo.get("type") == "Feature":
        geo = geo.get("geometry")
    if not isinstance(geo, Mapping) or geo.get("type") not in ("Polygon", "MultiPolygon"):
        kind = geo.get("type") if isinstance(geo, Mapping) else type(geo).__name__
        raise StacError(
            f"intersects= must be a GeoJSON Polygon or MultiPolygon in degrees, got {kind}: "
            'e.g. {"type": "Polygon", "coordinates": [[[12.4, 41.8], [12.6, 41.8], '
            "[12.6, 42.0], [12.4, 41.8]]]}, or a shapely polygon"
        )
    return geo


def _geometry_bounds(geometry: Mapping[str, Any]) -> tuple[float, float, float, float]:
    coords = np.asarray([pt for ring in _rings(geometry) for pt in ring], dtype=float).reshape(
        -1, 2
    )
    if not len(coords):
        raise StacError("intersects= has no coordinates: pass a polygon with at least one ring")
    west, south = coords.min(0)
    east, north = coords.max(0)
    return _check_bbox((west, south, east, north))


def _rings(geometry: Mapping[str, Any]) -> list:
    if geometry["type"] == "Polygon":
        return list(geometry["coordinates"])
    return [ring for polygon in geometry["coordinates"] for ring in polygon]


def _parse_instant(value: Any, *, end: bool) -> pd.Timestamp | None:
    """One end of a time range as naive UTC; a partial date's end is the end of its period."""
    if value is None or (isinstance(value, str) and value.strip() in ("", "..")):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not _DATE_RE.match(text):
            raise ValueError(text)
        stamp = pd.Timestamp(text)
        if end and len(text) in (4, 7, 10):
            step = {4: pd.DateOffset(years=1), 7: pd.DateOffset(months=1), 10: pd.Timedelta("1D")}
            stamp = stamp + step[len(text)] - pd.Timedelta("1ns")
    elif isinstance(value, (_dt.date, np.datetime64, pd.Timestamp)):
        stamp = pd.Timestamp(value)
    else:
        raise ValueError(repr(value))
    if pd.isna(stamp):
        raise ValueError(repr(value))
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp


def _check_time(time: Any) -> str | list[Any]:
    """Validate ``time`` and return it in a form pystac-client accepts."""
    parts: list[Any]
    if isinstance(time, str):
        parts = time.split("/")
    elif isinstance(time, (_dt.date, np.datetime64, pd.Timestamp)):
        parts = [time]
    elif isinstance(time, Sequence) and not isinstance(time, (bytes, bytearray)):
        parts = list(time)
    else:
        parts = []
    # A calendar date means the whole day, as the string "2024-06-01" does.
    parts = [
        p.isoformat() if isinstance(p, _dt.date) and not isinstance(p, _dt.datetime) else p
        for p in parts
    ]
    if not 1 <= len(parts) <= 2:
        raise StacError(
            f"time={time!r} is not a date or a date range: pass e.g. '2024-06', "
            "'2024-06-01/2024-08-31' or ('2024-06-01', '2024-08-31')"
        )
    try:
        start = _parse_instant(parts[0], end=False)
        stop = _parse_instant(parts[-1], end=True)
    except (ValueError, TypeError, OverflowError) as err:
        raise StacError(
            f"time={time!r} holds an invalid date ({err}): use ISO 8601 dates such as "
            "'2024-06-01', '2024-06' or '2024-06-01T10:30:00Z', and '..' for an open end"
        ) from None
    if len(parts) == 2 and start is None and stop is None:
        raise StacError(
            f"time={time!r} is open at both ends: give at least one date, e.g. '2024-06-01/..'"
        )
    if len(parts) == 1 and start is None:
        raise StacError(f"time={time!r} is empty: pass a date or a range such as '2024-06/2024-08'")
    if start is not None and stop is not None and start > stop:
        raise StacError(f"time={time!r} starts after it ends: pass 'start/end' with start <= end")

    # pystac-client expands partial dates ("2024-06") to whole periods itself.
    def _as_client(v: Any) -> Any:
        if isinstance(v, str):
            v = v.strip()
            return ".." if v == "" else v
        if v is None:
            return ".."
        stamp = pd.Timestamp(v)
        return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).to_pydatetime()

    converted = [_as_client(v) for v in parts]
    if all(isinstance(v, str) for v in converted):
        return "/".join(converted)
    return [None if v == ".." else v for v in converted]


def _check_bands(bands: str | Iterable[Any] | None) -> list[str]:
    if bands is None:
        return list(DEFAULT_BANDS)
    if isinstance(bands, str):
        bands = [bands]
    try:
        ids = [band_id(b) for b in bands]
    except BandError as err:
        raise StacError(str(err)) from None
    if not ids:
        raise StacError("bands=[] selects nothing: pass band IDs or common names, or None")
    duplicated = sorted({b for b in ids if ids.count(b) > 1})
    if duplicated:
        raise StacError(
            f"bands= names {duplicated} more than once (names are mapped to band IDs): "
            "list each band once"
        )
    return ids


# --------------------------------------------------------------------------- assets


def _asset_band(key: str, asset: pystac.Asset) -> tuple[str, int] | None:
    """The band ID an asset holds and a rank (lower is better), or None for other assets."""
    roles = set(asset.roles or [])
    if roles & {"thumbnail", "overview", "metadata", "visual"}:
        return None
    media = (asset.media_type or "").lower()
    cog = "tiff" in media or (not media and asset.href.lower().endswith((".tif", ".tiff")))
    try:
        # Earth Search keys are common names ("red"), Planetary Computer's are IDs ("B04").
        return band_id(key), 0 if cog else 2
    except BandError:
        pass
    # Fall back on the eo:bands / STAC 1.1 bands names, e.g. a key like "red-jp2".
    for entry in asset.extra_fields.get("eo:bands", []) + asset.extra_fields.get("bands", []):
        if not isinstance(entry, Mapping):
            continue
        for field in ("common_name", "eo:common_name", "name"):
            if entry.get(field):
                try:
                    return band_id(entry[field]), 1 if cog else 3
                except BandError:
                    continue
    return None


def _band_assets(item: pystac.Item, bands: Sequence[str]) -> dict[str, str]:
    """Band ID -> asset key in one item; StacError naming the band if one is missing."""
    found: dict[str, tuple[int, str]] = {}
    for key, asset in item.assets.items():
        hit = _asset_band(key, asset)
        if hit is not None and (hit[0] not in found or hit[1] < found[hit[0]][0]):
            found[hit[0]] = (hit[1], key)
    missing = [b for b in bands if b not in found]
    if missing:
        have = sorted(found, key=lambda b: DEFAULT_BANDS.index(b) if b in DEFAULT_BANDS else 99)
        raise StacError(
            f"item {item.id!r} has no asset for band(s) {missing}; it holds bands {have} "
            f"(asset keys {sorted(item.assets)}): request only those, e.g. bands={have[:4]}"
        )
    return {b: found[b][1] for b in bands}


def _first_band(asset: pystac.Asset) -> Mapping[str, Any]:
    for field in ("raster:bands", "bands"):
        entries = asset.extra_fields.get(field)
        if isinstance(entries, list) and entries and isinstance(entries[0], Mapping):
            return entries[0]
    return {}


def _declared(asset: pystac.Asset, name: str) -> float | None:
    """``scale``/``offset``/``nodata`` of raster extension v1 (per band) or v2 (``raster:*``)."""
    band = _first_band(asset)
    for source, key in (
        (band, name),
        (band, f"raster:{name}"),
        (asset.extra_fields, f"raster:{name}"),
    ):
        value = source.get(key)
        if value is not None:
            return float(value)
    return None


def _baseline(item: pystac.Item) -> float | None:
    for key in ("s2:processing_baseline", "sentinel:processing_baseline", "processing:version"):
        value = item.properties.get(key)
        if value is not None:
            try:
                return float(value)
            except (TypeError, ValueError):
                return None
    return None


def _calibration(item: pystac.Item, asset: pystac.Asset) -> tuple[Any, ...]:
    """Facts that fix one asset's DN -> reflectance conversion; resolved by :func:`_resolve`."""
    baseline = _baseline(item)
    return (
        _declared(asset, "scale"),
        _declared(asset, "offset"),
        baseline is not None and baseline >= _BASELINE_4,
        item.properties.get("earthsearch:boa_offset_applied") is True,
    )


def _resolve(facts: tuple[Any, ...], integer: bool) -> tuple[float, float]:
    """(scale, offset in DN) from the facts of :func:`_calibration`; see the module notes."""
    scale, offset, new_baseline, already_applied = facts
    if scale is None or scale == 0:
        scale = _S2_SCALE if integer else 1.0
    if already_applied:
        return scale, 0.0
    if offset:
        return scale, offset / scale
    if new_baseline and integer:
        return scale, _BASELINE_4_OFFSET_DN
    return scale, 0.0


# --------------------------------------------------------------------------- grouping


def _solar_day(item: pystac.Item) -> _dt.date:
    # Local solar date from the footprint's centre, as odc-stac's "solar_day" computes it.
    when = item.datetime or pd.Timestamp(item.properties["start_datetime"]).to_pydatetime()
    lon = 0.0
    if item.bbox:
        lon = (item.bbox[0] + item.bbox[2]) / 2
    return (when + _dt.timedelta(seconds=int(lon / 15) * 3600)).date()


def _base_key(item: pystac.Item, index: int, groupby: str) -> Hashable:
    if groupby == "solar_day":
        return _solar_day(item)
    if groupby == "time":
        return pd.Timestamp(item.datetime or item.properties["start_datetime"]).value
    if groupby == "id":
        return index
    value = item.properties.get(groupby)
    return "" if value is None else str(value)


# --------------------------------------------------------------------------- loading


def load_items(
    items: Iterable[pystac.Item],
    *,
    bands: str | Iterable[str] | None = None,
    resolution: float | None = 10,
    crs: Any = None,
    chunks: Mapping[str, int] | None = None,
    groupby: str | None = "solar_day",
    bbox: Sequence[float] | None = None,
    scl: bool = False,
    **odc_kwargs: Any,
) -> xr.DataArray:
    """Load STAC items as a lazy float32 reflectance cube.

    The loading half of :func:`load_stac`, for items found another way (a saved
    item collection, your own search).  Items must already be signed where the
    catalog needs it.

    Parameters
    ----------
    items
        Sentinel-2 items (L2A or L1C) with one asset per band.
    bands, resolution, crs, chunks, groupby, scl, **odc_kwargs
        As in :func:`load_stac`.
    bbox
        ``(west, south, east, north)`` in degrees to crop to; None keeps the union of
        the items' footprints.

    Returns
    -------
    xarray.DataArray
        The cube, backed by dask; see :func:`load_stac`.

    Raises
    ------
    StacError
        No items, an item without a requested band, a bad ``bbox``, or a
        resolution that cannot be meant for the CRS.

    Examples
    --------
    >>> import pystac
    >>> items = pystac.ItemCollection.from_file("scenes.json")  # doctest: +SKIP
    >>> cube = load_items(items, bands=["red", "green", "blue", "nir"])  # doctest: +SKIP
    """
    import odc.stac  # imported here: it pulls in GDAL, which plain cube work never needs

    items = list(items)
    if not items:
        raise StacError("no items to load: pass at least one STAC item")
    band_ids = _check_bands(bands)
    box = _check_bbox(bbox) if bbox is not None else None
    group_mode = "id" if groupby is None else groupby
    if not isinstance(group_mode, str):
        raise TypeError(
            f"groupby must be 'solar_day', 'time', 'id' or a property name, not {groupby!r}"
        )
    _check_odc_kwargs(odc_kwargs)

    # Asset keys per band.  odc-stac loads by key, so items of different catalogs that
    # name a band differently get a common key (the band ID) on in-memory copies.
    per_item = [_band_assets(item, band_ids) for item in items]
    keys: dict[str, str] = {}
    for band in band_ids:
        used = {mapping[band] for mapping in per_item}
        keys[band] = used.pop() if len(used) == 1 else band
    if any(mapping[b] != keys[b] for mapping in per_item for b in band_ids):
        items = [item.clone() for item in items]
        for item, mapping in zip(items, per_item):
            for band in band_ids:
                if mapping[band] != keys[band]:
                    item.assets[keys[band]] = item.assets[mapping[band]].clone()

    scl_keys = {_scl_asset(item) for item in items} if scl else set()
    if len(scl_keys) > 1:  # one key for odc-stac, as for the bands
        items = [item.clone() for item in items]
        for item in items:
            item.assets["scl"] = item.assets[_scl_asset(item)].clone()
        scl_keys = {"scl"}
    scl_key = scl_keys.pop() if scl_keys else None

    # Group keys carry the calibration so odc-stac never fuses DN of different baselines.
    facts = [tuple(_calibration(item, item.assets[keys[b]]) for b in band_ids) for item in items]
    base = [_base_key(item, i, group_mode) for i, item in enumerate(items)]
    group_keys = [(b, f) for b, f in zip(base, facts)]
    slices = sorted(set(group_keys), key=lambda k: (k[0], repr(k[1])))
    order = {k: i for i, k in enumerate(slices)}
    rank = [order[k] for k in group_keys]

    if chunks is None:
        side = chunk_size(len(slices), len(band_ids), size=DEFAULT_CHUNKS["y"])
        chunk_spec: dict[str, int] = {**DEFAULT_CHUNKS, "y": side, "x": side}
    else:  # dims not named keep the default: every date in one chunk, as remove() needs
        chunk_spec = {"time": DEFAULT_CHUNKS["time"], **dict(chunks)}
    band_chunk = chunk_spec.pop("band", -1)

    load_kwargs: dict[str, Any] = dict(odc_kwargs)
    if not _GRID_KWARGS & set(odc_kwargs):
        load_kwargs.setdefault("crs", crs)
        load_kwargs.setdefault("resolution", resolution)
        if box is not None and not _EXTENT_KWARGS & set(odc_kwargs):
            load_kwargs["bbox"] = box
    load_kwargs = {k: v for k, v in load_kwargs.items() if v is not None}
    if scl_key is not None:
        # Classes are never interpolated, whatever the bands are resampled with.
        resampling = load_kwargs.get("resampling") or "nearest"
        if isinstance(resampling, str):
            resampling = {"*": resampling}
        load_kwargs["resampling"] = {**resampling, scl_key: "nearest"}

    try:
        ds = odc.stac.load(
            items,
            bands=[keys[b] for b in band_ids] + ([scl_key] if scl_key else []),
            # Our ranks as the group key: odc-stac sorts groups by it, so time step i is slices[i].
            groupby=lambda item, parsed, idx: rank[idx],
            chunks=chunk_spec,
            **load_kwargs,
        )
    except ValueError as err:
        raise StacError(
            f"odc-stac could not load the items ({err}): check bbox, crs and resolution "
            "(resolution is in the units of the CRS)"
        ) from err
    if ds.sizes["time"] != len(slices):  # pragma: no cover - guards the grouping contract
        raise StacError(
            f"odc-stac made {ds.sizes['time']} time steps from {len(slices)} groups; "
            "please report this with your odc-stac version"
        )

    geobox = ds.odc.geobox
    if geobox is not None and geobox.crs is not None and geobox.crs.geographic:
        if abs(geobox.resolution.x) >= 0.5:
            name = f"EPSG:{geobox.crs.epsg}" if geobox.crs.epsg else "geographic"
            raise StacError(
                f"resolution={resolution} is read in degrees because the output CRS is "
                f"{name} (lon/lat): pass crs='utm' to work in metres, resolution=None "
                "for the native grid, or a resolution in degrees (about 0.0001 for 10 m)"
            )

    dn = ds[[keys[b] for b in band_ids]].to_dataarray("band")
    spatial = {"latitude": "y", "longitude": "x"}
    dn = dn.rename({k: v for k, v in spatial.items() if k in dn.dims})

    # Per time step x band calibration, resolved with each band's loaded dtype.
    integer = [np.issubdtype(ds[keys[b]].dtype, np.integer) for b in band_ids]
    resolved = np.array(
        [[_resolve(f, integer[j]) for j, f in enumerate(key[1])] for key in slices],
        dtype=np.float64,
    )
    scale = xr.DataArray(resolved[..., 0].astype(np.float32), dims=("time", "band"))
    offset_dn = xr.DataArray(resolved[..., 1].astype(np.float32), dims=("time", "band"))
    nodata = xr.DataArray([_nodata_of(ds[keys[b]]) for b in band_ids], dims="band")
    values = dn.astype(np.float32)
    # Adding the DN offset first keeps one rounding: (DN - 1000) is exact in float32.
    refl = ((values + offset_dn) * scale).astype(np.float32)
    invalid = (dn == nodata) | values.isnull()
    cube = refl.where(~invalid)

    if scl_key is not None:
        # NaN for "no data" (code 0) while steps are fused, as the bands are.
        code = ds[scl_key].rename({k: v for k, v in spatial.items() if k in ds[scl_key].dims})
        cube = cube.assign_coords(scl=code.where(code != 0))
    sun = _sun_angles(items, rank, len(slices))
    if sun:
        cube = cube.assign_coords({k: ("time", v) for k, v in sun.items()})

    # Steps of one day that differ only in calibration are fused now, in reflectance,
    # in odc-stac's order (earliest first wins) so the result matches a plain load.
    base_of_step = [key[0] for key in slices]
    if len(set(base_of_step)) < len(base_of_step):
        cube = _fuse_steps(cube, base_of_step)
    if scl_key is not None:
        code = cube["scl"].fillna(0).astype(np.uint8)
        code.attrs = {"long_name": "Sentinel-2 scene classification (SCL)"}
        cube = cube.assign_coords(scl=code.transpose("time", "y", "x"))

    cube = cube.assign_coords(band=np.array(band_ids))
    cube = cube.transpose(*DIMS)
    if not pd.Index(cube["time"].values).is_monotonic_increasing:
        cube = cube.sortby("time")
    # Fusing and sorting dates may split the time chunk: restore the one asked for.
    cube = cube.chunk({"band": band_chunk, "time": chunk_spec.get("time", 1)})
    cube.name = "reflectance"
    cube.attrs = {"units": "1", "long_name": "reflectance"}
    return cube


#: Names users carry over from other loaders, and what they are called here.
_RENAMED_KWARGS = {
    "measurements": "bands=",
    "datetime": "time= (the second positional argument)",
    "collections": "collection=",
    "max_items": "a narrower time= or bbox=",
}


def _check_odc_kwargs(odc_kwargs: Mapping[str, Any]) -> None:
    """Refuse what odc-stac would swallow (its ``**kw`` takes any name) or what is set here."""
    import inspect

    import odc.stac

    reserved = sorted(_RESERVED_ODC_KWARGS & set(odc_kwargs))
    if reserved:
        raise TypeError(
            f"odc-stac argument(s) {reserved} are set by xcloudfree: use load_stac's bands=, "
            "groupby= and chunks= (the dtype is always float32 reflectance)"
        )
    known = {
        name
        for name, p in inspect.signature(odc.stac.load).parameters.items()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    }
    for name in odc_kwargs:
        if name in _RENAMED_KWARGS:
            raise StacError(f"{name}= is not an option here: use {_RENAMED_KWARGS[name]}")
        if name not in known:
            import difflib

            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"did you mean {close[0]}=? " if close else ""
            raise StacError(
                f"unknown option {name}=: {hint}load_stac takes its own arguments and those "
                f"of odc.stac.load ({', '.join(sorted(known - _RESERVED_ODC_KWARGS))})"
            )


def _scl_asset(item: pystac.Item) -> str:
    """Key of the scene classification asset (``scl`` on Earth Search, ``SCL`` on PC)."""
    for key in item.assets:
        if key.lower() == "scl":
            return key
    raise StacError(
        f"item {item.id!r} has no SCL asset (asset keys {sorted(item.assets)}): scl=True "
        "needs L2A items (collection 'sentinel-2-l2a'); use mask='temporal' for L1C"
    )


#: Item properties kept as per-date coordinates (Earth Search and Planetary Computer names).
_SUN_PROPERTIES = {
    "sun_azimuth": ("view:sun_azimuth", "s2:mean_solar_azimuth"),
    "sun_elevation": ("view:sun_elevation",),
    "sun_zenith": ("s2:mean_solar_zenith",),
}


def _sun_angles(items: Sequence[pystac.Item], rank: Sequence[int], steps: int) -> dict:
    """Per time step sun azimuth and elevation (degrees) where every item declares them.

    The first item of a step gives its value: the tiles of one overpass differ by
    tenths of a degree.
    """
    found: dict[str, np.ndarray] = {}
    for name, keys in _SUN_PROPERTIES.items():
        values = np.full(steps, np.nan)
        for item, step in zip(items, rank):
            value = next((item.properties[k] for k in keys if k in item.properties), None)
            if value is not None and np.isnan(values[step]):
                values[step] = float(value)
        if not np.isnan(values).any():
            found[name] = values
    if "sun_zenith" in found:
        zenith = found.pop("sun_zenith")
        found.setdefault("sun_elevation", 90.0 - zenith)
    return found


def _nodata_of(var: xr.DataArray) -> float:
    value = var.attrs.get("nodata")
    if value is None:
        value = _S2_NODATA if np.issubdtype(var.dtype, np.integer) else np.nan
    return float(value)


def _fuse_steps(cube: xr.DataArray, base_of_step: Sequence[Hashable]) -> xr.DataArray:
    groups: dict[Hashable, list[int]] = {}
    for i, key in enumerate(base_of_step):
        groups.setdefault(key, []).append(i)
    steps, scl = [], []
    for indices in groups.values():
        # Earliest acquisition first, as odc-stac orders items within a group.
        indices = sorted(indices, key=lambda i: cube["time"].values[i])
        fused = cube.isel(time=indices[0])
        for i in indices[1:]:
            fused = fused.fillna(cube.isel(time=i))
        steps.append(fused)
        if "scl" in cube.coords:  # the classes are fused the same way
            codes = [cube["scl"].isel(time=i) for i in indices]
            scl.append(functools.reduce(lambda a, b: a.fillna(b), codes))
    out = xr.concat([s.drop_vars("scl", errors="ignore") for s in steps], dim="time")
    if scl:
        out = out.assign_coords(scl=xr.concat(scl, dim="time").drop_vars("scl", errors="ignore"))
    return out


# --------------------------------------------------------------------------- search


def _open_catalog(catalog: str) -> Any:
    import pystac_client
    from pystac_client.exceptions import APIError

    modifier = None
    if "planetarycomputer" in catalog.lower():
        try:
            import planetary_computer
        except ImportError:
            raise StacError(
                f"the catalog {catalog!r} is Microsoft Planetary Computer, whose asset URLs must "
                "be signed: pip install planetary-computer (or xcloudfree[planetary])"
            ) from None
        modifier = planetary_computer.sign_inplace
    try:
        return pystac_client.Client.open(catalog, modifier=modifier, timeout=60)
    except (APIError, OSError, pystac.STACError, ValueError) as err:
        raise StacError(
            f"could not open the STAC catalog {catalog!r}: {err}. Check the URL (a STAC API "
            f"root such as {DEFAULT_CATALOG!r}) and your network connection"
        ) from err


def _search(
    catalog: str,
    collection: str,
    bbox: tuple[float, float, float, float],
    time: Any,
    max_cloud_cover: float | None,
    geometry: Mapping[str, Any] | None = None,
) -> list[pystac.Item]:
    from pystac_client.exceptions import APIError

    client = _open_catalog(catalog)
    params: dict[str, Any] = {"collections": [collection], "datetime": time}
    if geometry is not None:
        params["intersects"] = dict(geometry)
    else:
        params["bbox"] = bbox
    if max_cloud_cover is not None:
        # Only ask servers that say they understand it: one that does not may answer
        # with nothing at all.  The result is filtered here in any case.
        if client.conforms_to("QUERY"):
            params["query"] = {"eo:cloud_cover": {"lt": max_cloud_cover}}
        elif client.conforms_to("FILTER"):
            params["filter"] = {
                "op": "<",
                "args": [{"property": "eo:cloud_cover"}, max_cloud_cover],
            }
            params["filter_lang"] = "cql2-json"
    try:
        items = list(client.search(limit=100, **params).items())
    except (APIError, OSError, pystac.STACError) as err:
        raise StacError(
            f"the search of {catalog!r} failed: {err}. Check the collection id "
            f"({collection!r}), bbox and time, and that the catalog is reachable"
        ) from err
    except Exception as err:  # pystac-client raises bare Exception on bad search arguments
        raise StacError(f"the search of {catalog!r} was refused: {err}") from err
    if max_cloud_cover is not None:
        items = [
            it
            for it in items
            if it.properties.get("eo:cloud_cover") is not None
            and float(it.properties["eo:cloud_cover"]) < max_cloud_cover
        ]
    if not items:
        raise StacError(_empty_message(client, catalog, collection, bbox, time, max_cloud_cover))
    return items


def _empty_message(
    client: Any,
    catalog: str,
    collection: str,
    bbox: Sequence[float],
    time: Any,
    max_cloud_cover: float | None,
) -> str:
    cloud = "" if max_cloud_cover is None else f", eo:cloud_cover < {max_cloud_cover}"
    message = (
        f"no {collection!r} items in {catalog!r} for bbox={tuple(bbox)}, time={time!r}{cloud}: "
        "widen the time range or the bbox"
    )
    if max_cloud_cover is not None:
        message += ", or raise max_cloud_cover"
    try:
        names = sorted(c.id for c in client.get_collections())
    except Exception:  # the hint is optional; the empty result is the error
        return message
    if collection not in names:
        message += f". The catalog has no collection {collection!r}; it has {names}"
    return message


def load_stac(
    bbox: Sequence[float] | None = None,
    time: Any = None,
    *,
    intersects: Any = None,
    catalog: str = DEFAULT_CATALOG,
    collection: str = DEFAULT_COLLECTION,
    bands: str | Iterable[str] | None = None,
    resolution: float | None = 10,
    crs: Any = None,
    chunks: Mapping[str, int] | None = None,
    max_cloud_cover: float | None = None,
    groupby: str | None = "solar_day",
    scl: bool = False,
    **odc_kwargs: Any,
) -> xr.DataArray:
    """Search a STAC API and load Sentinel-2 reflectance as a lazy cube.

    Parameters
    ----------
    bbox
        ``(west, south, east, north)`` in degrees (EPSG:4326).  The search and the
        output extent (snapped to the pixel grid) both use it.  Or give ``intersects``.
    time
        A date or range as the STAC API takes it: ``"2024-06"``,
        ``"2024-06-01/2024-08-31"``, ``("2024-06-01", "2024-08-31")``, a
        :class:`datetime.datetime`; ``".."`` leaves an end open.  Required.
    intersects
        Instead of ``bbox``: a GeoJSON geometry in degrees (a ``Polygon`` or
        ``MultiPolygon`` dict, or any object with ``__geo_interface__``, e.g. a
        shapely polygon).  The search finds items that intersect it; the cube covers
        its bounding box (pixels outside the polygon are loaded too).
    catalog
        STAC API root URL.  Earth Search v1 by default; Planetary Computer URLs are
        signed with ``planetary_computer.sign_inplace`` (``pip install
        planetary-computer``).  Signed URLs expire after about an hour: for longer
        computations pass ``patch_url=planetary_computer.sign``.
    collection
        Collection id, e.g. ``"sentinel-2-l2a"`` (both catalogs).
    bands
        Band IDs or common names (``"B04"``, ``"red"``, ``"nir08"``...).  None loads
        :data:`DEFAULT_BANDS`: B02 B03 B04 B05 B06 B07 B08 B8A B11 B12.  Asset keys
        are found in each item (Earth Search uses common names, Planetary Computer
        IDs, others ``eo:bands`` names), so any Sentinel-2 catalog works.
    resolution
        Pixel size in the units of the output CRS (10 = 10 m in UTM); None keeps the
        items' native resolution.
    crs
        Output CRS, e.g. ``"EPSG:32633"`` or ``"utm"``; None uses the items' native
        CRS (their UTM zone for Sentinel-2).
    chunks
        Dask chunks by dim name (dims not named keep the default); None gives
        :data:`DEFAULT_CHUNKS`,
        ``{"time": -1, "y": 1024, "x": 1024}`` (smaller in space for long series,
        see :func:`xcloudfree.chunking.chunk_size`), with every band in one chunk:
        the chunking :func:`xcloudfree.remove` needs. Add ``"band": 1`` to split bands.
    max_cloud_cover
        Keep scenes with ``eo:cloud_cover`` below this percentage (0-100).  Sent as a
        ``query`` (or CQL2 ``filter``) where the API supports one; the result is also
        checked here, so scenes without ``eo:cloud_cover`` are dropped.
    groupby
        How items become time steps: ``"solar_day"`` (tiles of one overpass are
        mosaicked), ``"time"``, ``"id"`` (every item its own step) or an item property
        name.  The cube contract needs unique times, so keep ``"solar_day"`` unless you
        have a reason.
    scl
        Also load the L2A scene classification (the ``scl``/``SCL`` asset, resampled
        with nearest neighbour onto the cube's grid) as a ``scl`` coordinate
        ``(time, y, x)``, uint8 with 0 where there is no data; ``remove(mask="scl")``
        and :func:`xcloudfree.mask_classes` read it.
    **odc_kwargs
        Passed to :func:`odc.stac.load`, e.g. ``resampling="bilinear"``,
        ``geobox=...``, ``anchor=...``, ``patch_url=...``; ``bands``, ``groupby``,
        ``chunks`` and ``dtype`` are set here and refused.

    Returns
    -------
    xarray.DataArray
        Dims ``("time", "band", "y", "x")``, float32 reflectance (0-1) with NaN where
        there is no data, ``band`` = Sentinel-2 IDs, ``time`` sorted ``datetime64``,
        the CRS in ``spatial_ref`` (``cube.rio.crs``, ``cube.odc.crs``), the sun
        angles (``sun_azimuth``, ``sun_elevation``, degrees, per date) where the
        items declare them, and ``scl`` if asked for.  Dask-backed:
        nothing is read until ``.compute()``.  Scale and the baseline 04.00 offset
        are applied as described in :mod:`xcloudfree.io.stac`.

    Raises
    ------
    StacError
        Bad ``bbox`` or ``time``, unreachable catalog or HTTP error, no items found,
        an item without a requested band, or ``planetary-computer`` not installed.

    Examples
    --------
    >>> from xcloudfree.io.stac import load_stac
    >>> cube = load_stac(
    ...     (12.45, 41.85, 12.55, 41.95), "2024-06-01/2024-08-31",
    ...     bands=["blue", "green", "red", "nir"], max_cloud_cover=60,
    ... )  # doctest: +SKIP
    >>> cube.dims  # doctest: +SKIP
    ('time', 'band', 'y', 'x')
    >>> cube.band.values.tolist()  # doctest: +SKIP
    ['B02', 'B03', 'B04', 'B08']

    Bad arguments are caught before any request:

    >>> load_stac((12.5, 41.9, 12.4, 42.0), "2024-06")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    xcloudfree.errors.StacError: bbox west (12.5) is not less than east (12.4): ...
    """
    _check_odc_kwargs(odc_kwargs)  # before any request
    geometry = None
    if intersects is not None:
        if bbox is not None:
            raise StacError("pass bbox= or intersects=, not both: the search uses one area")
        geometry = _check_geometry(intersects)
        box = _geometry_bounds(geometry)
    elif bbox is None:
        raise StacError(
            "no area to search: pass bbox=(west, south, east, north) in degrees, or "
            "intersects= a GeoJSON polygon"
        )
    else:
        box = _check_bbox(bbox)
    if time is None:
        raise StacError('no time to search: pass time=, e.g. "2024-06" or "2024-06-01/2024-08-31"')
    when = _check_time(time)
    band_ids = _check_bands(bands)
    if max_cloud_cover is not None:
        number = isinstance(max_cloud_cover, (int, float)) and not isinstance(max_cloud_cover, bool)
        if not number or not 0 <= max_cloud_cover <= 100:
            raise StacError(
                f"max_cloud_cover={max_cloud_cover!r} is not a percentage: pass a number "
                "from 0 to 100, e.g. max_cloud_cover=30"
            )
        max_cloud_cover = float(max_cloud_cover)
    items = _search(catalog, collection, box, when, max_cloud_cover, geometry)
    cube = load_items(
        items,
        bands=band_ids,
        resolution=resolution,
        crs=crs,
        chunks=chunks,
        groupby=groupby,
        bbox=box,
        scl=scl,
        **odc_kwargs,
    )
    cube.attrs.update(stac_catalog=catalog, stac_collection=collection)
    return cube
