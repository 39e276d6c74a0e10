"""The command line and the writers: the demo end to end, Zarr and COG with CRS."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import rioxarray
import xarray as xr

import xcloudfree
from xcloudfree.cli import main, write_result


def test_demo_writes_everything(tmp_path, sample):
    assert main(["demo", "--out", str(tmp_path), "--quiet", "--targets", "2"]) == 0
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["method"] == "hybrid"
    assert report["case"]["targets"] == ["2018-06-10", "2018-07-30"]  # held out of training
    assert report["metrics"]["psnr_masked"] > 25
    assert (tmp_path / "quicklook.png").stat().st_size > 10_000
    ds = xr.open_zarr(tmp_path / "cloudfree.zarr", decode_coords="all", consolidated=False)
    assert ds.rio.crs == sample.rio.crs
    assert ds["reflectance"].dims == ("time", "band", "y", "x")
    assert ds["reflectance"].dtype == np.float32
    assert ds["band"].values.tolist() == sample["band"].values.tolist()
    np.testing.assert_array_equal(ds["time"].values, sample["time"].values)
    assert set(np.unique(ds["cloud_mask"].values)) <= {0, 1}


def test_cog_output_keeps_crs_and_values(tmp_path, small):
    result = xcloudfree.remove(small, method="nearest")
    written = write_result(result, tmp_path, "cog", progress=False)
    # + cloud_mask, mask_class, fill_source, quality
    assert len(written) == small.sizes["time"] + 4
    date = str(small.time.values[1])[:10]
    back = rioxarray.open_rasterio(tmp_path / f"reflectance_{date}.tif")
    assert back.rio.crs == small.rio.crs
    np.testing.assert_allclose(back.rio.transform(), small.rio.transform(), atol=1e-12)
    np.testing.assert_array_equal(back.values, result["reflectance"].isel(time=1).values)
    mask = rioxarray.open_rasterio(tmp_path / "cloud_mask.tif")
    np.testing.assert_array_equal(mask.values.astype(bool), result["cloud_mask"].values)


def test_result_accessor_writes_cogs_with_ids_dates_and_provenance(tmp_path, small):
    import rasterio

    result = xcloudfree.remove(small, method="regression")
    written = result.cloudfree.to_cog(tmp_path, progress=False)
    assert {p.name for p in written} == {
        *(f"reflectance_{str(t)[:10]}.tif" for t in small.time.values),
        "cloud_mask.tif", "mask_class.tif", "fill_source.tif", "quality.tif",
        "expected_error.tif",
    }  # fmt: skip
    date = str(small.time.values[2])[:10]
    with rasterio.open(tmp_path / f"reflectance_{date}.tif") as src:
        assert list(src.descriptions) == small["band"].values.tolist()
        tags = src.tags()
        assert tags["date"] == date and tags["method"] == "regression"
        assert tags["mask"] == result.attrs["mask"]
    times = [str(t)[:10] for t in small.time.values]
    with rasterio.open(tmp_path / "mask_class.tif") as src:
        assert src.dtypes[0] == "uint8" and list(src.descriptions) == times
        assert src.tags()["flag_meanings"].startswith("clear thick_cloud")
        np.testing.assert_array_equal(src.read(), result["mask_class"].values)
    with rasterio.open(tmp_path / "quality.tif") as src:
        assert src.tags()["dates"] == " ".join(times)


def test_result_accessor_writes_zarr_without_warnings(tmp_path, small, recwarn):
    result = xcloudfree.remove(small.chunk({"y": 32}), method="nearest")
    path = result.cloudfree.to_zarr(tmp_path / "out.zarr", progress=False)
    assert not [w for w in recwarn if "dtype" in str(w.message).lower()]
    back = xr.open_zarr(path, decode_coords="all", consolidated=False)
    assert back.rio.crs == small.rio.crs
    assert back["band"].values.tolist() == small["band"].values.tolist()
    assert back.attrs["mask"] == result.attrs["mask"]
    np.testing.assert_array_equal(back["reflectance"].values, result["reflectance"].values)


def test_result_accessor_refuses_other_datasets(small):
    with pytest.raises(
        xcloudfree.errors.CubeError,
        match=r"result of xcloudfree\.remove.*needs \['reflectance'\].*remove",
    ):
        small.to_dataset(name="cube").cloudfree.to_cog("never")


def test_unknown_format_refused(tmp_path, small):
    with pytest.raises(ValueError, match="zarr"):
        write_result(xcloudfree.remove(small, method="nearest"), tmp_path, "png")


def test_help_is_useful():
    out = subprocess.run(
        [sys.executable, "-m", "xcloudfree.cli", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert "demo" in out.stdout and "remove" in out.stdout
    sub = subprocess.run(
        [sys.executable, "-m", "xcloudfree.cli", "remove", "--help"], capture_output=True, text=True
    )
    assert "--bbox" in sub.stdout and "--method" in sub.stdout
    # Every option says what it does, and the defaults that matter are shown.
    text = " ".join(sub.stdout.split())
    assert "west south east north" in text
    assert "(default: https://earth-search.aws.element84.com/v1)" in text.replace(
        "earth- ", "earth-"
    )
    assert "(default: sentinel-2-l2a)" in text and "(default: 10)" in text
    assert "(default: fused)" in text and "(default: None)" not in text


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"xcloudfree {xcloudfree.__version__}"


_REMOVE = ["remove", "--bbox", "0", "0", "1", "1", "--time", "2024", "--out", "x"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "--out", "x", "--targets", "5"], "invalid choice: 5"),
        (["demo", "--out", "x", "--targets", "0"], "invalid choice: 0"),
        ([*_REMOVE, "--resolution", "ten"], "'ten' is not a pixel size"),
        ([*_REMOVE, "--mask", "fmask"], "invalid choice: 'fmask'"),
    ],
)
def test_bad_options_are_refused_by_the_parser(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_native_resolution_reaches_load_stac(monkeypatch):
    import xcloudfree.io.stac

    seen = {}

    def fake_load_stac(bbox, time, **kwargs):
        seen.update(kwargs)
        raise xcloudfree.errors.StacError("stop here")

    monkeypatch.setattr(xcloudfree.io.stac, "load_stac", fake_load_stac)
    assert main([*_REMOVE, "--resolution", "native", "--mask", "scl"]) == 2
    assert seen["resolution"] is None and seen["scl"] is True


def test_input_errors_exit_2_with_one_line(capsys):
    code = main(["remove", "--bbox", "10", "40", "9", "41", "--time", "2024-01/2024-02",
                 "--out", "/nonexistent/never"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("xcloudfree: error:") and "Traceback" not in err
