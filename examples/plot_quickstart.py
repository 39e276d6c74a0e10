"""
Remove clouds from a real Sentinel-2 time series
================================================

The embedded sample is 30 real Sentinel-2 L1C dates of one place near Rome
(SEN12MS-CR-TS, contains modified Copernicus Sentinel data 2018). We mask its
clouds, fill them with the regression baseline, look at the result and score it
on real clouds laid over clear dates, where the truth is known.
"""

import matplotlib.pyplot as plt

import xcloudfree

cube = xcloudfree.datasets.sample_timeseries(chunks={"time": -1, "y": 128, "x": 128})
print(cube)

# %%
# Remove the clouds: lazy until computed, CRS and coordinates kept.
result = cube.cloudfree.remove(method="regression").compute()
print(result)

# %%
# Before, the mask, after: the most partly cloudy dates.
fig = cube.cloudfree.plot(result, max_dates=3)
plt.show()

# %%
# Score the four classical methods on real clouds pasted over clear dates.
sim = xcloudfree.simulate_clouds(cube.compute(), targets=3, seed=0)
pick = {"time": sim.targets}
for method in xcloudfree.BASELINES:
    out = xcloudfree.remove(sim.cloudy, method=method)
    psnr = xcloudfree.metrics.psnr(
        out.reflectance.sel(pick), sim.truth.sel(pick), mask=sim.mask.sel(pick)
    )
    print(f"{method:<12} PSNR under the clouds: {float(psnr):.2f} dB")

# %%
# Where is the fill least certain? ``quality`` drops with the time to the
# nearest clear observation.
result.quality.mean("time").plot(cmap="viridis", vmin=0, vmax=1)
plt.title("mean quality over the year")
plt.show()
