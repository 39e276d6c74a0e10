"""Choose the reach rule and fit the expected errors of the same-date fill on training data.

``xcloudfree.fills.spatial`` fills a pixel at the finest scale whose smoothed share of
clear pixels exceeds ``MIN_WEIGHT`` (the coarsest scale takes any clear pixel within
reach). Holes with real cloud shapes are cut into clear images whose truth is known:

* shapes: the own cloud masks of the *training* worldwide cloudy images (nearly all
  cover 97-100 %) and of the partly cloudy (10-90 %) *training* dates of the L1C
  series (the held-out donors excluded);
* images: the *training* clear patches of the L1C series.

Rule: the ``MIN_WEIGHT`` of :data:`CANDIDATES` with the best mean PSNR under the holes
(pixels every candidate reaches), printed beside the date's flat clear mean for
comparison. Then, with it, the mean absolute error (band mean) of the pixels filled at
each scale: the tuple to paste into ``ERROR_BY_SCALE``. Training data only
(``scripts/shared_data.py``); the held-out check is ``benchmarks/single_date.py``.

    python scripts/inpaint_rule.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shared_data as sd

import xcloudfree
from xcloudfree.fills import spatial

CANDIDATES = (1e-6, 0.01, 0.02, 0.05, 0.1, 0.2)


def training_shapes() -> list[np.ndarray]:
    """Real cloud shapes that leave some clear pixel, from training data only."""
    shapes = []
    for cloudy, _ in sd.pairs("train"):
        shapes.append(xcloudfree.cloud_mask(cloudy, progress=False).isel(time=0).values)
    series = sd.series_train()
    own = xcloudfree.cloud_mask(series, progress=False)
    cover = own.mean(("y", "x")).to_series()
    held = set(pd.to_datetime(sd.HELDOUT_SERIES_DONORS))
    shapes += [own.sel(time=t).values for t, c in cover.items() if 0.1 < c < 0.9 and t not in held]
    return [s.astype(bool) for s in shapes if 0.01 < s.mean() < 1.0]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


def main() -> None:
    sd.require()
    shapes = training_shapes()
    patches = [p.isel(time=0).transpose("band", "y", "x").values.astype(np.float32)
               for p in sd.clear_patches("train")]  # fmt: skip
    scores: dict[str, list[float]] = {"flat clear mean": [], **{str(c): [] for c in CANDIDATES}}
    fills = {}
    for values in patches:
        for hole in shapes:
            for c in CANDIDATES:
                fills[c] = spatial.inpaint(values, ~hole, hole, min_weight=c)
            reached = hole & np.logical_and.reduce([s >= 0 for _, s in fills.values()])
            truth = values[:, reached]
            flat = values[:, ~hole].mean(axis=1, keepdims=True)
            scores["flat clear mean"].append(_psnr(flat, truth))
            for c in CANDIDATES:
                scores[str(c)].append(_psnr(fills[c][0][:, reached], truth))
    mean = pd.Series({k: np.mean(v) for k, v in scores.items()})
    print(f"{len(patches)} patches x {len(shapes)} shapes; mean PSNR under the holes:")
    print(mean.round(2).to_string())
    best = max(CANDIDATES, key=lambda c: mean[str(c)])
    print("MIN_WEIGHT =", best)

    n = len(spatial.SIGMAS)
    err_sum, count = np.zeros(n), np.zeros(n)
    for values in patches:
        for hole in shapes:
            filled, scale = spatial.inpaint(values, ~hole, hole, min_weight=best)
            err = np.abs(filled - values).mean(axis=0)
            for i in range(n):
                err_sum[i] += err[scale == i].sum()
                count[i] += (scale == i).sum()
    mean_err = err_sum / np.maximum(count, 1)
    for sigma, c, e in zip(spatial.SIGMAS, count, mean_err, strict=True):
        print(f"sigma {sigma:4d} px: {int(c):9d} pixels, mean |error| {e:.4f}")
    print("ERROR_BY_SCALE =", "(" + ", ".join(f"{e:.4f}" for e in mean_err) + ")")


if __name__ == "__main__":
    main()
