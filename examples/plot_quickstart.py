"""
Remove clouds from a real Sentinel-2 time series
================================================

The embedded sample is 30 real Sentinel-2 L1C dates of one place near Rome
(SEN12MS-CR-TS, contains modified Copernicus Sentinel data 2018). The shipped
hybrid STGAN + CycleGAN model masks its clouds and fills them; we look at the
result and score it against the classical methods on real clouds laid over clear
dates that the model never saw in training, where the truth is known.
"""

import matplotlib.pyplot as plt

import xcloudfree

cube = xcloudfree.datasets.sample_timeseries(chunks={"time": -1, "y": 128, "x": 128})
print(cube)

# %%
# Remove the clouds with the shipped model: lazy until computed, CRS and
# coordinates kept.
result = cube.cloudfree.remove().compute()
print(result)

# %%
# Before, the mask, after: the most partly cloudy dates.
fig = cube.cloudfree.plot(result, max_dates=3)
plt.show()

# %%
# Score the model and the four classical methods on real clouds pasted over
# three clear dates held out of training, all with the model's mask.
heldout = ["2018-06-10", "2018-07-30", "2018-08-09"]
sim = xcloudfree.simulate_clouds(cube.compute(), targets=heldout, seed=0)
pick = {"time": sim.targets}
mask = xcloudfree.cloud_mask(sim.cloudy, method="model", dilate=2)
for method in xcloudfree.METHODS:
    out = xcloudfree.remove(sim.cloudy, method=method, mask=mask)
    psnr = xcloudfree.metrics.psnr(
        out.reflectance.sel(pick), sim.truth.sel(pick), mask=sim.mask.sel(pick)
    )
    print(f"{method:<12} PSNR under the clouds: {float(psnr):.2f} dB")

# %%
# Where is the fill least certain? ``quality`` drops with the time to the
# nearest clear observation.
plt.figure()  # a figure of its own (the quicklook's is still current outside the gallery)
result.quality.mean("time").plot(cmap="viridis", vmin=0, vmax=1)
plt.title("mean quality over the year")
plt.show()
