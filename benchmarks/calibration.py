"""Fit and check ``expected_error``: does it rank filled pixels by their real error?

**Fit** (training dates only): real clouds of training cloudy dates are laid over
training clear dates of the L1C series and of the Hungary L2A cube
(``simulate_clouds``), and both are filled with the reference mask by the
``regression`` and ``local`` fills and the ``hybrid``. Per filled pixel, the
regression's predictive variance ``s2`` (its fits' residual variance plus the spread
of its two sources) and the hybrid's squared departure from its base, the ``local``
fill, ``d2`` (band means) are compared with the real absolute error (band mean).
``DEPARTURE_WEIGHT`` is the weight of ``d2`` that ranks the hybrid's calibration
pixels best; ``ERROR_EXPONENTS`` are the powers of ``v = s2 + DEPARTURE_WEIGHT * d2``,
of the source error ``r`` and of the fill's reflectance ``m`` (least squares of the
log error, each case weighed equally); ``ERROR_SCALE[method]`` makes the mean
expected error equal the mean real error (``local`` is scored with the regression's
terms: its correction is not in them).

**Check** (held-out split of ``scripts/shared_data.py``, as ``benchmarks/quality.py``):
the library's own ``expected_error`` output, with the reference mask and with its
own mask, against the real error under the laid cloud: Spearman rank correlation
(target >= 0.5), the old gap-based ``quality`` beside it, and a calibration table
and plot (mean real error per decile of expected error).

    python benchmarks/calibration.py [--out benchmarks/results/calibration.md]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import shared_data as sd

import xcloudfree
from xcloudfree.fills import baselines

WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
# Training cloud donors of the L1C series (partly cloudy, not held out anywhere).
TRAIN_SERIES_DONORS = ["2018-12-07", "2018-02-25"]


def _targets(cube, cloudy, held, *, clear=0.02, donors=(0.2, 0.7), n=(6, 3)):
    """Clear training dates to lay clouds over, and partly cloudy training donors."""
    frac = cloudy.mean(("y", "x")).to_series()
    held = set(pd.to_datetime(held))
    ok = [t for t in frac.index if t not in held]
    tg = [str(t)[:10] for t in ok if frac[t] <= clear][: n[0]]
    dn = [str(t)[:10] for t in ok if donors[0] <= frac[t] <= donors[1]][: n[1]]
    return tg, dn


def _fields(cube, sim, mask):
    """Per filled pixel of the targets: s2, d2, |error| of regression and hybrid."""
    reg = xcloudfree.remove(sim.cloudy, method="regression", mask=mask, progress=False)
    loc = xcloudfree.remove(sim.cloudy, method="local", mask=mask, progress=False)
    hyb = xcloudfree.remove(sim.cloudy, method="hybrid", mask=mask, progress=False)
    reg, loc, hyb = reg.compute(), loc.compute(), hyb.compute()
    data = sim.cloudy.transpose("time", "band", "y", "x").values
    cloud = mask.transpose("time", "y", "x").values.astype(bool)
    valid = baselines._valid(data, cloud)
    stats = baselines._pair_stats(data, valid)
    _, _, s2, src = baselines._apply_regression(
        data, valid, baselines._days(cube.time.values), stats
    )
    pick = {"time": sim.targets}
    idx = np.isin(cube.time.values, np.asarray(sim.targets, "datetime64[ns]"))
    truth = sim.truth.sel(pick).transpose("time", "band", "y", "x").values
    r = reg["reflectance"].sel(pick).transpose("time", "band", "y", "x").values
    lo = loc["reflectance"].sel(pick).transpose("time", "band", "y", "x").values
    h = hyb["reflectance"].sel(pick).transpose("time", "band", "y", "x").values
    under = sim.mask.sel(pick).values.astype(bool) & cloud[idx]
    fields = {
        "s2": s2[idx][under],
        "src": src[idx][under],
        "level_regression": r.mean(1)[under],
        "level_local": lo.mean(1)[under],
        "level_hybrid": h.mean(1)[under],
        "d2": np.square(h - lo).mean(1)[under],  # the networks' departure from their base
        "err_regression": np.abs(r - truth).mean(1)[under],
        "err_local": np.abs(lo - truth).mean(1)[under],
        "err_hybrid": np.abs(h - truth).mean(1)[under],
    }
    # Pixels with nothing to fill from (or no data) have no expected error.
    finite = np.logical_and.reduce([np.isfinite(v) for v in fields.values()])
    return {k: v[finite] for k, v in fields.items()}


def fit(cases) -> dict:
    """``DEPARTURE_WEIGHT`` and ``ERROR_SCALE`` from the training cases."""
    ranks = {}
    for w in WEIGHTS:
        ranks[w] = float(
            np.mean([spearmanr(np.sqrt(c["s2"] + w * c["d2"]), c["err_hybrid"])[0] for c in cases])
        )
    best = max(ranks, key=ranks.get)
    # The exponents: least squares in log space on the hybrid's pixels, each case weighed
    # equally whatever its pixel count.
    rows, target = [], []
    for c in cases:
        w = 1.0 / np.sqrt(len(c["err_hybrid"]))
        rows.append(w * _log_terms(c, "hybrid", best))
        target.append(w * np.log(np.maximum(c["err_hybrid"], baselines._FLOOR)))
    coef = np.linalg.lstsq(np.concatenate(rows), np.concatenate(target), rcond=None)[0]
    exponents = tuple(float(round(e, 2)) for e in coef[1:])
    scale = {}
    for method in ("regression", "local", "hybrid"):
        shape = np.concatenate([_shape(c, method, best, exponents) for c in cases])
        real = np.concatenate([c[f"err_{method}"] for c in cases])
        scale[method] = float(real.mean() / shape.mean())
    new_rank = float(np.mean([
        spearmanr(_shape(c, "hybrid", best, exponents), c["err_hybrid"])[0] for c in cases
    ]))  # fmt: skip
    return {"departure_weight": best, "error_scale": scale, "exponents": exponents,
            "spearman_by_weight": ranks, "spearman_with_exponents": new_rank}  # fmt: skip


def _log_terms(c, method, weight) -> np.ndarray:
    """Columns 1, log v, log r, log m of the expected-error power law (see baselines)."""
    f = baselines._FLOOR
    v = c["s2"] + (weight * c["d2"] if method == "hybrid" else 0.0)
    return np.stack([
        np.ones_like(v), np.log(np.maximum(v, f * f)), np.log(np.maximum(c["src"], f)),
        np.log(np.maximum(np.abs(c[f"level_{method}"]), f)),
    ], axis=1)  # fmt: skip


def _shape(c, method, weight, exponents) -> np.ndarray:
    """The power law with unit scale: exp of the log terms times the exponents."""
    return np.exp(_log_terms(c, method, weight)[:, 1:] @ np.asarray(exponents))


def check(name, sim, mask_label, mask) -> tuple[list[dict], dict]:
    """Spearman and calibration deciles of the library's expected_error, per method."""
    rows, curves = [], {}
    pick = {"time": sim.targets}
    truth = sim.truth.sel(pick)
    under = sim.mask.sel(pick).values.astype(bool)
    for method in ("regression", "local", "hybrid"):
        out = xcloudfree.remove(sim.cloudy, method=method, mask=mask, progress=False).compute()
        err = np.abs(out["reflectance"].sel(pick) - truth).mean("band").values[under]
        pred = out["expected_error"].sel(pick).values[under]
        quality = out["quality"].sel(pick).values[under]
        ok = np.isfinite(pred) & np.isfinite(err)
        gap_q = _gap_quality(sim.cloudy, out["cloud_mask"]).sel(pick).values[under]
        deciles = pd.qcut(pred[ok], 10, duplicates="drop")
        curve = pd.DataFrame({"pred": pred[ok], "err": err[ok]}).groupby(deciles, observed=True)
        curve = curve.mean()
        curves[f"{name} / {mask_label} / {method}"] = curve
        rows.append({
            "case": name, "mask": mask_label, "method": method,
            "pixels": int(ok.sum()),
            "spearman": float(spearmanr(pred[ok], err[ok])[0]),
            "spearman_quality": float(spearmanr(-quality[ok], err[ok])[0]),
            "spearman_gap_quality": float(spearmanr(-gap_q[ok], err[ok])[0]),
            "mean_expected": float(pred[ok].mean()),
            "mean_real": float(err[ok].mean()),
        })  # fmt: skip
        print(rows[-1], flush=True)
    return rows, curves


def _gap_quality(cube, cloud):
    """The old ``quality`` (days to the nearest clear date) for comparison."""
    _, q = xcloudfree.fills.baselines.fill(cube, cloud, "nearest")
    return q


def _plot(curves, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    top = 0.0
    for label, c in curves.items():
        ax.plot(c["pred"], c["err"], "o-", ms=3, label=label)
        top = max(top, float(c["pred"].max()), float(c["err"].max()))
    ax.plot([0, top], [0, top], "k--", lw=0.8, label="perfect calibration")
    ax.set_xlabel("expected error (decile mean)")
    ax.set_ylabel("real absolute error (decile mean)")
    ax.set_title("expected_error on held-out dates")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=sd.ROOT / "benchmarks" / "results" / "calibration.md"
    )
    args = parser.parse_args()
    sd.require()

    # ---- fit on training dates
    series = sd.series_train()
    spec = xcloudfree.cloud_mask(series, "spectral", dilate=0)
    tg, _ = _targets(series, spec, sd.HELDOUT_SERIES_DONORS)
    sim_l1c = xcloudfree.simulate_clouds(series, targets=tg, seed=1, donors=TRAIN_SERIES_DONORS)
    cube, dl = sd.l2a_train()
    tg2, dn2 = _targets(cube, dl.isin([1, 2]), sd.HELDOUT_L2A_DONORS, clear=0.01)
    sim_hu = xcloudfree.simulate_clouds(cube, targets=tg2, seed=1, mask=dl, donors=dn2)
    split = {"L1C series": (tg, TRAIN_SERIES_DONORS), "L2A Hungary": (tg2, dn2)}
    print("fit on", split, flush=True)
    cases = [_fields(series, sim_l1c, sim_l1c.true_mask), _fields(cube, sim_hu, sim_hu.true_mask)]
    fitted = fit(cases)
    print("fitted", fitted, flush=True)
    shipped = {"departure_weight": baselines.DEPARTURE_WEIGHT, "error_scale": baselines.ERROR_SCALE,
               "exponents": baselines.ERROR_EXPONENTS}  # fmt: skip

    # ---- check on held-out dates
    rows, curves = [], {}
    for name, sim in sd.heldout_cases().items():
        own = xcloudfree.cloud_mask(sim.cloudy, progress=False).compute()
        for label, mask in (("reference", sim.true_mask), ("own", own)):
            r, c = check(name, sim, label, mask)
            rows += r
            if label == "reference":
                curves.update(c)

    plot = args.out.with_suffix(".png")
    _plot(curves, plot)
    keys = ["case", "mask", "method", "pixels", "spearman", "spearman_quality",
            "spearman_gap_quality", "mean_expected", "mean_real"]  # fmt: skip
    lines = [
        "# expected_error: calibration and ranking on held-out dates",
        "",
        f"Produced by `python benchmarks/calibration.py {' '.join(sys.argv[1:])}`.",
        "",
        "Fitted on simulated clouds over training dates only: "
        + "; ".join(
            f"{k}: targets {', '.join(t)}, donors {', '.join(d)}" for k, (t, d) in split.items()
        )
        + ".",
        "",
        f"- fitted: DEPARTURE_WEIGHT = {fitted['departure_weight']}, ERROR_EXPONENTS = "
        f"{fitted['exponents']}, ERROR_SCALE = "
        + ", ".join(f"{k} {v:.3f}" for k, v in fitted["error_scale"].items()),
        "- shipped (`xcloudfree.fills.baselines`): "
        f"DEPARTURE_WEIGHT = {shipped['departure_weight']}, "
        f"ERROR_EXPONENTS = {shipped['exponents']}, "
        "ERROR_SCALE = " + ", ".join(f"{k} {v:.3f}" for k, v in shipped["error_scale"].items()),
        "- Spearman on the training cases by departure weight (square root of v alone): "
        + ", ".join(f"{w:g}: {r:.3f}" for w, r in fitted["spearman_by_weight"].items())
        + f"; with the fitted exponents: {fitted['spearman_with_exponents']:.3f}",
        "",
        "## Held-out dates (the split of `benchmarks/quality.py`), pixels under the laid cloud",
        "",
        "`spearman`: expected_error vs the real absolute error (band means); "
        "`spearman_quality`: -quality (the same ranking where filled; observed pixels that "
        "the own mask missed have quality 1); `spearman_gap_quality`: the old "
        "gap-days quality. Target >= 0.5.",
        "",
        "| " + " | ".join(keys) + " |",
        "|" + "---|" * len(keys),
        *(
            "| "
            + " | ".join(f"{r[k]:.4f}" if isinstance(r[k], float) else str(r[k]) for k in keys)
            + " |"
            for r in rows
        ),
        "",
        f"Calibration plot (reference mask, deciles of expected_error): `{plot.name}`.",
        "",
    ]
    sd.write_report(
        args.out, lines, {"fitted": fitted, "shipped": shipped, "split": split, "rows": rows}
    )


if __name__ == "__main__":
    main()
