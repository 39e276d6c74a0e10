"""
The cloud mask and its probability
==================================

The hybrid model's mask head gives every pixel of every date a cloud probability;
``remove()`` thresholds it at 0.5 and grows it by 2 px. Here are both, over real
dates of the embedded series, next to the spectral test of the classical methods.
"""

import matplotlib.pyplot as plt
import numpy as np

import xcloudfree

cube = xcloudfree.datasets.sample_timeseries()
dates = ["2018-01-21", "2018-03-07", "2018-09-18"]
sub = cube.sel(time=dates)
mask, prob = xcloudfree.cloud_mask(
    sub, method="model", dilate=2, return_probability=True, progress=False
)
spectral = xcloudfree.cloud_mask(sub, dilate=2)

# %%
# True colour with the mask in red, the probability, and the spectral test.
rgb = sub.sel(band=["B04", "B03", "B02"]).transpose("time", "y", "x", "band")
fig, axes = plt.subplots(len(dates), 3, figsize=(9, 3 * len(dates)), squeeze=False)
for i, date in enumerate(dates):
    img = np.clip(rgb.isel(time=i).values / 0.3, 0, 1)
    overlay = img.copy()
    overlay[mask.isel(time=i).values] = 0.6 * overlay[mask.isel(time=i).values] + [0.4, 0, 0]
    axes[i, 0].imshow(overlay)
    axes[i, 1].imshow(prob.isel(time=i), vmin=0, vmax=1, cmap="magma")
    axes[i, 2].imshow(spectral.isel(time=i), cmap="gray")
    axes[i, 0].set_ylabel(date)
for ax, title in zip(axes[0], ["mask head (red)", "cloud probability", "spectral test"]):
    ax.set_title(title)
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
plt.tight_layout()
plt.show()

# %%
# Cloud cover per date by the two masks.
cover = mask.mean(("y", "x")).to_series().rename("mask head")
print(cover.to_frame().assign(spectral=spectral.mean(("y", "x")).values).round(2))
