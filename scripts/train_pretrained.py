"""Reproduce the pretrained weights shipped in ``xcloudfree/weights/`` with one command.

    python scripts/train_pretrained.py            # 23 min on a 2-core CPU (measured, loaded)

Trains on the real data in ../shared/data, minus the development split defined in
``scripts/shared_data.py`` (held-out dates and the donors of the clouds laid over them,
patches, pairs and scene rows), and
writes ``xcloudfree/weights/hybrid_v2.pt`` (float16) plus a loss log. Runs on a
GPU when one is available (``--device auto``). ``--resume`` continues an
interrupted run from its checkpoint.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent))
import shared_data as sd

import xcloudfree
import xcloudfree.inference.engine
from xcloudfree.models import PRETRAINED

#: Steps per phase at --scale 1 (batch 8 of 80 x 80 crops).
STEPS = {"stgan": 1000, "cyclegan": 200, "joint": 200}


def _crops(cube: xr.DataArray, mask: xr.DataArray, size: int = 256):
    """Square crops (corners included) of a one-date cube and its mask."""
    h, w = cube.sizes["y"], cube.sizes["x"]
    ys = sorted({0, h - size, *range(0, h - size, size)})
    xs = sorted({0, w - size, *range(0, w - size, size)})
    for y0 in ys:
        for x0 in xs:
            sl = {"y": slice(y0, y0 + size), "x": slice(x0, x0 + size)}
            yield cube.isel(sl), mask.isel(sl)


#: Held-out dates of each GreenEarthNet cube: scored targets and the donors of their clouds.
HELD_L2A = {
    "hungary_romania_34TET": sd.HELDOUT_L2A_DATES + sd.HELDOUT_L2A_DONORS,
    "sweden_34VCL": sd.HELDOUT_SWEDEN_DATES + sd.HELDOUT_SWEDEN_DONORS,
}


def _without(dates: list[str], *arrays: xr.DataArray) -> tuple[xr.DataArray, ...]:
    """Each of ``arrays`` (a cube, its mask) without the given held-out dates."""
    held = pd.to_datetime(dates).values
    return tuple(a.isel(time=~a["time"].isin(held)) for a in arrays)


def series_train() -> xr.DataArray:
    """The L1C series without its held-out targets *and* cloud donors."""
    return _without(sd.HELDOUT_SERIES_DATES + sd.HELDOUT_SERIES_DONORS, sd.series())[0]


def l2a_train(name: str) -> tuple[xr.DataArray, xr.DataArray]:
    """A GreenEarthNet cube without its held-out targets and donors, and its cloud mask.

    The mask is every dlmask class on Hungary, and only its cloud classes (thick,
    thin) on Sweden: there it calls dark forest "shadow" on clear dates, so by all its
    classes no date would be clear (as ``shared_data.simulate_sweden``).
    """
    cube, mask = sd.l2a(name)
    if name == "sweden_34VCL":
        mask = sd.l2a_dlmask(name).isin([1, 2])
    return _without(HELD_L2A[name], cube, mask)


def cloud_bank() -> xr.Dataset:
    """Real clouds (reflectance and mask) from training data only, 256 x 256, 10 bands."""
    images, masks = [], []

    def add(cube, mask):
        images.append(np.asarray(cube.sel(band=sd.BANDS10).values[0], np.float32))
        masks.append(np.asarray(mask.values[0], bool))

    scene, ref = sd.scene(sd.SCENE_TRAIN_ROWS)
    for c, m in _crops(scene, ref):
        add(c, m)
    for cloudy, _ in sd.pairs("train"):
        m = xcloudfree.cloud_mask(cloudy)
        if 0.1 <= float(m.mean()) <= 0.9:
            add(cloudy, m)
    series = series_train()
    m = xcloudfree.cloud_mask(series)
    for t in np.flatnonzero(
        (m.mean(("y", "x")) >= 0.1).values & (m.mean(("y", "x")) <= 0.9).values
    ):
        add(series.isel(time=[t]), m.isel(time=[t]))
    dims = ("time", "band", "y", "x")
    coords = {"time": pd.date_range("2000-01-01", periods=len(images)), "band": sd.BANDS10}
    return xr.Dataset(
        {
            "reflectance": (dims, np.stack(images)),
            "cloud_mask": (("time", "y", "x"), np.stack(masks)),
        },
        coords=coords,
    )


def training_pairs(bank: xr.Dataset) -> list[xr.Dataset]:
    pairs = []
    # The real series: clouds of its own cloudy dates over its clear training dates.
    pairs += xcloudfree.make_training_pairs(series_train(), n=12, targets=4, seed=0)
    # Single clear images (other places in the region, worldwide pairs): synthetic series.
    singles = sd.clear_patches("train") + [clear for _, clear in sd.pairs("train")]
    for i, image in enumerate(singles):
        pairs += xcloudfree.make_training_pairs(image, cloud_bank=bank, n=1, k=5, seed=100 + i)
    # Real L2A (RGB + B8A): each cube's own clouds (dlmask) over its clear training dates.
    cube, mask = l2a_train("hungary_romania_34TET")
    pairs += xcloudfree.make_training_pairs(cube, mask=mask, n=12, targets=3, seed=1)
    cube, mask = l2a_train("sweden_34VCL")
    pairs += xcloudfree.make_training_pairs(
        cube, mask=mask, n=8, targets=3, seed=2, clear_max=0.1
    )  # fmt: skip
    return pairs


def mask_samples() -> list[tuple[xr.DataArray, xr.DataArray]]:
    scene, ref = sd.scene(sd.SCENE_TRAIN_ROWS)
    samples = [(scene, ref)] * 12  # the one scene with reference labels weighs most
    for name, held in HELD_L2A.items():
        samples.append(_without(held, *sd.l2a(name)))  # every class: the head's "cloud"
    series = series_train()
    samples.append((series, xcloudfree.cloud_mask(series)))
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=sd.ROOT / "xcloudfree" / "weights" / PRETRAINED)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply the steps (e.g. 0.01 to smoke-test)"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--checkpoint-dir", type=Path, default=sd.ROOT / "out" / "train_pretrained")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sd.require()
    started = time.perf_counter()
    bank = cloud_bank()
    pairs = training_pairs(bank)
    samples = mask_samples()
    print(f"{len(pairs)} training pairs, {bank.sizes['time']} bank clouds, prepared in "
          f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
    steps = {p: max(1, round(n * args.scale)) for p, n in STEPS.items()}
    model = xcloudfree.train(
        pairs, epochs=steps, steps_per_epoch=1, batch_size=8, patch_size=80, device=args.device,
        seed=args.seed, mask_samples=samples, checkpoint_dir=args.checkpoint_dir,
        checkpoint_every=100, resume=args.resume,
    )  # fmt: skip
    minutes = (time.perf_counter() - started) / 60
    model.config.metadata.update(
        {
            "data": "SEN12MS-CR-TS ROI 146 + clear patches, SEN12MS-CR pairs, s2cloudless scene, "
            "GreenEarthNet L2A (Hungary, Sweden); modified Copernicus Sentinel data",
            "heldout": {
                "series_dates": sd.HELDOUT_SERIES_DATES,
                "series_donors": sd.HELDOUT_SERIES_DONORS,
                "l2a_dates": sd.HELDOUT_L2A_DATES, "l2a_donors": sd.HELDOUT_L2A_DONORS,
                "sweden_dates": sd.HELDOUT_SWEDEN_DATES,
                "sweden_donors": sd.HELDOUT_SWEDEN_DONORS,
                "patches": sd.HELDOUT_PATCHES, "pairs": sd.HELDOUT_PAIRS,
                "scene_rows": [sd.SCENE_DEV_ROWS.start, None],
            },
            "command": "python scripts/train_pretrained.py",
            "minutes": round(minutes, 1),
            "device": str(xcloudfree.inference.devices.resolve_device(args.device)),
            "torch_threads": torch.get_num_threads(),
        }
    )  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out, half=True)
    summary = {"out": str(args.out), "bytes": args.out.stat().st_size, **model.config.metadata}
    print(json.dumps(summary, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
