"""Two rules against the temporal mask's false alarms, measured on training data only.

The mask flags whole harvested fields (Hungary 2021-06-05, 07-15) and scattered roof
dots. Two cheap rules were weighed, on *training* data (``scripts/shared_data.py``):

* **Specks**: drop connected groups of flagged pixels (before the dilation) smaller
  than ``area`` px whose highest probability is under ``peak``. Scored by the share of
  pixels kept clear on the training clear patches and clear images of the training
  pairs (one date each), and by precision and recall against ``s2_dlmask`` (classes
  1-3) on the training dates of both L2A cubes.
* **Red-led brightening**: haze and thin cloud brighten blue at least as much as red
  (scattering), while a field turning bare (harvest, senescence) brightens red most.
  Per date, the share of the pixels the mask calls thin cloud whose red departure from
  the reference (the median of the nearest clear other dates, ``masking.temporal``)
  exceeds the blue departure by ``margin``: the pixels the rule would call clear, and
  of them those the dlmask calls cloud, haze or shadow (L2A) or that lie within 24 px
  of thick cloud. The L1C sample has no labels; its cloudy dates show what the rule
  would unmask there.

    python scripts/mask_false_alarms.py

Writes ``benchmarks/results/mask_false_alarms.md`` (and ``.json``).
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import shared_data as sd
from scipy import ndimage

import xcloudfree
from xcloudfree.masking import _days
from xcloudfree.masking.classes import CLEAR, FILLED, SNOW, THICK, THIN
from xcloudfree.masking.haze import RADIUS as HAZE_RADIUS
from xcloudfree.masking.neighbourhood import box_sum
from xcloudfree.masking.spectral import _dilate_block
from xcloudfree.masking.temporal import mask_inputs, reference

#: (area px, peak probability): groups smaller and fainter than this become clear.
SPECK_RULES = [(0, 1.1), (5, 1.1), (10, 1.1), (20, 1.1), (20, 0.9), (40, 0.9)]
MARGINS = (0.0, 0.01, 0.02)
DILATE = 2
HELD = {"hungary_romania_34TET": sd.HELDOUT_L2A_DATES + sd.HELDOUT_L2A_DONORS,
        "sweden_34VCL": sd.HELDOUT_SWEDEN_DATES + sd.HELDOUT_SWEDEN_DONORS,
        "L1C sample": sd.HELDOUT_SERIES_DATES + sd.HELDOUT_SERIES_DONORS}  # fmt: skip


def _undilated(cube):
    ds = xcloudfree.mask_classes(cube, "temporal", dilate=0, progress=False).compute()
    return ds["mask_class"].values, np.nan_to_num(ds["cloud_probability"].values)


@functools.cache
def _series(name: str):
    """A series' cube, its dlmask classes (None for the sample) and undilated mask, once."""
    if name == "L1C sample":
        cube, labels = sd.series(), None
    else:
        cube, labels = sd.l2a(name)[0], sd.l2a_dlmask(name).values
    return cube, labels, *_undilated(cube)


def _drop_specks(core, prob, area, peak):
    out = core.copy()
    for t in range(core.shape[0]):
        labels, n = ndimage.label(core[t], structure=np.ones((3, 3)))
        if not n:
            continue
        index = np.arange(1, n + 1)
        small = ndimage.sum(core[t], labels, index) < area
        faint = ndimage.maximum(prob[t], labels, index) < peak
        out[t][np.isin(labels, index[small & faint])] = False
    return out


def speck_rows() -> list[dict]:
    scenes = sd.clear_patches("train") + [clear for _, clear in sd.pairs("train")]
    kept = {rule: [] for rule in SPECK_RULES}
    for scene in scenes:
        cls, prob = _undilated(scene)
        for rule in SPECK_RULES:
            mask = _dilate_block(_drop_specks(np.isin(cls, FILLED), prob, *rule), DILATE)
            kept[rule].append(1 - float(mask.mean()))
    rows = [{"data": f"{len(scenes)} training clear scenes", "area": a, "peak": p,
             "clear_kept_mean": float(np.mean(k)), "clear_kept_worst": float(np.min(k))}
            for (a, p), k in kept.items()]  # fmt: skip
    for name in ("hungary_romania_34TET", "sweden_34VCL"):
        cube, labels, cls, prob = _series(name)
        pick = ~np.isin(cube["time"].values, pd.to_datetime(HELD[name]).values)
        ref = labels[pick] > 0
        for area, peak in SPECK_RULES:
            mask = _dilate_block(_drop_specks(np.isin(cls, FILLED), prob, area, peak), DILATE)
            mask = mask[pick]
            tp = float((mask & ref).sum())
            p, r = tp / max(float(mask.sum()), 1.0), tp / max(float(ref.sum()), 1.0)
            rows.append({"data": f"{name}, {int(pick.sum())} training dates", "area": area,
                         "peak": peak, "precision": p, "recall": r,
                         "F1": 2 * p * r / max(p + r, 1e-9)})  # fmt: skip
    return rows


def red_led_rows() -> list[dict]:
    rows = []
    for name in ("hungary_romania_34TET", "sweden_34VCL", "L1C sample"):
        cube, labels, cls, _ = _series(name)
        x, valid, _ = mask_inputs(cube.values, [str(b) for b in cube["band"].values])
        clear = valid & np.isin(cls, (CLEAR, SNOW))
        days = _days(cube)
        for t in range(len(days)):
            date = str(cube["time"].values[t])[:10]
            if date in HELD[name]:  # training dates only
                continue
            ref, has_ref = reference(x, clear, days, t)
            thin = (cls[t] == THIN) & has_ref
            if thin.mean() < 0.005:
                continue
            lead = (x[t, 2] - ref[2]) - (x[t, 0] - ref[0])  # red minus blue departure
            # As masking.haze asks of the pixels it unmasks: thick cloud within its radius.
            near_thick = box_sum(cls[t] == THICK, HAZE_RADIUS) > 0
            row = {"data": name, "date": date, "thin": float(thin.mean())}
            for m in MARGINS:
                rule = thin & (lead > m)
                row[f"unmasked>{m}"] = float(rule.mean())
                row[f"near_thick>{m}"] = float((rule & near_thick).mean())
                if labels is not None:
                    row[f"dl_flagged>{m}"] = float((rule & (labels[t] > 0)).mean())
            rows.append(row)
    return rows


def _table(rows: list[dict]) -> list[str]:
    keys = list(dict.fromkeys(k for r in rows for k in r))

    def cell(value) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    body = ["| " + " | ".join(cell(r.get(k, "")) for k in keys) + " |" for r in rows]
    return ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys), *body]


def main() -> None:
    sd.require()
    specks, red = speck_rows(), red_led_rows()
    lines = [
        "# Two rules against the temporal mask's false alarms (training data only)",
        "",
        "Produced by `python scripts/mask_false_alarms.py` (its docstring has the setting). "
        f"Masks dilated by {DILATE} px after the rule, as applied.",
        "",
        "## Specks",
        "",
        *_table(specks),
        "",
        "## Red-led brightening: shares of each date's pixels",
        "",
        *_table(red),
        "",
    ]
    sd.write_report(sd.ROOT / "benchmarks" / "results" / "mask_false_alarms.md", lines,
                    {"specks": specks, "red_led": red})  # fmt: skip


if __name__ == "__main__":
    main()
