"""A real STAC API on loopback for the tests: COGs of real data, served by ``rustac``.

:func:`build_catalog` writes one Cloud-Optimised GeoTIFF per band per item from the real
Sentinel-2 time series embedded in the package (or the same series beside the clone in
``../shared/data``) and STAC items that look like
Earth Search v1 ``sentinel-2-l2a`` items (common-name asset keys, ``raster:bands`` with
scale/offset, ``eo:cloud_cover``, ``proj:*``).  :func:`serve` runs ``rustac serve`` on a free
port with the in-memory backend and yields its URL.

Nothing here imports xcloudfree, so the helper cannot hide a bug in the code it tests.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import array_bounds

#: Band order of the shared GeoTIFFs.
SOURCE_BANDS: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07",
    "B08", "B8A", "B09", "B10", "B11", "B12",
)  # fmt: skip

#: Earth Search v1 asset keys (STAC common names) of the bands the test items carry.
#: B01, B09 and B10 are left out on purpose: the tests ask for one to get a missing-band error.
ASSET_KEYS: dict[str, str] = {
    "B02": "blue",
    "B03": "green",
    "B04": "red",
    "B05": "rededge1",
    "B06": "rededge2",
    "B07": "rededge3",
    "B08": "nir",
    "B8A": "nir08",
    "B11": "swir16",
    "B12": "swir22",
}

#: DN added by processing baseline >= 04.00 (BOA_ADD_OFFSET = -1000).
BASELINE_4_DN_OFFSET = 1000


@dataclass(frozen=True)
class Scene:
    """One test item: which source date it copies and how its metadata reads.

    ``declare_offset`` is what the assets' ``raster:bands`` say: ``-0.1``, ``0.0`` or ``None``
    (no ``offset`` key at all).  The DN carry +1000 whenever the baseline is >= 04.00, as real
    L2A products do, whatever the metadata declares, except for ``harmonised`` scenes: those
    mimic Earth Search items with ``earthsearch:boa_offset_applied: true``, whose pixels had the
    offset removed already while ``raster:bands`` still declares ``-0.1``.
    ``id_keys`` names the assets by band ID (``B04``), as Planetary Computer does.
    """

    date: str
    baseline: str
    cloud_cover: float
    declare_offset: float | None
    #: (row0, row1, col0, col1) set to nodata (0) in every band, or None.
    nodata_window: tuple[int, int, int, int] | None = None
    #: (col0, col1) of the source columns this item covers; the rest is nodata. None = all.
    columns: tuple[int, int] | None = None
    suffix: str = ""
    harmonised: bool = False
    id_keys: bool = False

    @property
    def item_id(self) -> str:
        return f"S2A_33TUG_{self.date.replace('-', '')}_0_L2A{self.suffix}"

    @property
    def dn_offset(self) -> int:
        if self.harmonised:
            return 0
        return BASELINE_4_DN_OFFSET if self.baseline >= "04.00" else 0

    def asset_key(self, band: str) -> str:
        return band if self.id_keys else ASSET_KEYS[band]


@dataclass
class Catalog:
    """What :func:`build_catalog` wrote and what the tests compare against."""

    root: Path
    collection_files: list[Path] = field(default_factory=list)
    #: item id -> the true reflectance (band, y, x) float64 of the bands in ASSET_KEYS order,
    #: NaN where the item holds nodata.
    truth: dict[str, np.ndarray] = field(default_factory=dict)
    #: item id -> the scene classification (y, x) uint8 on the bands' grid (0 = no data).
    scl: dict[str, np.ndarray] = field(default_factory=dict)
    #: item id -> (sun azimuth, sun elevation) the item declares, degrees.
    sun: dict[str, tuple[float, float]] = field(default_factory=dict)
    bbox: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    crs: str = "EPSG:4326"
    resolution: float = 0.0


def _collection(collection_id: str, bbox: Sequence[float]) -> dict:
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "stac_extensions": [],
        "id": collection_id,
        "description": "Sentinel-2 L2A test items made from SEN12MS-CR-TS ROI 146 (real data).",
        "license": "proprietary",
        "extent": {
            "spatial": {"bbox": [list(bbox)]},
            "temporal": {"interval": [["2018-01-01T00:00:00Z", "2018-12-31T23:59:59Z"]]},
        },
        "links": [],
    }


def _write_cog(path: Path, data: np.ndarray, profile: dict) -> None:
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


def _item(
    scene: Scene,
    collection_id: str,
    assets_dir: Path,
    bbox: Sequence[float],
    transform: Sequence[float],
    shape: tuple[int, int],
) -> dict:
    west, south, east, north = bbox
    assets: dict[str, dict] = {}
    for band, name in ASSET_KEYS.items():
        key = scene.asset_key(band)
        raster_band: dict = {
            "nodata": 0,
            "data_type": "uint16",
            "bits_per_sample": 15,
            "spatial_resolution": 10,
            "scale": 0.0001,
        }
        if scene.declare_offset is not None:
            raster_band["offset"] = scene.declare_offset
        assets[key] = {
            # Must be a file:// URI: a bare path is resolved against the API URL (HTTP 404).
            "href": (assets_dir / f"{band}.tif").resolve().as_uri(),
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "title": f"{key} ({band})",
            "roles": ["data", "reflectance"],
            "eo:bands": [{"name": key, "common_name": name}],
            "raster:bands": [raster_band],
            "proj:shape": list(shape),
            "proj:transform": list(transform),
        }
    # The L2A scene classification at 20 m, as real products have it.
    assets["scl"] = {
        "href": (assets_dir / "SCL.tif").resolve().as_uri(),
        "type": "image/tiff; application=geotiff; profile=cloud-optimized",
        "title": "Scene classification map (SCL)",
        "roles": ["data"],
        "raster:bands": [{"nodata": 0, "data_type": "uint8", "spatial_resolution": 20}],
        "proj:shape": [shape[0] // 2, shape[1] // 2],
        "proj:transform": [transform[0] * 2, transform[1], transform[2],
                           transform[3], transform[4] * 2, transform[5]],
    }  # fmt: skip
    # Non-raster assets as Earth Search has them; the loader must pass over them.
    assets["thumbnail"] = {
        "href": (assets_dir / "thumbnail.jpg").resolve().as_uri(),
        "type": "image/jpeg",
        "roles": ["thumbnail"],
    }
    assets["granule_metadata"] = {
        "href": (assets_dir / "metadata.xml").resolve().as_uri(),
        "type": "application/xml",
        "roles": ["metadata"],
    }
    properties = {
        "datetime": f"{scene.date}T10:00:21.024000Z",
        "platform": "sentinel-2a",
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "eo:cloud_cover": scene.cloud_cover,
        "proj:epsg": 4326,
        "s2:processing_baseline": scene.baseline,
        "view:sun_azimuth": sun_angles(scene)[0],
        "view:sun_elevation": sun_angles(scene)[1],
    }
    if scene.harmonised:
        properties["earthsearch:boa_offset_applied"] = True
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
        ],
        "id": scene.item_id,
        "collection": collection_id,
        "bbox": [west, south, east, north],
        "geometry": {
            "type": "Polygon",
            "coordinates": [
                [[west, south], [east, south], [east, north], [west, north], [west, south]]
            ],
        },
        "properties": properties,
        "assets": assets,
        "links": [],
    }


def sun_angles(scene: Scene) -> tuple[float, float]:
    """Sun azimuth and elevation an item declares: made up, but different per date."""
    day = int(np.datetime64(scene.date, "D").astype("datetime64[D]").astype(int))
    return 150.0 + day % 20, 20.0 + day % 40


def scene_classes(dn: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """An SCL-like map at half the resolution (2 x 2 blocks) from a date's blue DN.

    9 (cloud, high probability) where the block's blue is bright, 8 (medium) where
    fairly bright, 4 (vegetation) elsewhere, 0 where any pixel of the block is nodata.
    """
    h, w = dn.shape[0] // 2 * 2, dn.shape[1] // 2 * 2
    blue = dn[:h, :w].reshape(h // 2, 2, w // 2, 2).mean((1, 3))
    ok = valid[:h, :w].reshape(h // 2, 2, w // 2, 2).all((1, 3))
    code = np.select([blue > 2500, blue > 1500], [9, 8], 4)
    return np.where(ok, code, 0).astype(np.uint8)


#: The series embedded in the package (the same ROI 146 dates, DN, 10 bands).
PACKAGE_SAMPLE = Path(__file__).resolve().parents[1] / "xcloudfree" / "data" / "roi146_timeseries"


def read_date(source: Path, date: str) -> tuple[np.ndarray, object, object]:
    """DN ``(band, y, x)`` int64 of ``ASSET_KEYS``' bands, CRS and transform of one date.

    ``source`` is a folder of 13-band GeoTIFFs named ``YYYY-MM-DD.tif`` (the shared
    data), or :data:`PACKAGE_SAMPLE`, read straight from its files (lzma + JSON) so
    that this helper never goes through the xcloudfree code it serves to test.
    """
    if source == PACKAGE_SAMPLE:
        import lzma

        from rasterio.crs import CRS
        from rasterio.transform import Affine

        meta = json.loads(source.with_suffix(".json").read_text())
        raw = lzma.decompress(source.with_suffix(".u16.xz").read_bytes())
        dn = np.frombuffer(raw, dtype="<u2").reshape(meta["shape"])[meta["dates"].index(date)]
        pick = [meta["bands"].index(b) for b in ASSET_KEYS]
        return dn[pick].astype(np.int64), CRS.from_wkt(meta["crs"]), Affine(*meta["transform"])
    band_index = [SOURCE_BANDS.index(b) for b in ASSET_KEYS]
    with rasterio.open(source / f"{date}.tif") as src:
        dn = src.read(indexes=[i + 1 for i in band_index]).astype(np.int64)
        return dn, src.crs, src.transform


def build_catalog(
    source_dir: Path,
    out_dir: Path,
    collections: dict[str, Sequence[Scene]],
) -> Catalog:
    """Write COGs, one collection JSON and one item-collection JSON per collection.

    Parameters
    ----------
    source_dir
        The folder of 13-band GeoTIFFs named ``YYYY-MM-DD.tif``, or
        :data:`PACKAGE_SAMPLE` (see :func:`read_date`).
    out_dir
        Where to write; one sub-folder per item.
    collections
        Collection id -> scenes.
    """
    catalog = Catalog(root=out_dir)
    for collection_id, scenes in collections.items():
        items = []
        for scene in scenes:
            dn, crs, transform = read_date(source_dir, scene.date)
            height, width = dn.shape[1:]
            valid = np.ones((height, width), dtype=bool)
            if scene.nodata_window is not None:
                r0, r1, c0, c1 = scene.nodata_window
                valid[r0:r1, c0:c1] = False
            if scene.columns is not None:
                c0, c1 = scene.columns
                valid[:, :c0] = False
                valid[:, c1:] = False
            # Real S2 DN are >= 1 where valid (0 is nodata); keep that so truth stays exact.
            assert (dn[:, valid] > 0).all()
            truth = np.where(valid, dn / 10000.0, np.nan)
            stored = np.where(valid, dn + scene.dn_offset, 0)
            assert stored.max() < 2**16
            stored = stored.astype(np.uint16)

            assets_dir = out_dir / collection_id / scene.item_id
            assets_dir.mkdir(parents=True, exist_ok=True)
            profile = {
                "driver": "COG",
                "width": width,
                "height": height,
                "count": 1,
                "dtype": "uint16",
                "nodata": 0,
                "crs": crs,
                "transform": transform,
                "compress": "deflate",
                "blocksize": 256,
            }
            for i, band in enumerate(ASSET_KEYS):
                _write_cog(assets_dir / f"{band}.tif", stored[i], profile)
            scl = scene_classes(dn[list(ASSET_KEYS).index("B02")], valid)
            scl_transform = transform * transform.scale(2, 2)
            _write_cog(assets_dir / "SCL.tif", scl, {
                **profile, "width": scl.shape[1], "height": scl.shape[0], "dtype": "uint8",
                "transform": scl_transform,
            })  # fmt: skip
            full = np.zeros((height, width), np.uint8)
            full[: 2 * scl.shape[0], : 2 * scl.shape[1]] = np.repeat(np.repeat(scl, 2, 0), 2, 1)
            catalog.scl[scene.item_id] = full
            catalog.sun[scene.item_id] = sun_angles(scene)
            bounds = array_bounds(height, width, transform)  # (west, south, east, north)
            items.append(
                _item(scene, collection_id, assets_dir, bounds, tuple(transform)[:6], dn.shape[1:])
            )
            catalog.truth[scene.item_id] = truth
            catalog.bbox = tuple(float(v) for v in bounds)
            catalog.crs = crs.to_string()
            catalog.resolution = float(transform.a)

        collection_path = out_dir / f"{collection_id}.collection.json"
        items_path = out_dir / f"{collection_id}.items.json"
        collection_path.write_text(json.dumps(_collection(collection_id, catalog.bbox)))
        items_path.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
        catalog.collection_files += [collection_path, items_path]
    return catalog


def free_port() -> int:
    """A TCP port on loopback that nothing listens on (right now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rustac_binary() -> str | None:
    """Path of the ``rustac`` CLI, or None when it is not installed."""
    return shutil.which("rustac")


@contextlib.contextmanager
def serve(files: Sequence[Path], timeout: float = 20.0) -> Iterator[str]:
    """Run ``rustac serve FILES`` on a free loopback port; yield the API's root URL.

    The server is killed on exit.  Raises RuntimeError if it does not answer within
    ``timeout`` seconds (its stderr is in the message).
    """
    binary = rustac_binary()
    if binary is None:
        raise FileNotFoundError("the rustac CLI is not on PATH (pip install rustac)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # A file, not a pipe, for stderr: a chatty server must never block on a full pipe.
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [binary, "serve", *map(str, files), "--addr", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log.seek(0)
                err = log.read().decode(errors="replace")
                raise RuntimeError(f"rustac serve exited with {proc.returncode}: {err}")
            try:
                with urllib.request.urlopen(f"{url}/collections", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"rustac serve did not answer on {url} in {timeout} s")
            time.sleep(0.05)
        yield url
    finally:
        proc.kill()
        proc.wait(timeout=10)
        log.close()
