"""What per-scene adaptation (``remove(..., adapt=True)``) adds, and what it costs.

On the held-out split of ``benchmarks/quality.py`` (L1C series, L2A Hungary, L2A
Sweden: real clouds of held-out donors over held-out clear dates), each fill is scored
under the laid cloud (PSNR, MAE, and the mean signed error per band: a colour cast)
with the reference mask and with the library's own mask, and timed. The adaptation
learns only from the cloudy cube it is given (the clear pixels of every date,
including the targets' clear parts), never from the truth under the laid clouds.

    python benchmarks/adaptation.py [--out benchmarks/results/adaptation.md]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import shared_data as sd

import xcloudfree
from xcloudfree import metrics

RUNS = {
    "regression": {"method": "regression"},
    "regression + adapt": {"method": "regression", "adapt": True},
    "hybrid, no guard": {"method": "hybrid", "guard": False},
    "hybrid": {"method": "hybrid"},
    "hybrid + adapt": {"method": "hybrid", "adapt": True},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=sd.ROOT / "benchmarks" / "results" / "adaptation.md"
    )
    args = parser.parse_args()
    sd.require()
    rows = []
    for case, sim in sd.heldout_cases().items():
        pick = {"time": sim.targets}
        own = xcloudfree.cloud_mask(sim.cloudy, progress=False).compute()
        for mask_label, mask in (("reference", sim.true_mask), ("own", own)):
            for name, kw in RUNS.items():
                start = time.perf_counter()
                out = xcloudfree.remove(sim.cloudy, mask=mask, progress=False, **kw).compute()
                seconds = time.perf_counter() - start
                pred, truth = out["reflectance"].sel(pick), sim.truth.sel(pick)
                under = sim.mask.sel(pick)
                bias = (pred - truth).where(under).mean(("time", "y", "x"))
                row = {
                    "case": case, "mask": mask_label, "fill": name,
                    "PSNR_cloud": float(metrics.psnr(pred, truth, mask=under)),
                    "MAE_cloud": float(metrics.mae(pred, truth, mask=under)),
                    "max_abs_bias": float(abs(bias).max()),
                    "s": seconds,
                    "dates_filled": int(out["cloud_mask"].any(("y", "x")).sum()),
                }  # fmt: skip
                rows.append(row)
                print(row, flush=True)
    keys = list(rows[0])
    lines = [
        "# Per-scene adaptation: held-out dates, under the laid cloud",
        "",
        f"Produced by `python benchmarks/adaptation.py {' '.join(sys.argv[1:])}` "
        "(2 CPU cores). `max_abs_bias`: the largest per-band mean signed error "
        "(a colour cast; target within 0.005).",
        "",
        "| " + " | ".join(keys) + " |",
        "|" + "---|" * len(keys),
        *(
            "| "
            + " | ".join(
                f"{r[k]:.4f}" if k in ("MAE_cloud", "max_abs_bias")
                else f"{r[k]:.2f}" if isinstance(r[k], float) else str(r[k])
                for k in keys
            )
            + " |"
            for r in rows
        ),
        "",
    ]  # fmt: skip
    gains = {}
    for r in rows:
        if r["fill"] == "regression + adapt":
            plain = next(
                x for x in rows
                if (x["case"], x["mask"], x["fill"]) == (r["case"], r["mask"], "regression")
            )  # fmt: skip
            gains[f"{r['case']} / {r['mask']}"] = r["PSNR_cloud"] - plain["PSNR_cloud"]
    lines += ["Gain of the adaptation over the plain regression (dB): "
              + ", ".join(f"{k} {v:+.2f}" for k, v in gains.items()), ""]  # fmt: skip
    sd.write_report(args.out, lines, {"rows": rows})


if __name__ == "__main__":
    main()
