"""
How sure is the fill? ``expected_error`` against the real error
================================================================

Every filled pixel gets an ``expected_error``: the calibrated expected absolute error
of its reflectance (band mean), from how well the dates around it predict each other,
how much its two nearest clear dates disagree, and how far the networks moved the
fill away from the regression. ``quality`` is ``1 / (1 + expected_error / 0.01)``.

To check it we need the truth under the cloud: real clouds of two cloudy dates are
laid over four clear dates, all of them dates the shipped weights and the
calibration never saw (``benchmarks/calibration.py`` has the full held-out check).
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.stats import spearmanr

import xcloudfree

cube = xcloudfree.datasets.sample_timeseries()
sim = xcloudfree.simulate_clouds(
    cube, targets=["2018-06-10", "2018-07-30", "2018-08-09", "2018-09-03"],
    donors=["2018-03-07", "2018-09-18"], seed=0,
)  # fmt: skip
out = xcloudfree.remove(sim.cloudy, mask=sim.true_mask, progress=False)

pick = {"time": sim.targets}
real = abs(out.reflectance.sel(pick) - sim.truth.sel(pick)).mean("band")
expected = out.expected_error.sel(pick)
under = sim.mask.sel(pick)

# %%
# One date: where the fill is expected to be wrong, and where it is.
fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
t = 1
sim.truth.sel(pick).isel(time=t).sel(band=["B04", "B03", "B02"]).transpose("y", "x", "band").clip(
    0, 0.3
).pipe(lambda a: a / 0.3).plot.imshow(ax=axes[0])
axes[0].set_title(f"truth, {str(sim.targets[t])[:10]}")
expected.isel(time=t).where(under.isel(time=t)).plot(ax=axes[1], vmin=0, vmax=0.04, cmap="inferno")
axes[1].set_title("expected_error")
real.isel(time=t).where(under.isel(time=t)).plot(ax=axes[2], vmin=0, vmax=0.04, cmap="inferno")
axes[2].set_title("real |error|")
plt.tight_layout()
plt.show()

# %%
# Calibration: the pixels under the laid clouds in ten groups by expected error.
# A calibrated error sits on the diagonal; a useful one also climbs steeply.
e, r = expected.values[under.values], real.values[under.values]
ok = np.isfinite(e)
rho = spearmanr(e[ok], r[ok])[0]
groups = pd.DataFrame({"expected": e[ok], "real": r[ok]}).groupby(pd.qcut(e[ok], 10), observed=True)
calibration = groups.mean()
fig, ax = plt.subplots(figsize=(4.6, 4.4))
ax.plot(calibration["expected"], calibration["real"], "o-", label="hybrid, deciles")
top = float(calibration.max().max())
ax.plot([0, top], [0, top], "k--", lw=0.8, label="perfect calibration")
ax.set_xlabel("expected_error")
ax.set_ylabel("real absolute error")
ax.set_title(f"Spearman {rho:.2f} over {ok.sum()} filled pixels")
ax.legend()
plt.tight_layout()
plt.show()
print(calibration.round(4))
