"""Choose the cloud evidence of the shadow check (``xcloudfree.masking.shadows``) on training data.

The check calls a ``shadow`` pixel clear when no cloud is within reach. What counts
as a cloud is a probability of thick cloud above ``EVIDENCE_PROBABILITY``: too high and
true shadows of clouds the network calls thin are lost, too low and the stray thin
pixels of a clear date keep its false shadows. Scored on *training* data only
(``scripts/shared_data.py``):

* true shadows kept: the share of GreenEarthNet ``s2_dlmask`` shadow pixels (on dates
  with at least 5 % cloud, as its shadows on clear dates are dark forest) that stay in
  ``cloud_mask``, on the training dates of Hungary and Sweden;
* clear kept: the share of pixels left clear on the training clear patches and the
  clear images of the training worldwide pairs (one date each: no series to compare).

Rule: the largest share of clear kept (mean over the scenes) among the settings that
lose at most 0.02 of the true shadows kept on either cube, against no check at all.

    python scripts/mask_shadow_rule.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shared_data as sd

import xcloudfree
from xcloudfree.masking import shadows

#: Candidate thresholds; -1 switches the check off (every valid pixel is evidence).
CANDIDATES = (-1.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
MAX_LOSS = 0.02


def shadow_cases():
    held = {"hungary_romania_34TET": sd.HELDOUT_L2A_DATES + sd.HELDOUT_L2A_DONORS,
            "sweden_34VCL": sd.HELDOUT_SWEDEN_DATES + sd.HELDOUT_SWEDEN_DONORS}  # fmt: skip
    for name, dates in held.items():
        cube, _ = sd.l2a(name)
        dl = sd.l2a_dlmask(name).values
        train = ~np.isin(cube["time"].values, pd.to_datetime(dates).values)
        cloudy = np.isin(dl, (1, 2)).mean((1, 2)) >= 0.05
        yield name, cube, (dl == 3) & (train & cloudy)[:, None, None]


def clear_scenes():
    return sd.clear_patches("train") + [clear for _, clear in sd.pairs("train")]


def main() -> None:
    sd.require()
    cases = list(shadow_cases())
    scenes = clear_scenes()
    rows = []
    for x in CANDIDATES:
        shadows.EVIDENCE_PROBABILITY = x
        row = {"evidence": x}
        for name, cube, truth in cases:
            mask = xcloudfree.cloud_mask(cube, progress=False).values
            row[name] = float(mask[truth].mean())
        kept = [1 - float(xcloudfree.cloud_mask(s, progress=False).mean()) for s in scenes]
        row["clear_kept_mean"], row["clear_kept_worst"] = float(np.mean(kept)), float(min(kept))
        rows.append(row)
        print(row, flush=True)
    table = pd.DataFrame(rows)
    off = table[table["evidence"] < 0].iloc[0]
    names = [name for name, *_ in cases]
    ok = (off[names] - table[names] <= MAX_LOSS).all(axis=1) & (table["evidence"] >= 0)
    best = table.loc[table[ok]["clear_kept_mean"].idxmax()]
    print(table.round(3).to_string(index=False))
    print(
        f"chosen: EVIDENCE_PROBABILITY = {best['evidence']} ({len(scenes)} clear training scenes)"
    )


if __name__ == "__main__":
    main()
