"""One date alone: what a cloudy pixel gets when no other date can help.

Every cloudy pixel of a single-date cube has no clear observation at another date;
``remove()`` fills it from the same date's clear surroundings (``fallback="inpaint"``,
:mod:`xcloudfree.fills.spatial`) or keeps it (``fallback="keep"``). All on data kept
out of the fit of ``spatial.MIN_WEIGHT`` and ``spatial.ERROR_BY_SCALE``
(``scripts/inpaint_rule.py``, training split of ``scripts/shared_data.py``):

* **Held-out worldwide pairs** (the last 5; one date each, L1C, 10 bands): the own
  mask of the cloudy image, the result scored against the pair's clear image (a later
  date, so every score carries the change between the dates), over the whole image
  and under the mask. Beside the library's fills: the cloudy input, and every masked
  pixel set to the date's flat mean of its clear pixels.
* **Held-out clear patches** (the last 5 bar the two that are not clear, see
  ``benchmarks/mask.py``) with real cloud shapes cut into them, truth known: the own
  masks of the held-out pairs' cloudy images and of the held-out donor dates of the
  series. PSNR under the holes, and ``expected_error`` against the real error (mean
  ratio, Spearman).

    python benchmarks/single_date.py [--out benchmarks/results/single_date.md]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import shared_data as sd

import xcloudfree
from xcloudfree.fills import spatial

NOT_CLEAR = ("2018-01-06", "2018-01-21")  # held-out "clear" patches with haze and cumulus
HOLE_COLUMNS = ["cover", "reached", "PSNR_inpaint", "PSNR_flat"]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


def _values(cube: xr.DataArray) -> np.ndarray:
    return cube.isel(time=0).transpose("band", "y", "x").values.astype(np.float32)


def pairs_table() -> list[dict]:
    rows = []
    for i, (cloudy, clear) in enumerate(sd.pairs("dev")):
        truth, x = _values(clear), _values(cloudy)
        runs = {}
        for method in ("regression", "hybrid"):
            for fallback in ("inpaint", "keep"):
                t0 = time.perf_counter()
                out = xcloudfree.remove(cloudy, method=method, fallback=fallback, progress=False)
                runs[(method, fallback)] = (out, time.perf_counter() - t0)
        hole = runs[("regression", "inpaint")][0].cloud_mask.values[0]
        flat = np.where(hole, x[:, ~hole].mean(axis=1)[:, None, None], x) if (~hole).any() else x
        fills = {"cloudy input": (x, 0.0), "flat clear mean": (flat, 0.0)}
        for (method, fallback), (out, s) in runs.items():
            fills[f"{method}, fallback={fallback}"] = (_values(out.reflectance), s)
        for label, (y, s) in fills.items():
            rows.append({
                "pair": i, "cover": round(float(hole.mean()), 3), "fill": label,
                "PSNR_all": _psnr(y, truth),
                "PSNR_cloud": _psnr(y[:, hole], truth[:, hole]) if hole.any() else np.nan,
                "s": round(s, 2),
            })  # fmt: skip
        print(rows[-1], flush=True)
    return rows


def holes_table() -> tuple[list[dict], dict]:
    shapes = [xcloudfree.cloud_mask(c, progress=False).isel(time=0).values
              for c, _ in sd.pairs("dev")]  # fmt: skip
    own = xcloudfree.cloud_mask(sd.series(), progress=False)
    shapes += [own.sel(time=d).values for d in sd.HELDOUT_SERIES_DONORS]
    shapes = [s.astype(bool) for s in shapes if 0.01 < s.mean() < 1.0]
    patches = [p for p in sd.clear_patches("dev") if str(p.time.values[0])[:10] not in NOT_CLEAR]
    rows, expected, real = [], [], []
    for p in patches:
        truth = _values(p)
        for j, hole in enumerate(shapes):
            mask = xr.DataArray(hole[None], dims=("time", "y", "x"), coords={"time": p.time})
            out = xcloudfree.remove(p, method="regression", mask=mask, progress=False)
            y = _values(out.reflectance)
            reached = out.fill_source.values[0] == 2
            flat = truth[:, ~hole].mean(axis=1, keepdims=True)
            rows.append({
                "patch": str(p.time.values[0])[:10], "shape": j, "cover": float(hole.mean()),
                "reached": float(reached.sum() / hole.sum()),
                "PSNR_inpaint": _psnr(y[:, reached], truth[:, reached]),
                "PSNR_flat": _psnr(flat, truth[:, reached]),
            })  # fmt: skip
            expected.append(out.expected_error.values[0][reached])
            real.append(np.abs(y[:, reached] - truth[:, reached]).mean(axis=0))
    e, r = np.concatenate(expected), np.concatenate(real)
    calib = {
        "pixels": int(e.size), "mean_expected": float(e.mean()), "mean_real": float(r.mean()),
        "spearman": float(spearmanr(e, r)[0]),
    }  # fmt: skip
    return rows, calib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=sd.ROOT / "benchmarks" / "results" / "single_date.md"
    )
    args = parser.parse_args()
    sd.require()
    pairs = pd.DataFrame(pairs_table())
    holes, calib = holes_table()
    holes = pd.DataFrame(holes)
    mean = pairs.groupby("fill", sort=False)[["PSNR_all", "s"]].mean()
    partly = pairs[(pairs.cover > 0) & (pairs.cover < 1)]
    under = partly.groupby("fill", sort=False)["PSNR_cloud"].mean()
    mean["PSNR_cloud (partly cloudy pairs)"] = under
    lines = [
        "# One date alone: the same-date fill",
        "",
        f"Produced by `python benchmarks/single_date.py {' '.join(sys.argv[1:])}` "
        f"(`MIN_WEIGHT` {spatial.MIN_WEIGHT}, scales {spatial.SIGMAS} px, fitted on training data "
        "by `scripts/inpaint_rule.py`).",
        "",
        "## Held-out worldwide pairs: own mask, scored against the later clear date",
        "",
        f"Mean over {pairs.pair.nunique()} pairs (`PSNR_cloud`: the {partly.pair.nunique()} "
        "pairs that are partly cloudy by the own mask); `s`: seconds of `remove()`.",
        "",
        sd.markdown(mean.round(2)),
        "",
        "Per pair:",
        "",
        sd.markdown(
            pairs.pivot_table(index="fill", columns="pair", values="PSNR_all", sort=False).round(2)
        ),
        "",
        "Own-mask cover per pair: "
        + ", ".join(f"{i}: {c:.2f}" for i, c in pairs.groupby("pair").cover.first().items()),
        "",
        "## Held-out clear patches with real cloud shapes cut in (truth known)",
        "",
        f"{holes.patch.nunique()} patches x {holes['shape'].nunique()} shapes; PSNR under the "
        "holes that a scale reaches:",
        "",
        sd.markdown(holes.groupby("shape")[HOLE_COLUMNS].mean().round(3)),
        "",
        f"Mean: same-date fill {holes.PSNR_inpaint.mean():.2f} dB, flat clear mean "
        f"{holes.PSNR_flat.mean():.2f} dB.",
        "",
        f"`expected_error` of the filled pixels: mean {calib['mean_expected']:.4f} against a real "
        f"{calib['mean_real']:.4f}; Spearman with the real error {calib['spearman']:.3f} "
        f"({calib['pixels']} pixels).",
        "",
    ]
    payload = {"pairs": pairs.to_dict("records"), "holes": holes.to_dict("records"),
               "calibration": calib}  # fmt: skip
    sd.write_report(args.out, lines, payload)


if __name__ == "__main__":
    main()
