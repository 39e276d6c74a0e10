"""Quality and speed of the classical baselines and of the spectral cloud mask.

Case: the embedded 30-date sample near Rome. Real clouds (footprint and all-band
reflectance) of its own partly cloudy dates are pasted over ``--targets`` clear
dates (``xcloudfree.simulate_clouds``, seed ``--seed``), so the truth under the
cloud is the clear date as observed. Every method is run twice: with the spectral
mask computed on the clouded cube, and with the true mask (pasted clouds OR the
spectral mask of the original). Metrics are over the target dates: ``*_cloud``
under the pasted clouds, ``*_all`` over the whole image.

The mask is scored against the real s2cloudless reference mask of
``../shared/data/s2cloudless_scene`` when that data is present.

Run from the repository root::

    python benchmarks/baselines.py [--targets 4] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import xarray as xr

import xcloudfree
from xcloudfree import metrics

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def score_mask() -> None:
    path = SHARED / "s2cloudless_scene" / "scene.npz"
    if not path.exists():
        print(f"mask F1: skipped, {path} is absent")
        return
    scene = np.load(path)
    dn = np.moveaxis(scene["reflectance_x10000"], -1, 0)[None]
    coords = {"time": [np.datetime64("2017-01-01", "ns")], "band": list(xcloudfree.cube.BAND_IDS)}
    cube = xr.DataArray(dn, dims=("time", "band", "y", "x"), coords=coords)
    reference = xr.DataArray(scene["cloud_mask"][None].astype(bool), dims=("time", "y", "x"))
    print("\nspectral mask vs s2cloudless reference (856 x 512 px, 46 % cloud)")
    print(f"{'bands':<24}{'dilate':>7}{'precision':>11}{'recall':>9}{'F1':>8}")
    for label, bands in (
        ("13 bands (with cirrus)", None),
        ("B02 B03 B04 B8A", ["B02", "B03", "B04", "B8A"]),
    ):
        sub = cube if bands is None else cube.sel(band=bands)
        for dilate in (0, 2):
            mask = xcloudfree.cloud_mask(sub, scale=1e-4, dilate=dilate)
            p, r, f = (
                float(fn(mask, reference)) for fn in (metrics.precision, metrics.recall, metrics.f1)
            )
            print(f"{label:<24}{dilate:>7}{p:>11.3f}{r:>9.3f}{f:>8.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    cube = xcloudfree.datasets.sample_timeseries()
    sim = xcloudfree.simulate_clouds(cube, targets=args.targets, seed=args.seed)
    pick = {"time": sim.targets}
    print("targets:", [str(t)[:10] for t in sim.targets])
    print("donors: ", [str(t)[:10] for t in sim.donors])
    print(f"pasted cloud fraction on targets: {float(sim.mask.sel(pick).mean()):.1%}")
    truth = sim.truth.sel(pick)
    columns = ("PSNR_cloud", "SSIM_cloud", "MAE_cloud", "SAM_cloud", "PSNR_all", "SSIM_all", "s")
    header = f"{'method':<12}{'mask':<10}" + "".join(f"{c:>11}" for c in columns)
    print("\n" + header)
    for method in xcloudfree.BASELINES:
        for label, mask in (("spectral", None), ("true", sim.true_mask)):
            start = time.perf_counter()
            out = xcloudfree.remove(sim.cloudy, method=method, mask=mask)
            seconds = time.perf_counter() - start
            pred = out["reflectance"].sel(pick)
            under = sim.mask.sel(pick)
            row = (
                metrics.psnr(pred, truth, mask=under), metrics.ssim(pred, truth, mask=under),
                metrics.mae(pred, truth, mask=under), metrics.sam(pred, truth, mask=under),
                metrics.psnr(pred, truth), metrics.ssim(pred, truth),
            )  # fmt: skip
            values = [float(x) for x in row] + [seconds]
            digits = (2, 4, 4, 4, 2, 4, 2)
            cells = "".join(f"{x:>11.{d}f}" for x, d in zip(values, digits))
            print(f"{method:<12}{label:<10}{cells}")
    px = cube.sizes["time"] * cube.sizes["y"] * cube.sizes["x"] / 1e6
    bands = cube.sizes["band"]
    print(f"\n(s = wall seconds of remove() on {px:.2f} megapixel-dates x {bands} bands, numpy)")
    score_mask()


if __name__ == "__main__":
    main()
