"""How far can a per-scene network go past the ``local`` fill? Variants of the adaptation.

The per-scene adaptation (``xcloudfree.inference.adaptation``, ``remove(adapt=True)``)
learns, per date, a correction of the regression fill on the date's own clear pixels.
This script asks whether a bigger version of it (more inputs, longer training, more
channels) reaches the learned-fill issue's target of 1 dB over the best classical fill,
``local``, on each cube. Every variant is scored against ``local`` under the laid cloud
of the targets, with the reference mask, on two splits of ``scripts/shared_data.py``:

* ``dev``: 3 clear *training* dates per cube (seed 1), clouds laid from training dates
  (the held-out targets and donors are dropped from the cube first). The variants were
  chosen here.
* ``heldout``: the held-out cases of ``benchmarks/quality.py`` (seed 0).

A variant learns from the cloudy cube only (never from the truth under the laid clouds):
a small network (two 3x3 convolutions and a 1x1 output, its output layer zero so it
starts at its base) per target date, trained with Adam (L1) on 128 px crops of the
date's clear pixels, a fifth of them (16 px blocks) held out; a date keeps the
correction only where it beats its base on them, as the library's adaptation does.
Its inputs are the base and each pixel's nearest clear dates before and after (two or
four), mapped into the target's radiometry by the regression's pair fits
(``fills.baselines.pair_maps``). The base is the plain regression, as the library's.

    python scripts/adaptation_variants.py [--split dev|heldout|both] [--reuse]

Pixels under the laid cloud with no clear observation on any other date have no fill
(NaN in the regression, and so in every variant): they are left out of every row, and
the report gives the share of the laid cloud each case scores (``--reuse`` re-renders
the report from its JSON with that share, without fitting again).

Writes ``benchmarks/results/adaptation_variants.md`` (and ``.json``).
"""

from __future__ import annotations

import argparse
import json
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import shared_data as sd
import torch

import xcloudfree
from xcloudfree._indexing import take_per_pixel
from xcloudfree.fills import baselines as bl
from xcloudfree.inference.adaptation import _holdout, _network

#: name -> (neighbours on each side, Adam steps, hidden channels); None: a classical fill.
VARIANTS = {
    "local": None,
    "adapt, 1+1 dates, 300 steps, 48 ch": (1, 300, 48),
    "adapt, 2+2 dates, 300 steps, 48 ch": (2, 300, 48),
    "adapt, 1+1 dates, 900 steps, 64 ch": (1, 900, 64),
    "adapt, 2+2 dates, 900 steps, 64 ch": (2, 900, 64),
}
CROP = 128


def dev_cases() -> dict:
    """3 clear training dates per cube under clouds of training dates (seed 1)."""
    series = sd.series()
    series = series.drop_sel(
        time=pd.to_datetime(sd.HELDOUT_SERIES_DATES + sd.HELDOUT_SERIES_DONORS).values
    )
    hu, hu_dl = sd.l2a()
    held = pd.to_datetime(sd.HELDOUT_L2A_DATES + sd.HELDOUT_L2A_DONORS).values
    hu, hu_dl = hu.drop_sel(time=held), hu_dl.drop_sel(time=held)
    se, _ = sd.l2a("sweden_34VCL")
    se_dl = sd.l2a_dlmask("sweden_34VCL")
    held = pd.to_datetime(sd.HELDOUT_SWEDEN_DATES + sd.HELDOUT_SWEDEN_DONORS).values
    se, se_dl = se.drop_sel(time=held), se_dl.drop_sel(time=held)
    return {
        "L1C series": xcloudfree.simulate_clouds(series, targets=3, seed=1),
        "L2A Hungary": xcloudfree.simulate_clouds(hu, targets=3, seed=1, mask=hu_dl),
        "L2A Sweden": sd.simulate_sweden(se, se_dl, targets=3, donors=None, seed=1),
    }


def prepare(sim) -> SimpleNamespace:
    """What every variant of a case shares, computed once: the regression and its inputs."""
    data = sim.cloudy.values.astype(np.float32)
    mask = sim.true_mask.values
    valid = bl._valid(data, mask)
    stats = bl._pair_stats(data, valid)
    days = bl._days(sim.cloudy["time"].values)
    t = len(data)
    prev, nxt = bl._strict_neighbours(valid)
    # The clear date before the previous one, and after the next (out of range: none).
    prev2 = np.where(prev >= 0, take_per_pixel(prev[:, None], prev)[:, 0], -1)
    next2 = np.where(nxt < t, take_per_pixel(nxt[:, None], nxt)[:, 0], t)
    targets = np.flatnonzero(np.isin(sim.cloudy["time"].values, sim.targets))
    return SimpleNamespace(
        data=data, truth=sim.truth.values.astype(np.float32), mask=mask, valid=valid,
        regression=bl._apply_regression(data, valid, days, stats)[0],
        maps=bl.pair_maps(stats), sources=[prev, nxt, prev2, next2], targets=targets,
        under=sim.mask.values[targets],
    )  # fmt: skip


def _inputs(scene, d, per_side) -> np.ndarray:
    """``(C * (1 + 2 * per_side), H, W)``: the regression, then the mapped neighbour dates."""
    t = len(scene.data)
    gain, offset = scene.maps
    base = scene.regression[d]
    feats = [base]
    for src in scene.sources[: 2 * per_side]:
        s = src[d].clip(0, t - 1)
        x = take_per_pixel(scene.data, s[None])[0]
        x = gain[d, s].transpose(2, 0, 1) * x + offset[d, s].transpose(2, 0, 1)
        feats.append(np.where(((src[d] >= 0) & (src[d] < t))[None], x, base))
    return np.nan_to_num(np.concatenate(feats)).astype(np.float32)


def adapted(scene, d, setting, seed=0) -> np.ndarray:
    """Date ``d`` of the regression corrected by a network learned on its clear pixels."""
    per_side, steps, hidden = setting
    data, valid, base = scene.data, scene.valid, scene.regression
    c = data.shape[1]
    rng = np.random.default_rng((seed, d))
    torch.manual_seed(seed * 1000 + d)
    x = torch.from_numpy(_inputs(scene, d, per_side))[None]
    y = torch.from_numpy(np.nan_to_num(data[d]))[None]
    hold = _holdout(valid[d].shape, seed * 1000 + d)
    train = torch.from_numpy(valid[d] & ~hold)[None, None].float()
    check = torch.from_numpy(valid[d] & hold)[None, None].float()
    net = _network(c, inputs=1 + 2 * per_side, hidden=hidden)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    h, w = x.shape[-2:]
    for _ in range(steps):
        i, j = int(rng.integers(max(1, h - CROP + 1))), int(rng.integers(max(1, w - CROP + 1)))
        sl = (slice(None), slice(None), slice(i, i + CROP), slice(j, j + CROP))
        m = train[sl]
        loss = ((x[sl][:, :c] + net(x[sl]) - y[sl]).abs() * m).sum() / (m.sum() * c).clamp(min=1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        correction = net(x)
        err_fit = float(((x[:, :c] + correction - y).abs() * check).sum())
        err_base = float(((x[:, :c] - y).abs() * check).sum())
    if not err_fit < err_base:  # the scene's own held-out pixels say no
        return base[d]
    return base[d] + correction[0].numpy()


def score(scene, setting) -> dict:
    targets = scene.targets
    start = time.perf_counter()
    if setting is None:
        pred = bl.local_correction(scene.data, scene.valid, scene.mask, scene.regression.copy())
    else:
        pred = scene.regression.copy()
        for d in targets:
            pred[d] = adapted(scene, d, setting)
    seconds = time.perf_counter() - start
    err = np.moveaxis((pred[targets] - scene.truth[targets]) ** 2, 1, 0)[:, scene.under]
    return {"PSNR_cloud": float(10 * np.log10(1 / np.nanmean(err))),
            "s_per_date": seconds / len(targets)}  # fmt: skip


def scored_share(scene) -> float:
    """Share of the laid cloud on the targets that has a fill (a clear date elsewhere)."""
    return float(np.isfinite(scene.regression[scene.targets]).all(1)[scene.under].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("dev", "heldout", "both"), default="both")
    parser.add_argument("--reuse", action="store_true", help="re-render from the JSON")
    args = parser.parse_args()
    sd.require()
    torch.set_num_threads(2)
    out = sd.ROOT / "benchmarks" / "results" / "adaptation_variants.md"
    splits = {"dev": dev_cases, "heldout": sd.heldout_cases}
    rows = json.loads(out.with_suffix(".json").read_text())["rows"] if args.reuse else []
    shares = {}
    for split, make in splits.items():
        if args.split not in (split, "both"):
            continue
        for case, sim in make().items():
            scene = prepare(sim)
            shares[f"{split} / {case}"] = scored_share(scene)
            for name, setting in [] if args.reuse else VARIANTS.items():
                row = {"split": split, "case": case, "fill": name, **score(scene, setting)}
                rows.append(row)
                print(row, flush=True)
    for r in rows:
        key = (r["split"], r["case"], "local")
        local = next(x for x in rows if (x["split"], x["case"], x["fill"]) == key)
        r["over_local"] = r["PSNR_cloud"] - local["PSNR_cloud"]
    lines = [
        "# Per-scene adaptation variants against the `local` fill (reference mask)",
        "",
        "Produced by `python scripts/adaptation_variants.py` (2 CPU cores; its docstring has "
        "the setting). PSNR under the laid cloud of the targets, pooled; `s/date`: seconds "
        "per target date of the fit on this machine.",
        "",
        "| split | case | fill | PSNR_cloud | over local | s/date |",
        "|---|---|---|---|---|---|",
        *(f"| {r['split']} | {r['case']} | {r['fill']} | {r['PSNR_cloud']:.2f} | "
          f"{r['over_local']:+.2f} | {r['s_per_date']:.1f} |" for r in rows),
        "",
        "Share of the laid cloud scored (the rest has no clear observation on any date): "
        + ", ".join(f"{k} {v:.3f}" for k, v in shares.items()),
        "",
    ]  # fmt: skip
    sd.write_report(out, lines, {"rows": rows, "scored_share": shares})


if __name__ == "__main__":
    main()
