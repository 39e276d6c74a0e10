"""
Fine-tuning the shipped model on your own region
================================================

``make_training_pairs`` lays real clouds from a cube's own cloudy dates over its
clear dates, so the truth under the cloud is known; ``train`` runs the three phases
(STGAN pre-training, CycleGAN integration, joint fine-tuning) on those pairs. Here a
deliberately tiny run (a few dozen steps on the CPU) fine-tunes the shipped weights
on part of the sample and plots the loss curve. Real fine-tuning uses far more steps.
"""

import matplotlib.pyplot as plt
import pandas as pd

import xcloudfree
from xcloudfree.models import pretrained

region = xcloudfree.datasets.sample_timeseries().isel(y=slice(0, 128), x=slice(0, 128))
pairs = xcloudfree.make_training_pairs(region, n=4, targets=4, seed=0)
print(f"{len(pairs)} training pairs, e.g.", pairs[0])

model = xcloudfree.train(
    pairs,
    model=pretrained(),  # copied: the shipped model is never changed
    epochs={"stgan": 20, "cyclegan": 5, "joint": 5},
    steps_per_epoch=1,
    batch_size=4,
    patch_size=64,
    lr=2e-4,
    progress=False,
    seed=0,
)

# %%
# The loss of every step, by phase.
history = pd.DataFrame(model.history)
print(history.groupby("phase")["total"].agg(["count", "first", "last"]).round(4))
fig, ax = plt.subplots(figsize=(7, 3))
for phase, part in history.groupby("phase", sort=False):
    ax.plot(part.index, part["total"], marker=".", label=phase)
ax.set_xlabel("step")
ax.set_ylabel("total loss")
ax.legend()
plt.tight_layout()
plt.show()

# %%
# The fine-tuned model is used like the shipped one; ``model.save(path)`` keeps it.
out = xcloudfree.remove(region.isel(time=slice(10, 16)), model=model, progress=False)
print(out)
