"""Before / mask / after sheets of every date of the three L2A cubes, for the docs.

(The embedded sample's sheet is drawn by the gallery, ``examples/plot_mask.py``.)

Writes ``docs/_static/mask_<cube>.png``: for each date, the input in true colour,
the mask classes over it (thick red, thin/haze/edge orange, shadow blue, snow
cyan) and the ``regression`` fill with that mask.

    python scripts/mask_sheets.py [--out docs/_static] [--method regression]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import shared_data as sd
import xarray as xr

import xcloudfree
from xcloudfree.plotting import class_overlay


def sheet(name: str, cube: xr.DataArray, method: str, out: Path, cols: int = 10) -> Path:
    res = xcloudfree.remove(cube, method, progress=False).compute()
    gain = 1 / max(3 * float(np.nanmedian(cube.sel(band="B04").values)), 0.05)

    def rgb(a):
        return np.clip(
            np.nan_to_num(np.moveaxis(a.sel(band=["B04", "B03", "B02"]).values, 1, -1)) * gain, 0, 1
        )

    before, after = rgb(cube), rgb(res["reflectance"])
    codes = res["mask_class"].values
    n = cube.sizes["time"]
    rows = -(-n // cols)
    fig, axes = plt.subplots(3 * rows, cols, figsize=(1.6 * cols, 1.65 * 3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for i in range(n):
        r, c = 3 * (i // cols), i % cols
        axes[r, c].imshow(before[i])
        axes[r, c].set_title(str(cube.time.values[i])[:10], fontsize=7)
        axes[r + 1, c].imshow(before[i])
        axes[r + 1, c].imshow(class_overlay(codes[i]))
        axes[r + 2, c].imshow(after[i])
    fig.suptitle(f"{name}: input / mask classes / {method} fill", fontsize=9)
    fig.tight_layout()
    path = out / f"mask_{name}.png"
    fig.savefig(path, dpi=50)
    plt.close(fig)
    from PIL import Image

    with Image.open(path) as img:  # a 128-colour palette keeps the docs small
        img.convert("RGB").quantize(128).save(path, optimize=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=sd.ROOT / "docs" / "_static")
    parser.add_argument("--method", default="regression")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cubes = {}
    if (sd.DATA / "README.md").exists():
        cubes["hungary"] = sd.l2a()[0]
        cubes["sweden"] = sd.l2a("sweden_34VCL")[0]
        cubes["belgium"] = sd.belgium()[0]
    for name, cube in cubes.items():
        print(sheet(name, cube, args.method, args.out))


if __name__ == "__main__":
    main()
