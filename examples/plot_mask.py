"""
The cloud, haze and shadow mask, date by date
=============================================

Every pixel of every date gets a class: clear, thick cloud, thin cloud or haze,
cloud shadow, snow or nodata. The default mask source, ``"temporal"``, compares
each date with what the other dates of the series say about the same pixel, so a
veil of haze (brighter in blue than usual) and a shadow (darker in every band)
stand out while bright bare fields, bright on every date, mostly do not.
``remove()`` fills exactly ``cloud_mask`` (thick, thin, shadow and a 2 px ring).

Here: all 30 dates of the embedded L1C series — the input, the classes over it
(thick red, thin / haze / cloud edge orange, shadow blue) and the fill.
"""

import matplotlib.pyplot as plt
import numpy as np

import xcloudfree
from xcloudfree.plotting import class_overlay

cube = xcloudfree.datasets.sample_timeseries()
masks = cube.cloudfree.mask_classes(progress=False)
# The fast classical fill with this mask; ``remove()`` alone uses the hybrid model.
out = cube.cloudfree.remove("regression")
masks["cloud_mask"].mean(("y", "x")).round(2).to_series().head(8)

# %%
# Input, mask classes and fill for every date (three rows per ten dates).


def true_colour(da):
    img = np.nan_to_num(da.sel(band=["B04", "B03", "B02"]).values) / 0.3
    return np.clip(np.moveaxis(img, 1, -1), 0, 1)


before, after = true_colour(cube), true_colour(out["reflectance"])
codes = masks["mask_class"].values
fig, axes = plt.subplots(9, 10, figsize=(15, 14))
for i in range(cube.sizes["time"]):
    r, c = 3 * (i // 10), i % 10
    axes[r, c].imshow(before[i])
    axes[r, c].set_title(str(cube.time.values[i])[:10], fontsize=8)
    axes[r + 1, c].imshow(before[i])
    axes[r + 1, c].imshow(class_overlay(codes[i]))
    axes[r + 2, c].imshow(after[i])
for ax in axes.ravel():
    ax.set_axis_off()
plt.tight_layout()

# %%
# Share of each class per date. The overcast dates are masked whole; the haze of
# 2018-03-22 is mostly in the thin class. Still visibly wrong (see the model
# card): false shadows on the clear winter date 2018-02-10, a small dark patch
# called shadow on several autumn dates, and overcast dates classed thin rather
# than thick (masked either way).
share = masks["mask_class"].to_series().groupby(level="time").value_counts(normalize=True)
names = dict(enumerate(xcloudfree.masking.classes.CLASSES))
share.unstack(fill_value=0).rename(columns=names).round(2).head(12)

# %%
# Four partly cloudy dates up close, with the same mask.
xcloudfree.plot(cube, out, time=["2018-01-21", "2018-02-25", "2018-07-05", "2018-09-18"])
