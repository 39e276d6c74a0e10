"""Quality of the shipped hybrid model vs its ablations and the classical baselines.

Everything is scored on the development split kept out of training
(``scripts/shared_data.py``):

* **L1C series** — the 30-date ROI 146 series; real clouds (footprint and all-band
  reflectance) of its held-out partly cloudy dates (2018-03-07, 09-18) are laid over
  the four held-out clear dates (``simulate_clouds``, seed 0), so the truth under
  the cloud is known and no laid cloud was seen by the mask's training.
* **L2A Hungary** — the GreenEarthNet L2A cube (RGB + B8A, 20 m); clouds of its
  held-out donors (``s2_dlmask``) over its three held-out clear dates.
* **L2A Sweden** — the same for the boreal cube (three held-out targets, three
  held-out donors, chosen by the dlmask's cloud classes).
* **Real clouds** — the series' real partly cloudy dates, scored under their cloud
  against the nearest clear date (a proxy: the surface changes in between).
* **Mask** — masks against the s2cloudless reference on the held-out rows of
  ``s2cloudless_scene`` (one date, so the temporal mask has no series there).

Masks: ``own`` is the library's default (the temporal mask network, as applied by
``remove()``); ``reference`` is the laid clouds OR the other dates' reference
(L1C: the spectral test; L2A: the dlmask, every class). Methods: ``hybrid``
(STGAN + CycleGAN), ``stgan`` only, ``cyclegan`` only (the refiner on the
regression base), each with the own mask (``hybrid`` with its guard, the rest without:
what each network does on its own); the four classical baselines with the
own and the reference mask; and the ``regression`` fill with the other mask
sources (``spectral``, ``model`` = the hybrid's old mask head, ``csmask`` =
ukis-csmask where installed).

Columns: PSNR/SSIM/MAE/SAM under the pasted clouds (``_cloud``), the colour cast
(``bias``, the largest per-band mean signed error under the cloud) and the seam
(``seam``, the error in a 3 px ring inside the cloud's edge over the error deeper
inside; ``seam_wide`` the same over footprints wide enough to have an inside), the
same over the whole target images (``_all``), PSNR over pixels outside the method's
mask (``PSNR_clear``; inf = unchanged), temporal consistency (mean |change - true
change| between consecutive clear dates, lower is better) and seconds.

    python benchmarks/quality.py [--out benchmarks/results/quality.md]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import shared_data as sd

import xcloudfree
from xcloudfree import metrics

COLUMNS = ("PSNR_cloud", "SSIM_cloud", "MAE_cloud", "SAM_cloud", "bias", "seam", "seam_wide",
           "PSNR_all", "SSIM_all", "PSNR_clear", "TC", "s")  # fmt: skip
DIGITS = (2, 4, 4, 4, 4, 2, 2, 2, 4, 2, 4, 1)
#: Width in pixels of the ring along the laid cloud's edge that ``seam`` scores.
SEAM_RING = 3
CORE4 = ["B02", "B03", "B04", "B08"]


def _score(out: xr.Dataset, sim, clear_dates, seconds) -> dict[str, float]:
    pick = {"time": sim.targets}
    pred, truth = out["reflectance"].sel(pick), sim.truth.sel(pick)
    under = sim.mask.sel(pick)
    outside = ~out["cloud_mask"].sel(pick)
    cloudy_in = sim.cloudy.sel(pick)
    row = {
        "PSNR_cloud": metrics.psnr(pred, truth, mask=under),
        "SSIM_cloud": metrics.ssim(pred, truth, mask=under),
        "MAE_cloud": metrics.mae(pred, truth, mask=under),
        "SAM_cloud": metrics.sam(pred, truth, mask=under),
        "PSNR_all": metrics.psnr(pred, truth),
        "SSIM_all": metrics.ssim(pred, truth),
        "PSNR_clear": metrics.psnr(pred, cloudy_in, mask=outside),
        "TC": metrics.temporal_consistency(
            out["reflectance"].sel(time=clear_dates), sim.truth.sel(time=clear_dates)
        ),
    }
    row.update(_bias_and_seam(pred, truth, under))
    row = {k: float(v) for k, v in row.items()}
    row["s"] = seconds
    return row


def _bias_and_seam(pred, truth, under) -> dict[str, float]:
    """The colour cast and the seam of a fill under the laid cloud.

    ``bias``: the largest per-band mean signed error under the cloud (target within
    0.005). ``seam``: the mean absolute error in the ``SEAM_RING`` px along the inside
    of the laid cloud's edge, where the fill meets the observed pixels (and where an
    own mask that misses the cloud's faint rim leaves it in), over the error deeper
    inside (target <= 1.5); ``seam_wide``: the same ring on footprints with an inside.
    """
    err = pred - truth
    bias = float(np.abs(err.where(under).mean(("time", "y", "x"))).max())
    under = under.transpose("time", "y", "x").astype(bool)
    inner = np.stack([ndimage.binary_erosion(c, iterations=SEAM_RING) for c in under.values])
    # Footprints too thin to have an inside are all ring: a strip laid along a road
    # counts the road's error as seam. ``seam_wide`` keeps the footprints with an inside.
    wide = np.zeros_like(inner)
    for t, c in enumerate(under.values):
        label, _ = ndimage.label(c)
        wide[t] = np.isin(label, np.unique(label[inner[t]])) & (label > 0)
    inner_mae = float(metrics.mae(pred, truth, mask=under.copy(data=inner)))
    ring = {k: float(metrics.mae(pred, truth, mask=under.copy(data=m & ~inner)))
            for k, m in (("seam", under.values), ("seam_wide", wide))}  # fmt: skip
    return {"bias": bias, **{k: v / inner_mae for k, v in ring.items()}}


def _run(cube, method, mask, **kw):
    start = time.perf_counter()
    out = xcloudfree.remove(cube, method=method, mask=mask, **kw)
    out = out.compute()
    return out, time.perf_counter() - start


def simulated_case(name, cube, sim, truth_mask) -> list[dict]:
    clear = truth_mask.mean(("y", "x")).values <= 0.05
    clear_dates = cube["time"].values[clear]
    rows = []
    start = time.perf_counter()
    own = xcloudfree.cloud_mask(sim.cloudy, progress=False).compute()
    mask_seconds = time.perf_counter() - start
    model_out, seconds = _run(sim.cloudy, "hybrid", own)
    rows.append({"case": name, "method": "hybrid", "mask": "own",
                 **_score(model_out, sim, clear_dates, seconds + mask_seconds)})  # fmt: skip
    out, seconds = _run(sim.cloudy, "hybrid", own, guard=False)
    rows.append({"case": name, "method": "hybrid, no guard", "mask": "own",
                 **_score(out, sim, clear_dates, seconds + mask_seconds)})  # fmt: skip
    for stages in (("stgan",), ("cyclegan",)):
        out, seconds = _run(sim.cloudy, "hybrid", own, stages=stages, guard=False)
        rows.append({"case": name, "method": f"{stages[0]} only", "mask": "own",
                     **_score(out, sim, clear_dates, seconds)})  # fmt: skip
    for method in xcloudfree.BASELINES:
        for label, mask in (("own", own), ("reference", sim.true_mask)):
            out, seconds = _run(sim.cloudy, method, mask)
            rows.append({"case": name, "method": method, "mask": label,
                         **_score(out, sim, clear_dates, seconds)})  # fmt: skip
    # The same regression fill with the other mask sources.
    for label in ("spectral", "model", "csmask"):
        if label == "csmask" and not _has_csmask():
            continue
        start = time.perf_counter()
        other = xcloudfree.cloud_mask(sim.cloudy, label, progress=False).compute()
        out, seconds = _run(sim.cloudy, "regression", other)
        total = seconds + time.perf_counter() - start
        rows.append({"case": name, "method": "regression", "mask": label,
                     **_score(out, sim, clear_dates, total)})  # fmt: skip
    pick = {"time": sim.targets}
    truth = sim.true_mask.sel(pick)
    mask_scores = {
        "case": name,
        "precision": float(metrics.precision(own.sel(pick), truth)),
        "recall": float(metrics.recall(own.sel(pick), truth)),
        "f1": float(metrics.f1(own.sel(pick), truth)),
    }
    return rows, mask_scores


def _has_csmask() -> bool:
    try:
        import ukis_csmask.mask  # noqa: F401
    except ImportError:
        return False
    return True


def real_cloud_case(cube) -> list[dict]:
    """Real partly cloudy dates, scored against the nearest clear date under the cloud."""
    spectral = xcloudfree.cloud_mask(cube, "spectral", dilate=0)
    frac = spectral.mean(("y", "x")).values
    clear = np.flatnonzero(frac <= 0.05)
    cloudy = np.flatnonzero((frac >= 0.1) & (frac <= 0.8))
    days = cube["time"].values.astype("datetime64[D]").astype(int)
    ref_idx = [clear[np.argmin(np.abs(days[clear] - days[t]))] for t in cloudy]
    rows = []
    mask = xcloudfree.cloud_mask(cube, progress=False)
    model_out, _ = _run(cube, "hybrid", mask)
    for method in ("hybrid", *xcloudfree.BASELINES):
        out = model_out if method == "hybrid" else _run(cube, method, mask)[0]
        pred = out["reflectance"].isel(time=cloudy)
        ref = cube.isel(time=ref_idx).assign_coords(time=pred["time"])
        under = spectral.isel(time=cloudy) & mask.isel(time=cloudy)
        rows.append({
            "method": method, "dates": len(cloudy),
            "PSNR_cloud": float(metrics.psnr(pred, ref, mask=under)),
            "SSIM_cloud": float(metrics.ssim(pred, ref, mask=under)),
            "MAE_cloud": float(metrics.mae(pred, ref, mask=under)),
        })  # fmt: skip
    return rows


def mask_case() -> list[dict]:
    rows = []
    for label, rows_ in (
        ("held-out rows 570-855", sd.SCENE_DEV_ROWS),
        ("whole scene", slice(None)),
    ):
        cube, ref = sd.scene(rows_)
        for name, mask in (
            ("temporal mask (one date), 13 bands", xcloudfree.cloud_mask(cube, dilate=0)),
            ("temporal mask (one date), 4 bands",
             xcloudfree.cloud_mask(cube.sel(band=CORE4), dilate=0)),
            ("old mask head (B02 B03 B04 B08)",
             xcloudfree.cloud_mask(cube.sel(band=CORE4), "model", dilate=0)),
            ("spectral test, 13 bands", xcloudfree.cloud_mask(cube, "spectral", dilate=0)),
            ("spectral test, 4 bands",
             xcloudfree.cloud_mask(cube.sel(band=CORE4), "spectral", dilate=0)),
        ):  # fmt: skip
            rows.append({
                "rows": label, "mask": name,
                "precision": float(metrics.precision(mask, ref)),
                "recall": float(metrics.recall(mask, ref)),
                "f1": float(metrics.f1(mask, ref)),
            })  # fmt: skip
    return rows


def _table(rows: list[dict], columns, digits) -> str:
    head = "| case | method | mask | " + " | ".join(columns) + " |"
    lines = [head, "|" + "---|" * (3 + len(columns))]
    for r in rows:
        cells = [("inf" if np.isinf(r[c]) else f"{r[c]:.{d}f}") for c, d in zip(columns, digits)]
        lines.append(f"| {r['case']} | {r['method']} | {r['mask']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=sd.ROOT / "benchmarks" / "results" / "quality.md"
    )
    args = parser.parse_args()
    sd.require()
    model = xcloudfree.models.pretrained()
    cost = model.cost()

    series = sd.series()
    sim = xcloudfree.simulate_clouds(series, targets=sd.HELDOUT_SERIES_DATES, seed=0,
                                     donors=sd.HELDOUT_SERIES_DONORS)  # fmt: skip
    rows, mask_scores = simulated_case(
        "L1C series", series, sim, xcloudfree.cloud_mask(series, "spectral", dilate=0)
    )
    cube, dl = sd.l2a()
    sim2 = xcloudfree.simulate_clouds(cube, targets=sd.HELDOUT_L2A_DATES, seed=0, mask=dl,
                                      donors=sd.HELDOUT_L2A_DONORS)  # fmt: skip
    rows2, mask_scores2 = simulated_case("L2A Hungary", cube, sim2, dl)
    # Sweden: the dlmask calls dark forest "shadow" on clear dates, so targets and
    # donors are chosen by its cloud classes; the reference mask has every class.
    sweden, _ = sd.l2a("sweden_34VCL")
    sdl = sd.l2a_dlmask("sweden_34VCL")
    sim3 = sd.simulate_sweden(sweden, sdl, targets=sd.HELDOUT_SWEDEN_DATES,
                              donors=sd.HELDOUT_SWEDEN_DONORS, seed=0)  # fmt: skip
    rows3, mask_scores3 = simulated_case("L2A Sweden", sweden, sim3, sdl.isin([1, 2]))
    rows2 += rows3
    real = real_cloud_case(series)
    masks = mask_case()

    text = ["## Simulated clouds on held-out clear dates (truth known)", "",
            _table(rows + rows2, COLUMNS, DIGITS), "",
            "Cloud cover laid over the targets: "
            f"L1C {float(sim.mask.sel(time=sim.targets).mean()):.1%}, "
            f"L2A Hungary {float(sim2.mask.sel(time=sim2.targets).mean()):.1%}, "
            f"L2A Sweden {float(sim3.mask.sel(time=sim3.targets).mean()):.1%}.", "",
            "## Own (temporal) mask vs the reference mask on the simulated targets", "",
            "| case | precision | recall | F1 |", "|---|---|---|---|"]  # fmt: skip
    for m in (mask_scores, mask_scores2, mask_scores3):
        text.append(f"| {m['case']} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} |")
    text += ["", f"## Real clouds on {real[0]['dates']} partly cloudy dates of the series, "
             "vs the nearest clear date", "",
             "| method (own mask) | PSNR_cloud | SSIM_cloud | MAE_cloud |",
             "|---|---|---|---|"]  # fmt: skip
    for r in real:
        text.append(
            f"| {r['method']} | {r['PSNR_cloud']:.2f} | {r['SSIM_cloud']:.4f} | "
            f"{r['MAE_cloud']:.4f} |"
        )
    text += ["", "## Cloud mask vs the s2cloudless reference", "",
             "| rows | mask | precision | recall | F1 |", "|---|---|---|---|---|"]  # fmt: skip
    for r in masks:
        text.append(
            f"| {r['rows']} | {r['mask']} | {r['precision']:.3f} | {r['recall']:.3f} | "
            f"{r['f1']:.3f} |"
        )
    text += ["", "## Model cost", "",
             f"{cost['parameters_inference']:.0f} parameters for inference "
             f"({cost['parameters_stgan']:.0f} STGAN, {cost['parameters_refiner']:.0f} refiner, "
             f"{cost['parameters_mask_head']:.0f} mask head; F, training only: "
             f"{cost['parameters_clouder']:.0f}); {cost['flops_per_pixel'] / 1e3:.0f} kFLOP per "
             f"pixel and filled date (STGAN {cost['flops_per_pixel_stgan'] / 1e3:.0f}k at K=3, "
             f"refiner {cost['flops_per_pixel_refiner'] / 1e3:.0f}k, mask head "
             f"{cost['flops_per_pixel_mask_head'] / 1e3:.0f}k per date)."]  # fmt: skip
    report = "\n".join(text)
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report + "\n")
    args.out.with_suffix(".json").write_text(
        json.dumps(
            {
                "simulated": rows + rows2,
                "mask_simulated": [mask_scores, mask_scores2, mask_scores3],
                "real": real,
                "mask": masks,
                "cost": cost,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
