"""Tests of xcloudfree.io.stac against a real STAC API on loopback.

The session fixture writes COGs from the real Sentinel-2 time series embedded in the package,
serves Earth-Search-like items with ``rustac serve`` and searches/loads them through
pystac-client and odc-stac, as a user would.  Argument checks run without either.
"""

from __future__ import annotations

import datetime
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import pystac
import pytest
import rasterio
import xarray as xr

from xcloudfree.cube import as_cube
from xcloudfree.errors import StacError
from xcloudfree.io.stac import DEFAULT_BANDS, load_stac

try:
    import stac_server
except ModuleNotFoundError:  # tests/ imported as a package
    from tests import stac_server

ASSET_KEYS = stac_server.ASSET_KEYS
Scene = stac_server.Scene


# A port nothing listens on: validation must fail before any request is made.
NO_SERVER = "http://127.0.0.1:9"

NODATA_WINDOW = (0, 16, 0, 24)

#: The main collection, one scene per calibration rule of xcloudfree.io.stac.
SCENES: dict[str, Scene] = {
    # Old baseline, offset 0 declared: reflectance = DN / 10000.
    "old": Scene("2018-01-06", "03.00", 2.0, 0.0),
    # Baseline 04.00 that declares no offset (Planetary Computer style): -1000 DN from the rule.
    "undeclared": Scene("2018-03-07", "04.00", 41.5, None, nodata_window=NODATA_WINDOW),
    # Baseline 05.00 declaring -0.1 (Earth Search style): the declared offset is enough.
    "declared": Scene("2018-06-10", "05.00", 7.0, -0.1),
    # Earth Search "boa_offset_applied": pixels already harmonised, -0.1 declared anyway.
    "harmonised": Scene("2018-08-09", "04.00", 0.5, -0.1, harmonised=True),
    # Overcast, old baseline.
    "overcast": Scene("2018-11-02", "03.00", 96.0, 0.0),
}
#: One overpass split into two tiles of different baselines (fused in reflectance).
MOSAIC = [
    Scene("2018-09-03", "03.00", 1.0, 0.0, columns=(0, 128), suffix="_W"),
    Scene("2018-09-03", "05.00", 1.0, -0.1, columns=(128, 256), suffix="_E"),
]
#: Assets keyed by band ID (B02...), as Planetary Computer names them.
ID_KEYED = [Scene("2018-10-08", "04.00", 3.0, None, id_keys=True)]

BAND_ORDER = list(ASSET_KEYS)  # the band order of the truth arrays


@dataclass
class Api:
    url: str
    catalog: stac_server.Catalog

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        return self.catalog.bbox

    def truth(self, scene: Scene, bands: list[str] | None = None) -> np.ndarray:
        values = self.catalog.truth[scene.item_id]
        if bands is None:
            return values
        return values[[BAND_ORDER.index(b) for b in bands]]

    def load(self, **kwargs) -> xr.DataArray:
        # The native grid (EPSG:4326, ~10 m) keeps pixels exact: no resampling.
        kwargs = {"catalog": self.url, "resolution": None, **kwargs}
        return load_stac(self.bbox, kwargs.pop("time", "2018"), **kwargs)


@pytest.fixture(scope="session")
def api(tmp_path_factory: pytest.TempPathFactory):
    if stac_server.rustac_binary() is None:
        pytest.skip("needs the rustac CLI to serve a STAC API: pip install rustac")
    catalog = stac_server.build_catalog(
        stac_server.PACKAGE_SAMPLE,  # the real series inside the package: never skips
        tmp_path_factory.mktemp("stac"),
        {
            "sentinel-2-l2a": list(SCENES.values()),
            "s2-mosaic": MOSAIC,
            "s2-id-keys": ID_KEYED,
        },
    )
    with stac_server.serve(catalog.collection_files) as url:
        yield Api(url, catalog)


@pytest.fixture(scope="module")
def computed(api: Api) -> xr.DataArray:
    """The main collection, all default bands, loaded once."""
    return api.load().compute()


# --------------------------------------------------------------------------- the cube


def test_load_returns_a_lazy_cube(api: Api) -> None:
    cube = api.load()
    assert cube.dims == ("time", "band", "y", "x")
    assert cube.dtype == np.float32
    assert isinstance(cube.data, da.Array)
    assert cube.band.values.tolist() == list(DEFAULT_BANDS)
    assert cube.sizes == {"time": len(SCENES), "band": 10, "y": 256, "x": 256}
    assert np.issubdtype(cube.time.dtype, np.datetime64)
    expected = sorted(pd.Timestamp(s.date) for s in SCENES.values())
    assert [pd.Timestamp(t).normalize() for t in cube.time.values] == expected
    # CRS travels in spatial_ref and both accessors read it.
    assert "spatial_ref" in cube.coords
    assert cube.rio.crs.to_epsg() == 4326
    assert cube.odc.geobox.crs.epsg == 4326
    transform = cube.rio.transform()
    assert transform.a == pytest.approx(api.catalog.resolution)
    assert (transform.c, transform.f) == pytest.approx((api.bbox[0], api.bbox[3]))
    # Default chunks: every date and every band in one chunk, as remove() needs.
    assert cube.chunks[0] == (len(SCENES),)
    assert cube.chunks[1] == (10,)
    # The cube contract holds as loaded.
    assert as_cube(cube) is not None


def test_nothing_is_read_before_compute(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    real_open = rasterio.open

    def counting_open(path, *args, **kwargs):
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    # odc-stac's reader calls rasterio.open for every window it reads.
    monkeypatch.setattr(rasterio, "open", counting_open)
    cube = api.load(bands=["red", "nir"])
    as_cube(cube, required_bands=None)
    assert opened == []
    values = cube.isel(time=0).compute()
    assert opened, "the counter must see the reads, or the check above proves nothing"
    assert all(".tif" in p for p in opened)
    assert np.isfinite(values.values).all()


@pytest.mark.parametrize("name", list(SCENES))
def test_values_equal_the_source_over_10000(api: Api, computed: xr.DataArray, name: str) -> None:
    scene = SCENES[name]
    got = computed.sel(time=scene.date).squeeze("time", drop=True)
    truth = api.truth(scene)
    np.testing.assert_array_equal(np.isnan(got.values), np.isnan(truth))
    np.testing.assert_allclose(got.values, truth, rtol=0, atol=1e-6, equal_nan=True)


def test_nodata_becomes_nan(computed: xr.DataArray) -> None:
    got = computed.sel(time=SCENES["undeclared"].date).squeeze("time", drop=True).values
    r0, r1, c0, c1 = NODATA_WINDOW
    assert np.isnan(got[:, r0:r1, c0:c1]).all()
    outside = np.ones(got.shape[1:], dtype=bool)
    outside[r0:r1, c0:c1] = False
    assert np.isfinite(got[:, outside]).all()
    # DN 0 must not come out as reflectance -0.1 (offset applied to nodata).
    assert np.nanmin(got) > 0


def test_mosaic_of_two_baselines_agrees_across_the_seam(api: Api) -> None:
    cube = api.load(collection="s2-mosaic")
    assert cube.sizes["time"] == 1
    got = cube.compute().values[0]
    west, east = (api.truth(s) for s in MOSAIC)
    truth = np.where(np.isnan(west), east, west)
    assert np.isfinite(truth).all()
    np.testing.assert_allclose(got, truth, rtol=0, atol=1e-6)


def test_id_keyed_assets_load_by_common_name_and_id(api: Api) -> None:
    scene = ID_KEYED[0]
    for bands in (["red", "nir08", "swir22"], ["B04", "B8A", "B12"]):
        cube = api.load(collection="s2-id-keys", bands=bands)
        assert cube.band.values.tolist() == ["B04", "B8A", "B12"]
        got = cube.compute().values[0]
        np.testing.assert_allclose(got, api.truth(scene, ["B04", "B8A", "B12"]), rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- SCL and sun angles


def test_scl_loads_on_the_bands_grid_and_feeds_the_scl_mask(api: Api) -> None:
    import xcloudfree

    cube = api.load(bands=["blue", "green", "red", "nir"], scl=True)
    scl = cube.coords["scl"]
    assert scl.dims == ("time", "y", "x")
    assert scl.dtype == np.uint8
    assert isinstance(scl.data, da.Array)  # lazy like the bands
    for scene in SCENES.values():
        got = scl.sel(time=scene.date).squeeze("time", drop=True).values
        # 20 m classes on the 10 m grid by nearest neighbour: 2 x 2 blocks, never mixed.
        np.testing.assert_array_equal(got, api.catalog.scl[scene.item_id])
    assert (cube.coords["scl"].values > 0).any() and (cube.coords["scl"].values == 9).any()
    ds = xcloudfree.mask_classes(cube, "scl", dilate=0).compute()
    np.testing.assert_array_equal(ds["cloud_mask"].values, np.isin(scl.values, (8, 9)))
    # No data in the SCL (its code 0) is no data in the classes, never clear ground.
    assert (ds["mask_class"].values[scl.values == 0] == 255).all()


def test_scl_is_nearest_whatever_the_bands_resampling(api: Api) -> None:
    cube = api.load(bands=["red"], scl=True, resampling="bilinear", crs="utm", resolution=15)
    codes = np.unique(cube.coords["scl"].values)
    assert set(codes.tolist()) <= {0, 4, 8, 9}  # bilinear would make codes in between


def test_scl_of_a_mosaic_is_fused_like_the_bands(api: Api) -> None:
    cube = api.load(collection="s2-mosaic", scl=True, bands=["red"])
    got = cube.coords["scl"].values[0]
    west, east = (api.catalog.scl[s.item_id] for s in MOSAIC)
    np.testing.assert_array_equal(got, np.where(west > 0, west, east))


def test_scl_asked_of_items_without_it_names_the_fix(api: Api) -> None:
    from xcloudfree.io.stac import load_items

    items = pystac.ItemCollection.from_file(str(api.catalog.collection_files[1]))
    for item in items:
        del item.assets["scl"]
    with pytest.raises(StacError, match=r"no SCL asset.*sentinel-2-l2a"):
        load_items(items, bands=["red"], resolution=None, scl=True)


def test_sun_angles_become_per_date_coordinates(api: Api) -> None:
    cube = api.load(bands=["red"])
    for scene in SCENES.values():
        step = cube.sel(time=scene.date).squeeze("time")
        azimuth, elevation = api.catalog.sun[scene.item_id]
        assert float(step["sun_azimuth"]) == azimuth
        assert float(step["sun_elevation"]) == elevation
    assert "scl" not in cube.coords  # only on request


# --------------------------------------------------------------------------- search options


@pytest.mark.parametrize(
    ("bands", "expected"),
    [
        (["red", "nir", "swir16"], ["B04", "B08", "B11"]),
        (["B04", "B08", "B11"], ["B04", "B08", "B11"]),
        (["b2", "nir08", "B12"], ["B02", "B8A", "B12"]),
        ("green", ["B03"]),
    ],
)
def test_band_selection(api: Api, bands, expected: list[str]) -> None:
    scene = SCENES["declared"]
    cube = api.load(bands=bands, time=scene.date)
    assert cube.band.values.tolist() == expected
    np.testing.assert_allclose(
        cube.compute().values[0], api.truth(scene, expected), rtol=0, atol=1e-6
    )


def test_max_cloud_cover_filters(api: Api) -> None:
    cube = api.load(max_cloud_cover=10, bands=["red"])
    kept = sorted(s.date for s in SCENES.values() if s.cloud_cover < 10)
    assert [str(t)[:10] for t in cube.time.values] == kept
    assert len(kept) < len(SCENES)


def test_time_range_and_tuple(api: Api) -> None:
    a = api.load(time="2018-03/2018-06", bands=["red"])
    b = api.load(time=("2018-03-01", "2018-06-30"), bands=["red"])
    # A date (not a datetime) is the whole day, as the string is.
    c = api.load(time=(datetime.date(2018, 3, 7), datetime.date(2018, 6, 10)), bands=["red"])
    expected = [SCENES["undeclared"].date, SCENES["declared"].date]
    for cube in (a, b, c):
        assert [str(t)[:10] for t in cube.time.values] == expected


def test_utm_output_is_reprojected_lazily(api: Api) -> None:
    cube = api.load(crs="utm", resolution=20, bands=["red"], time=SCENES["old"].date)
    assert cube.rio.crs.to_epsg() == 32633  # 12.7 E is in UTM zone 33 N
    assert abs(cube.rio.transform().a) == 20
    assert isinstance(cube.data, da.Array)
    values = cube.compute().values
    assert np.isfinite(values).mean() > 0.5
    assert np.nanmax(values) < 1.5


# --------------------------------------------------------------------------- errors


def test_intersects_searches_and_loads_the_geometry_bounds(api: Api) -> None:
    west, south, east, north = api.bbox
    mid_x, mid_y = (west + east) / 2, (south + north) / 2
    # A triangle over the north-west quarter: the cube is its bounding box.
    ring = [[west, north], [mid_x, north], [west, mid_y], [west, north]]
    polygon = {"type": "Polygon", "coordinates": [ring]}

    class Shape:  # any object with __geo_interface__ (shapely, geopandas...)
        __geo_interface__ = polygon

    feature = {"type": "Feature", "properties": {}, "geometry": polygon}
    cubes = [
        load_stac(time="2018", intersects=g, catalog=api.url, resolution=None, bands=["red"])
        for g in (polygon, Shape(), feature)
    ]
    cube = cubes[0]
    for other in cubes[1:]:
        xr.testing.assert_identical(other, cube)
    assert cube.sizes["y"] == pytest.approx(128, abs=1) and cube.sizes["x"] == pytest.approx(
        128, abs=1
    )
    full = api.load(bands=["red"])
    np.testing.assert_array_equal(
        cube.values, full.sel(y=cube.y, x=cube.x, method="nearest").values
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bbox": (12.0, 41.0, 12.1, 41.1), "intersects": {"type": "Polygon"}}, "not both"),
        ({"intersects": {"type": "Point", "coordinates": [12, 41]}}, "got Point"),
        ({}, "no area to search"),
        ({"bbox": (12.0, 41.0, 12.1, 41.1), "time": None}, "no time to search"),
    ],
)
def test_bad_areas_are_refused_before_any_request(kwargs, match: str) -> None:
    kwargs = {"time": "2018", **kwargs}
    with pytest.raises(StacError, match=match):
        load_stac(catalog=NO_SERVER, **kwargs)


def test_empty_search_raises(api: Api) -> None:
    with pytest.raises(StacError, match=r"no 'sentinel-2-l2a' items.*widen"):
        api.load(time="2019")


def test_unknown_collection_is_named(api: Api) -> None:
    with pytest.raises(StacError, match=r"no collection 'sentinel-2-l1c'.*'sentinel-2-l2a'"):
        api.load(collection="sentinel-2-l1c")


def test_unreachable_catalog_raises() -> None:
    port = stac_server.free_port()
    with pytest.raises(StacError, match="could not open the STAC catalog"):
        load_stac((12.7, 42.0, 12.8, 42.1), "2018", catalog=f"http://127.0.0.1:{port}")


def test_http_error_raises(api: Api) -> None:
    with pytest.raises(StacError, match="could not open the STAC catalog"):
        api.load(catalog=f"{api.url}/no/such/api")


def test_missing_band_raises_naming_it(api: Api) -> None:
    with pytest.raises(StacError, match=r"no asset for band\(s\) \['B01'\].*'blue'"):
        api.load(bands=["coastal", "red"])


def test_geographic_crs_with_metre_resolution_raises(api: Api) -> None:
    with pytest.raises(StacError, match=r"degrees.*EPSG:4326"):
        api.load(resolution=10)


def test_reserved_odc_kwargs_are_refused(api: Api) -> None:
    with pytest.raises(TypeError, match="dtype"):
        api.load(dtype="float64")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"measurements": ["red"]}, "measurements= is not an option here: use bands="),
        ({"datetime": "2018-06"}, "datetime= .* use time="),
        ({"resamplng": "bilinear"}, "unknown option resamplng=: did you mean resampling=?"),
        ({"colour": "red"}, r"unknown option colour=: load_stac takes .*patch_url"),
    ],
)
def test_unknown_options_are_refused_before_any_request(kwargs, match: str) -> None:
    # odc.stac.load takes **kw and would swallow these: measurements= loaded every band.
    with pytest.raises(StacError, match=match):
        load_stac((12.0, 41.0, 12.1, 41.1), "2018", catalog=NO_SERVER, **kwargs)


def test_partial_chunks_keep_every_date_in_one_chunk(api: Api) -> None:
    cube = api.load(bands=["red", "nir"], chunks={"y": 128, "x": 128})
    assert cube.chunks[0] == (len(SCENES),)
    assert cube.chunks[2] == (128, 128)
    assert api.load(bands=["red"], chunks={"time": 1, "y": 128}).chunks[0] == (1,) * len(SCENES)


@pytest.mark.parametrize(
    ("bbox", "match"),
    [
        ((12.8, 42.0, 12.7, 42.1), "west .* is not less than east"),
        ((12.7, 42.1, 12.8, 42.0), "south .* is not less than north"),
        ((12.7, 42.0, 12.8), "four finite numbers"),
        ((12.7, 42.0, 12.8, float("nan")), "four finite numbers"),
        (("a", 42.0, 12.8, 42.1), "not four numbers"),
        ((500_000, 4_600_000, 510_000, 4_610_000), "projected metres"),
    ],
)
def test_bad_bbox_raises_before_any_request(bbox, match: str) -> None:
    with pytest.raises(StacError, match=match):
        load_stac(bbox, "2018", catalog=NO_SERVER)


@pytest.mark.parametrize(
    ("time", "match"),
    [
        ("2018-13-01", "invalid date"),
        ("last summer", "invalid date"),
        ("2018-06-01/2018-13", "invalid date"),
        ("2018-06/2018-01", "starts after it ends"),
        ("2018/2019/2020", "not a date or a date range"),
        ("..", "empty"),
        ("../..", "open at both ends"),
        ((None, None), "open at both ends"),
        (42, "not a date or a date range"),
    ],
)
def test_bad_time_raises_before_any_request(time, match: str) -> None:
    with pytest.raises(StacError, match=match):
        load_stac((12.7, 42.0, 12.8, 42.1), time, catalog=NO_SERVER)


@pytest.mark.parametrize("value", [-1, 101, "low", True])
def test_bad_max_cloud_cover_raises(value) -> None:
    with pytest.raises(StacError, match="max_cloud_cover"):
        load_stac((12.7, 42.0, 12.8, 42.1), "2018", catalog=NO_SERVER, max_cloud_cover=value)


def test_unknown_band_raises_before_any_request() -> None:
    with pytest.raises(StacError, match="unknown band label 'B13'"):
        load_stac((12.7, 42.0, 12.8, 42.1), "2018", catalog=NO_SERVER, bands=["B13"])


# --------------------------------------------------------------------------- Planetary Computer


def test_planetary_computer_needs_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "planetary_computer", None)  # import fails
    with pytest.raises(StacError, match="pip install planetary-computer"):
        load_stac(
            (12.7, 42.0, 12.8, 42.1),
            "2018",
            catalog="https://planetarycomputer.microsoft.com/api/stac/v1",
        )


def test_planetary_computer_items_are_signed(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    import pystac_client

    signed: list[str] = []

    def sign_inplace(obj):
        # pystac-client hands search pages over as GeoJSON dicts.
        if isinstance(obj, dict) and obj.get("type") == "FeatureCollection":
            signed.extend(feature["id"] for feature in obj["features"])
        elif isinstance(obj, pystac.Item):
            signed.append(obj.id)
        return obj

    monkeypatch.setitem(
        sys.modules, "planetary_computer", types.SimpleNamespace(sign_inplace=sign_inplace)
    )
    real_open = pystac_client.Client.open.__func__
    pc_url = "https://planetarycomputer.microsoft.com/api/stac/v1"

    def open_loopback(cls, url, *args, **kwargs):
        # Same client code path, but answered by the loopback API instead of Microsoft's.
        assert url == pc_url
        return real_open(cls, api.url, *args, **kwargs)

    monkeypatch.setattr(pystac_client.Client, "open", classmethod(open_loopback))
    cube = api.load(catalog=pc_url, bands=["red"], time=SCENES["old"].date)
    assert cube.sizes["time"] == 1
    assert signed == [SCENES["old"].item_id]


# --------------------------------------------------------------------------- calibration rules


def _item(properties: dict, raster_band: dict) -> tuple[pystac.Item, pystac.Asset]:
    item = pystac.Item(
        "x", None, None, pd.Timestamp("2023-06-01", tz="UTC").to_pydatetime(), properties
    )
    asset = pystac.Asset("file:///x.tif", extra_fields={"raster:bands": [raster_band]})
    item.add_asset("red", asset)
    return item, asset


@pytest.mark.parametrize(
    ("properties", "raster_band", "expected"),
    [
        ({"s2:processing_baseline": "03.01"}, {"scale": 1e-4, "offset": 0}, (1e-4, 0.0)),
        ({"s2:processing_baseline": "03.01"}, {}, (1e-4, 0.0)),
        ({"s2:processing_baseline": "04.00"}, {"scale": 1e-4}, (1e-4, -1000.0)),
        ({"s2:processing_baseline": "05.11"}, {"scale": 1e-4, "offset": 0}, (1e-4, -1000.0)),
        ({"s2:processing_baseline": "05.00"}, {"scale": 1e-4, "offset": -0.1}, (1e-4, -1000.0)),
        (
            {"s2:processing_baseline": "04.00", "earthsearch:boa_offset_applied": True},
            {"scale": 1e-4, "offset": -0.1},
            (1e-4, 0.0),
        ),
        ({}, {"scale": 2e-4, "offset": -0.2}, (2e-4, -1000.0)),
    ],
)
def test_calibration_rules(properties: dict, raster_band: dict, expected) -> None:
    from xcloudfree.io.stac import _calibration, _resolve

    item, asset = _item(properties, raster_band)
    scale, offset_dn = _resolve(_calibration(item, asset), integer=True)
    assert scale == pytest.approx(expected[0])
    assert offset_dn == pytest.approx(expected[1])


# --------------------------------------------------------------------------- end to end


def test_end_to_end_from_the_api_to_written_files(api: Api, tmp_path: Path) -> None:
    """STAC search -> lazy load -> remove -> Zarr on disk, through the command line too."""
    import xcloudfree
    from xcloudfree.cli import main, write_result

    cube = api.load()
    result = xcloudfree.remove(cube, method="regression")
    assert all(isinstance(v.data, da.Array) for v in result.data_vars.values())
    write_result(result, tmp_path / "api", "zarr", progress=False)
    back = xr.open_zarr(
        tmp_path / "api" / "cloudfree.zarr", decode_coords="all", consolidated=False
    )
    assert back.rio.crs == cube.rio.crs
    eager = xcloudfree.remove(cube.compute(), method="regression")
    np.testing.assert_allclose(
        back["reflectance"].values, eager["reflectance"].values, atol=1e-6, equal_nan=True
    )
    np.testing.assert_array_equal(
        back["cloud_mask"].values.astype(bool), eager["cloud_mask"].values
    )

    w, s, e, n = api.bbox
    code = main([
        "remove", "--catalog", api.url, "--bbox", str(w), str(s), str(e), str(n),
        "--time", "2018-01-01/2018-12-31", "--crs", "utm", "--resolution", "20",
        "--method", "nearest", "--format", "cog", "--out", str(tmp_path / "cli"), "--quiet",
    ])  # fmt: skip
    assert code == 0
    tifs = sorted((tmp_path / "cli").glob("reflectance_*.tif"))
    assert len(tifs) == len(SCENES)
    import rioxarray

    first = rioxarray.open_rasterio(tifs[0])
    assert first.rio.crs.to_epsg() in range(32601, 32661)  # a UTM zone
    assert first.sizes["band"] == len(DEFAULT_BANDS)


def test_the_notebook_runs_from_the_api_to_written_composites(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """examples/stac_to_composites.ipynb, executed in a real kernel against the loopback API."""
    nbformat = pytest.importorskip("nbformat", reason="pip install -e '.[test]' (nbformat)")
    nbclient = pytest.importorskip("nbclient", reason="pip install -e '.[test]' (nbclient)")
    path = Path(__file__).resolve().parents[1] / "examples" / "stac_to_composites.ipynb"
    monkeypatch.setenv("XCLOUDFREE_STAC_URL", api.url)
    monkeypatch.setenv("XCLOUDFREE_BBOX", ",".join(map(str, api.bbox)))
    monkeypatch.setenv("XCLOUDFREE_TIME", "2018-01-01/2018-12-31")
    monkeypatch.setenv("XCLOUDFREE_RESOLUTION", "native")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )  # fmt: skip
    client.execute()
    dates = sorted(pd.Timestamp(s.date) for s in SCENES.values())
    # Every month from the first date to the last: a regular axis, empty months NaN.
    months = pd.date_range(dates[0].strftime("%Y-%m-01"), dates[-1], freq="MS")
    tifs = sorted(p.name for p in (tmp_path / "monthly").glob("reflectance_*.tif"))
    assert tifs == [f"reflectance_{m:%Y-%m-%d}.tif" for m in months]
    back = xr.open_zarr(tmp_path / "monthly.zarr", decode_coords="all", consolidated=False)
    assert back.rio.crs.to_epsg() == 4326 and back.sizes["time"] == len(months)
    observed = {d.strftime("%Y-%m-01") for d in dates}
    for m in months:
        count = back["count"].sel(time=m).values
        assert (count.max() > 0) == (f"{m:%Y-%m-%d}" in observed)
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    # The quicklook is shown once (Jupyter shows open figures *and* the cell's value).
    plot_cell = next(c for c in notebook.cells if "cloudfree.plot" in c.source)
    assert sum("image/png" in o.get("data", {}) for o in plot_cell.outputs) == 1
    # And nothing on the way warns.
    assert not [o for o in outputs if o.get("name") == "stderr" and "Warning" in o.get("text", "")]
