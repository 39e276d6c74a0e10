"""The real data in ../shared/data and the development split kept out of training.

Used by ``scripts/train_pretrained.py`` (training split) and
``benchmarks/quality.py`` (held-out split), so both agree on what is held out.
Point ``XCLOUDFREE_SHARED_DATA`` elsewhere to use another copy.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

import xcloudfree
from xcloudfree.io.datasets import read_geotiff, read_greenearthnet

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("XCLOUDFREE_SHARED_DATA", ROOT.parent / "shared" / "data"))

#: Bands of the embedded sample (the 10 m/20 m land bands); L1C inputs are cut to these.
BANDS10 = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]
_SCENE_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10",
                "B11", "B12"]  # fmt: skip

# ---- the development split: never used in training ----------------------------------
#: Clear dates of the ROI 146 series held out (they are dropped from the training cube).
HELDOUT_SERIES_DATES = ["2018-06-10", "2018-07-30", "2018-08-09", "2018-09-03"]
#: Clear dates of the Hungary L2A cube held out (dropped from its training cube).
HELDOUT_L2A_DATES = ["2021-06-15", "2021-06-30", "2021-07-30"]
#: Partly cloudy dates held out everywhere (mask training too); the only cloud donors of
#: the quality benchmark, so no cloud it lays over a target was seen in training.
HELDOUT_SERIES_DONORS = ["2018-03-07", "2018-09-18"]
HELDOUT_L2A_DONORS = ["2021-04-01", "2021-04-21", "2021-06-10"]
#: The Sweden L2A cube (and the same acquisitions in gee_l2a): clear targets and donors.
HELDOUT_SWEDEN_DATES = ["2021-04-18", "2021-06-07", "2021-07-02"]
HELDOUT_SWEDEN_DONORS = ["2021-06-27", "2021-07-12", "2021-07-22"]
#: The last N clear patches and pairs (sorted by name) are held out.
HELDOUT_PATCHES = 5
HELDOUT_PAIRS = 5
#: Rows of the s2cloudless scene: the top part trains the mask head, the rest scores it.
SCENE_TRAIN_ROWS = slice(0, 570)
SCENE_DEV_ROWS = slice(570, None)


def require() -> Path:
    if not (DATA / "README.md").exists():
        raise SystemExit(f"the shared data is not at {DATA}: set XCLOUDFREE_SHARED_DATA")
    return DATA


def series() -> xr.DataArray:
    """The 30-date ROI 146 series (the package's embedded copy, 10 bands)."""
    return xcloudfree.datasets.sample_timeseries()


def series_train() -> xr.DataArray:
    cube = series()
    return cube.drop_sel(time=pd.to_datetime(HELDOUT_SERIES_DATES).values)


def l2a(name: str = "hungary_romania_34TET") -> tuple[xr.DataArray, xr.DataArray]:
    return read_greenearthnet(require() / "greenearthnet_l2a" / f"{name}.nc")


def l2a_train() -> tuple[xr.DataArray, xr.DataArray]:
    cube, mask = l2a()
    held = pd.to_datetime(HELDOUT_L2A_DATES).values
    return cube.drop_sel(time=held), mask.drop_sel(time=held)


def clear_patches(split: str = "train") -> list[xr.DataArray]:
    files = sorted((require() / "sen12mscrts_roi146" / "clear_patches").glob("*.tif"))
    files = files[:-HELDOUT_PATCHES] if split == "train" else files[-HELDOUT_PATCHES:]
    return [read_geotiff(f).sel(band=BANDS10).load() for f in files]


def pairs(split: str = "train") -> list[tuple[xr.DataArray, xr.DataArray]]:
    """``(cloudy, clear)`` single-date cubes of the worldwide pairs (dated 2000-01-01)."""
    dirs = sorted(p for p in (require() / "sen12mscr_pairs").iterdir() if p.is_dir())
    dirs = dirs[:-HELDOUT_PAIRS] if split == "train" else dirs[-HELDOUT_PAIRS:]
    out = []
    for d in dirs:
        pair = [read_geotiff(d / f"{n}.tif", time="2000-01-01").sel(band=BANDS10).load()
                for n in ("cloudy", "clear")]  # fmt: skip
        out.append((pair[0], pair[1]))
    return out


def scene(rows: slice = slice(None)) -> tuple[xr.DataArray, xr.DataArray]:
    """The s2cloudless scene as a one-date 13-band cube and its reference cloud mask."""
    with np.load(require() / "s2cloudless_scene" / "scene.npz") as z:
        refl = z["reflectance_x10000"][rows].astype(np.float32) / 10000
        ref = z["cloud_mask"][rows].astype(bool)
    h, w = ref.shape
    coords = {"time": [np.datetime64("2000-01-01", "ns")], "y": np.arange(h), "x": np.arange(w)}
    cube = xr.DataArray(
        refl.transpose(2, 0, 1)[None], dims=("time", "band", "y", "x"),
        coords={**coords, "band": _SCENE_BANDS},
    )  # fmt: skip
    mask = xr.DataArray(ref[None], dims=("time", "y", "x"), coords=coords, name="cloud_mask")
    return cube, mask


def l2a_dlmask(name: str = "hungary_romania_34TET") -> xr.DataArray:
    """The cube's ``s2_dlmask`` classes as uint8 (time, y, x): 0 clear, 1 thick cloud,
    2 thin cloud, 3 cloud shadow (CloudSEN12's coding, checked by eye on both cubes:
    class 3 lies beside clouds, displaced away from the sun, and class 2 on haze; the
    shared README's "2 shadow, 3 snow" is wrong)."""
    return read_greenearthnet(require() / "greenearthnet_l2a" / f"{name}.nc", classes=True)[1]


def belgium() -> tuple[xr.DataArray, xr.DataArray]:
    """The openEO Belgium L2A cube (B02 B03 B04 B08, DN 0 as NaN) and its raw SCL codes."""
    ds = xr.open_dataset(require() / "openeo_belgium_l2a" / "belgium_2023q4.nc")
    bands = ["B02", "B03", "B04", "B08"]
    v = np.stack([ds[f"S2-L2A-{b}"].values for b in bands], 1).astype(np.float32)
    v = np.where(v == 0, np.nan, v * 1e-4)  # DN 0 is nodata
    coords = {"time": ds["t"].values, "y": ds["y"].values, "x": ds["x"].values}
    cube = xr.DataArray(v, dims=("time", "band", "y", "x"), coords={**coords, "band": bands})
    scl = xr.DataArray(ds["S2-L2A-SCL"].values, dims=("time", "y", "x"), coords=coords)
    return cube, scl


def simulate_sweden(cube, dlmask, *, targets, donors, seed):
    """Laid clouds on the Sweden cube: targets and donors chosen by the dlmask's *cloud*
    classes (it calls dark forest "shadow" on clear dates, so no date is clear by all its
    classes); the reference mask is the laid clouds or any dlmask class."""
    import dataclasses

    sim = xcloudfree.simulate_clouds(
        cube, targets=targets, seed=seed, mask=dlmask.isin([1, 2]), clear_max=0.1,
        donors=donors,
    )  # fmt: skip
    return dataclasses.replace(sim, true_mask=(sim.mask | (dlmask > 0)).rename("cloud_mask"))


def heldout_cases() -> dict:
    """The held-out simulated cases of the benchmarks (seed 0): name -> ``SimulatedClouds``.

    Real clouds of held-out donors over held-out clear dates of the L1C series and of
    the Hungary and Sweden L2A cubes; no laid cloud, target or neighbour was trained on.
    """
    series_ = series()
    cube, dl = l2a()
    sweden, _ = l2a("sweden_34VCL")
    return {
        "L1C series": xcloudfree.simulate_clouds(
            series_, targets=HELDOUT_SERIES_DATES, seed=0, donors=HELDOUT_SERIES_DONORS
        ),
        "L2A Hungary": xcloudfree.simulate_clouds(
            cube, targets=HELDOUT_L2A_DATES, seed=0, mask=dl, donors=HELDOUT_L2A_DONORS
        ),
        "L2A Sweden": simulate_sweden(
            sweden, l2a_dlmask("sweden_34VCL"), targets=HELDOUT_SWEDEN_DATES,
            donors=HELDOUT_SWEDEN_DONORS, seed=0,
        ),
    }  # fmt: skip


def markdown(frame) -> str:
    """A pandas DataFrame as a Markdown table, index first (no ``tabulate`` needed)."""
    names = [str(n) for n in frame.index.names]
    head = "| " + " | ".join([*names, *map(str, frame.columns)]) + " |"
    lines = [head, "|" + "---|" * (len(names) + len(frame.columns))]
    for idx, row in frame.iterrows():
        keys = idx if isinstance(idx, tuple) else (idx,)
        lines.append("| " + " | ".join(map(str, [*keys, *row.tolist()])) + " |")
    return "\n".join(lines)


def write_report(path: Path, lines: list[str], payload: dict) -> None:
    """Write a benchmark's Markdown ``lines`` to ``path`` and ``payload`` beside it as JSON."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    path.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
    print("\n".join(lines))
