"""
A pixel's time series, before and after
========================================

Clouds show up in a time series as bright spikes in the visible bands. The
cloud-free series keeps the clear observations exactly and replaces the cloudy
ones; ``quality`` says how far the nearest clear observation was.
"""

import matplotlib.pyplot as plt

import xcloudfree

cube = xcloudfree.datasets.sample_timeseries().isel(y=slice(60, 124), x=slice(60, 124))
out = xcloudfree.remove(cube, progress=False)
pixel = {"y": 30, "x": 30}

fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
for band, colour in [("B04", "tab:red"), ("B08", "tab:purple")]:
    cube.sel(band=band).isel(pixel).plot(
        ax=top, color=colour, alpha=0.4, marker="o", label=f"{band} input"
    )
    out.reflectance.sel(band=band).isel(pixel).plot(
        ax=top, color=colour, marker=".", label=f"{band} cloud-free"
    )
cloudy = out.cloud_mask.isel(pixel)
for t in cloudy.time.values[cloudy.values]:
    top.axvline(t, color="0.85", zorder=0)
top.set_title("red and NIR reflectance (grey lines: cloudy dates)")
top.legend(ncol=2, fontsize=8)
out.quality.isel(pixel).plot(ax=bottom, marker="o")
bottom.set_title("quality (1 = observed clear)")
plt.tight_layout()
plt.show()
