"""Choose the temporal mask's threshold and dilation by the fill's error under cloud.

A missed cloud pixel costs a fill far more than a clear pixel filled needlessly, so
the operating point is the one that gives the ``regression`` fill its best PSNR
over the whole target images (which counts both costs as they really are: a
missed cloud pixel keeps the cloud, a needless fill adds the fill's small error),
not the best F1. Only *training* dates are used (targets and
cloud donors outside every held-out list of ``scripts/shared_data.py``); the result
is written into the weights' config.

    python scripts/mask_operating_point.py [--weights xcloudfree/weights/mask_v2.pt]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import shared_data as sd

import xcloudfree
from xcloudfree import metrics
from xcloudfree.masking import dilate_mask
from xcloudfree.models.temporal_mask import load_mask_model

THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.5)
DILATIONS = (0, 2, 3, 4, 6, 8)


def cases():
    series = sd.series_train()
    yield "L1C series", xcloudfree.simulate_clouds(
        series, targets=["2018-05-31", "2018-08-24", "2018-10-08"], seed=1,
        donors=["2018-01-21", "2018-02-25", "2018-07-05"],
    )  # fmt: skip
    cube, dl = sd.l2a_train()
    yield "L2A Hungary", xcloudfree.simulate_clouds(
        cube, targets=["2021-05-06", "2021-05-21", "2021-06-25"], seed=1, mask=dl,
        donors=["2021-06-20", "2021-07-05"],
    )  # fmt: skip
    sweden = sd.l2a("sweden_34VCL")[0]
    dl = sd.l2a_dlmask("sweden_34VCL")
    keep = ~np.isin(sweden["time"].values, pd.to_datetime(
        sd.HELDOUT_SWEDEN_DATES + sd.HELDOUT_SWEDEN_DONORS).values)  # fmt: skip
    yield "L2A Sweden", sd.simulate_sweden(
        sweden.isel(time=keep), dl.isel(time=keep), seed=1,
        targets=["2021-04-08", "2021-05-13", "2021-06-02"], donors=["2021-06-12", "2021-08-06"],
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--weights", type=Path, default=sd.ROOT / "xcloudfree" / "weights" / "mask_v2.pt"
    )
    args = parser.parse_args()
    sd.require()
    # Score the network in --weights, not the shipped one the library loads.
    net = load_mask_model(args.weights)
    xcloudfree.masking.pretrained_mask = lambda *_, **__: net
    scores = np.zeros((len(THRESHOLDS), len(DILATIONS)))
    for name, sim in cases():
        prob = xcloudfree.cloud_probability(sim.cloudy, progress=False).compute()
        pick = {"time": sim.targets}
        ref = xcloudfree.remove(sim.cloudy, "regression", mask=sim.true_mask)["reflectance"]
        best_ref = float(metrics.psnr(ref.sel(pick), sim.truth.sel(pick)))
        print(f"{name}: reference mask {best_ref:.2f} dB over the targets")
        for i, thr in enumerate(THRESHOLDS):
            for j, d in enumerate(DILATIONS):
                mask = dilate_mask(prob > thr, d) & prob.notnull()
                out = xcloudfree.remove(sim.cloudy, "regression", mask=mask)["reflectance"]
                psnr = float(metrics.psnr(out.sel(pick), sim.truth.sel(pick)))
                under = float(
                    metrics.psnr(out.sel(pick), sim.truth.sel(pick), mask=sim.mask.sel(pick))
                )
                scores[i, j] += psnr
                print(
                    f"  threshold {thr:.2f} dilate {d}: {psnr:.2f} dB all, {under:.2f} under cloud"
                )
    i, j = np.unravel_index(np.argmax(scores), scores.shape)
    thr, d = THRESHOLDS[i], DILATIONS[j]
    print(f"chosen: threshold {thr}, dilate {d} (sum over the cases {scores[i, j]:.2f} dB)")
    net.config.threshold, net.config.dilate = float(thr), int(d)
    net.config.extra = {"operating_point_psnr_sum": float(scores[i, j])}
    net.save(args.weights)


if __name__ == "__main__":
    main()
