"""
The cloud, haze and shadow mask, date by date
=============================================

Every pixel of every date gets a class: clear, thick cloud, thin cloud or haze,
cloud shadow, snow or nodata. The default mask source, ``"temporal"``, compares
each date with what the other dates of the series say about the same pixel, so a
veil of haze (brighter in blue than usual) and a shadow (darker in every band)
stand out while bright bare fields, bright on every date, do not.
``remove()`` fills exactly ``cloud_mask`` (thick, thin, shadow and a 2 px ring).

Here: all 30 dates of the embedded L1C series, input above, classes overlaid
below (thick red, thin/haze/edge orange, shadow blue), then the fill.
"""

import matplotlib.pyplot as plt
import numpy as np

import xcloudfree
from xcloudfree.plotting import class_overlay

cube = xcloudfree.datasets.sample_timeseries()
masks = cube.cloudfree.mask_classes(progress=False)
masks["cloud_mask"].mean(("y", "x")).round(2).to_series().head(8)

# %%
# Input and mask classes for every date.
img = np.clip(np.nan_to_num(cube.sel(band=["B04", "B03", "B02"]).values) / 0.3, 0, 1)
img = np.moveaxis(img, 1, -1)
codes = masks["mask_class"].values
fig, axes = plt.subplots(6, 10, figsize=(15, 9.5))
for i in range(cube.sizes["time"]):
    top, bottom = axes[2 * (i // 10), i % 10], axes[2 * (i // 10) + 1, i % 10]
    top.imshow(img[i])
    top.set_title(str(cube.time.values[i])[:10], fontsize=8)
    bottom.imshow(img[i])
    bottom.imshow(class_overlay(codes[i]))
for ax in axes.ravel():
    ax.set_axis_off()
plt.tight_layout()

# %%
# Share of each class per date (the four overcast winter and spring dates are
# masked whole; haze on 2018-02-25 and 2018-03-22 is in the thin class).
share = masks["mask_class"].to_series().groupby(level="time").value_counts(normalize=True)
share.unstack(fill_value=0).rename(
    columns=dict(enumerate(xcloudfree.masking.classes.CLASSES))
).round(2).head(12)

# %%
# The fill of a few partly cloudy dates, with the same mask (``regression`` here,
# the fast classical fill; ``remove()`` alone uses the hybrid model).
out = cube.cloudfree.remove("regression")
xcloudfree.plot(cube, out, time=["2018-01-21", "2018-02-25", "2018-07-05", "2018-09-18"])
