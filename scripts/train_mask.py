"""Train the temporal cloud, haze and shadow mask shipped as ``xcloudfree/weights/mask_v2.pt``.

Labels, each source with its own held-out split (``scripts/shared_data.py``):

* GreenEarthNet L2A cubes (Hungary, Sweden): ``s2_dlmask`` (CloudSEN12 classes 0 clear,
  1 thick, 2 thin, 3 shadow). On dates with under 5 % cloud its shadow labels are
  ignored: the dlmask calls dark forest "shadow" on clear dates.
* The L1C ROI 146 series, the worldwide pairs: ukis-csmask 1.0 (DLR) as a teacher,
  its 6-band L1C model run at 30 m (3 x 3 block mean), cloud and shadow; on the series
  its "clear" is made unknown where blue stands 0.02 above the series' reference
  (the teacher misses uniform haze).
* Synthetic haze veils and shadows laid on clear pixels of every source (35 % of the
  samples), labelled thin and shadow.
* The s2cloudless scene's rows 0-569: its cloud mask. The training clear patches:
  the teacher (several come from hazy or cloudy dates).
* ``gee_l2a`` (12 bands) and ``openeo_belgium_l2a``: Sen2Cor SCL, at a third of the weight.

Two stages: the network learns on references built from the provisional rank test
(pass 0), then on a mix with references built from its own pass-1 output (pass 2),
the inputs it sees at inference. Then the operating point (threshold, dilation) is
chosen by the error of the ``regression`` fill under laid clouds on *training*
dates (never the held-out ones).

    pip install -e ".[csmask]"   # the teacher
    python scripts/train_mask.py [--steps 2500] [--out xcloudfree/weights/mask_v2.pt]
    python scripts/mask_operating_point.py
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import shared_data as sd
import torch
import xarray as xr

import xcloudfree
from xcloudfree.masking import temporal
from xcloudfree.masking.classes import CLEAR, SNOW, from_scl
from xcloudfree.models.temporal_mask import MaskConfig, TemporalMaskNet

ANY_CLOUD = 5  # label: thick or thin, not told apart (teacher, s2cloudless)
IGNORE = 255
ALLOWED = torch.tensor([  # label -> classes whose probability it asks for
    [1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1],
    [0, 1, 1, 0, 0],
], dtype=torch.float32)  # fmt: skip
LABEL_WEIGHT = torch.tensor([1.0, 1.0, 2.0, 3.0, 1.0, 1.0])


def _days(cube):
    return cube["time"].values.astype("datetime64[D]").astype(np.int64)


_CACHE = sd.ROOT / "out" / "teacher"


def _teacher(values, bands):
    """ukis-csmask (6-band L1C model) at 30 m: 0 clear, ANY_CLOUD, 3 shadow (cached in out/)."""
    import hashlib

    key = hashlib.sha1(np.ascontiguousarray(values).tobytes()).hexdigest()[:16]
    path = _CACHE / f"{key}.npy"
    if path.exists():
        return np.load(path)
    out = _run_teacher(values, bands)
    _CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def _run_teacher(values, bands):
    from ukis_csmask.mask import CSmask

    bands = [str(b) for b in bands]
    t, _, h, w = values.shape
    f = 3
    hh, ww = h // f * f, w // f * f
    names = ["B02", "B03", "B04", "B08", "B11", "B12"]
    v = np.stack([values[:, bands.index(n), :hh, :ww] for n in names], 1)
    v = v.reshape(t, 6, hh // f, f, ww // f, f).mean((3, 5))
    out = np.full((t, h, w), IGNORE, np.uint8)
    for i in range(t):
        img = np.nan_to_num(np.moveaxis(v[i], 0, -1)).astype(np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = CSmask(img, band_order=["blue", "green", "red", "nir", "swir16", "swir22"],
                       product_level="l1c", invalid_buffer=0, intra_op_num_threads=2)  # fmt: skip
        c = np.squeeze(m.csm)
        lab = np.select([c == 1, c == 2], [ANY_CLOUD, 3], 0).astype(np.uint8)
        out[i, :hh, :ww] = np.repeat(np.repeat(lab, f, 0), f, 1)
    out[:, hh:, :] = out[:, hh - 1 : hh, :]
    out[:, :, ww:] = out[:, :, ww - 1 : ww]
    out[~np.isfinite(values).all(1)] = IGNORE
    return out


def _hazy_unknown(cube):
    """Teacher labels of a series, with "clear" made unknown where blue stands above the
    series' reference: the teacher misses uniform haze (2018-03-22), and a wrong "clear"
    label there would teach the network to miss it too."""
    lab = _teacher(cube.values, cube.band.values)
    x, valid, _ = temporal.mask_inputs(cube.values, cube.band.values)
    clear = temporal.provisional_clear(x, valid)
    for t in range(x.shape[0]):
        ref, ok = temporal.reference(x, clear, _days(cube), t)
        lab[t][(lab[t] == 0) & ok & (x[t, 0] - ref[0] > 0.02)] = IGNORE
    return lab


def _dlmask_labels(path, held):
    cube, dl = xcloudfree.datasets.read_greenearthnet(path, classes=True)
    lab = dl.values.copy()
    cloudy = np.isin(lab, (1, 2)).mean((1, 2))
    mostly_clear = (cloudy < 0.1)[:, None, None]
    # Pixels the dlmask calls cloud or shadow on three or more mostly clear dates are
    # ground it gets wrong (Sweden's bright corridor, dark forest): clear there.
    persistent = ((lab > 0) & (lab != IGNORE) & mostly_clear).sum(0) >= 3
    lab[mostly_clear & persistent[None] & (lab > 0) & (lab != IGNORE)] = 0
    lab[(cloudy < 0.05)[:, None, None] & (lab == 3)] = IGNORE
    keep = ~np.isin(cube["time"].values, pd.to_datetime(held).values)
    return cube.isel(time=keep), lab[keep]


def _gee(site, held):
    import rioxarray

    files = sorted((sd.DATA / "gee_l2a" / site).glob("*.tif"))
    files = [f for f in files if f.stem not in held]
    arrs, labs, times = [], [], []
    for f in files:
        da = rioxarray.open_rasterio(f)
        names = list(da.attrs["long_name"])
        pick = ["B2", "B3", "B4", "B8", "B11", "B12"]
        v = np.stack([da.values[names.index(b)] for b in pick]).astype(np.float32)
        scl = da.values[names.index("SCL")]
        v = np.where(scl[None] == 0, np.nan, v * 1e-4)
        arrs.append(v)
        labs.append(from_scl(scl))
        times.append(np.datetime64(f.stem, "ns"))
    bands = ["B02", "B03", "B04", "B08", "B11", "B12"]
    cube = xr.DataArray(np.stack(arrs), dims=("time", "band", "y", "x"),
                        coords={"time": times, "band": bands})  # fmt: skip
    return cube, np.stack(labs)


def _belgium():
    cube, scl = sd.belgium()
    return cube.isel(time=slice(0, 14)), from_scl(scl.values[:14])


def sources():
    """(name, cube, labels, weight) of every training source."""
    out = []
    series = sd.series().drop_sel(
        time=pd.to_datetime(sd.HELDOUT_SERIES_DATES + sd.HELDOUT_SERIES_DONORS).values
    )
    out.append(("L1C series (ukis teacher)", series, _hazy_unknown(series), 2.0))
    hungary = sd.HELDOUT_L2A_DATES + sd.HELDOUT_L2A_DONORS
    sweden = sd.HELDOUT_SWEDEN_DATES + sd.HELDOUT_SWEDEN_DONORS
    for name, held in (("hungary_romania_34TET", hungary), ("sweden_34VCL", sweden)):
        cube, lab = _dlmask_labels(sd.DATA / "greenearthnet_l2a" / f"{name}.nc", held)
        out.append((f"GreenEarthNet {name} (dlmask)", cube, lab, 2.0))
    scene, ref = sd.scene(sd.SCENE_TRAIN_ROWS)
    lab = np.where(ref.values, ANY_CLOUD, 0).astype(np.uint8)
    out.append(("s2cloudless rows 0-569", scene, lab, 1.0))
    # The "clear" patches are not all clear (some come from hazy or cloudy dates of
    # the region): the teacher labels them too.
    for p in sd.clear_patches("train"):
        out.append(("clear patch (ukis teacher)", p, _teacher(p.values, p.band.values), 0.15))
    for cloudy, clear in sd.pairs("train"):
        for c in (cloudy, clear):
            out.append(("pair (ukis teacher)", c, _teacher(c.values, c.band.values), 0.1))
    for site, held in (("hungary_34TET", hungary), ("sweden_34VCL", sweden)):
        cube, lab = _gee(site, held)
        out.append((f"gee_l2a {site} (SCL)", cube, lab, 0.3))
    cube, lab = _belgium()
    out.append(("openeo Belgium dates 0-13 (SCL)", cube, lab, 0.3))
    return out


def _features(cube, clear=None):
    """Features (T, C, H, W) of every date; pass 0 when ``clear`` is None."""
    x, valid, has_swir = temporal.mask_inputs(cube.values, cube.band.values)
    if clear is None:
        clear = temporal.provisional_clear(x, valid)
    days = _days(cube)
    feats = []
    for t in range(x.shape[0]):
        ref, ok = temporal.reference(x, clear, days, t)
        feats.append(temporal.date_features(x[t], ref, ok, has_swir))
    return np.stack(feats), valid, has_swir


#: Colour of a synthetic veil (relative to its brightness): clouds are grey-white in
#: the visible and NIR, darker in SWIR.
_VEIL = np.array([1.0, 0.97, 0.95, 0.95, 0.75, 0.55], np.float32)
#: Path radiance left in a shadow (L1C blue keeps the most), times a random 0-1.
_PATH = np.array([0.07, 0.04, 0.02, 0.01, 0.0, 0.0], np.float32)


def _blob(rng, size):
    """A smooth random field in 0-1 that is > 0 on one or a few blobs."""
    from scipy import ndimage

    field = ndimage.gaussian_filter(rng.standard_normal((size, size)), rng.uniform(4, 10))
    field = (field - np.quantile(field, rng.uniform(0.5, 0.85))) / (field.std() + 1e-6)
    return np.clip(field * 2, 0, 1).astype(np.float32)


def _synthetic(rng, f, lb):
    """Lay a synthetic haze veil or shadow on clear pixels, relabelled thin or shadow.

    The teachers miss thin haze; the physics of both is simple: a veil mixes the
    ground with a cloud colour, a shadow scales the ground down (path radiance stays).
    Only the date's own and difference channels change; its reference does not.
    """
    s, c, ds = temporal._SPREAD, temporal._CENTRE, temporal._DIFF_SPREAD
    x = f[:6] * s + c
    w = _blob(rng, f.shape[1])
    if rng.random() < 0.6:
        alpha = w * rng.uniform(0.06, 0.35)
        new = (1 - alpha) * x + alpha * rng.uniform(0.25, 0.8) * _VEIL[:, None, None]
        cls, where = 2, alpha >= 0.05
    else:
        factor = 1 - w * rng.uniform(0.4, 0.75)
        path = _PATH[:, None, None] * rng.random()
        new = path + (x - path) * factor
        cls, where = 3, factor <= 0.8
    new = new.astype(np.float32)
    if f[18, 0, 0] == 0:  # no SWIR in this sample: keep those channels empty
        new[4:6] = x[4:6]
    f[:6] = (new - c) / s
    f[12:18] += (new - x) / ds * f[19]
    lb[(lb == 0) & where] = cls


def _batch(rng, items, weights, size=64, n=24):
    xs, ys, ws = [], [], []
    p = np.array(weights) / np.sum(weights)
    for _ in range(n):
        it = items[rng.choice(len(items), p=p)]
        feats, lab, w, has_swir = it
        t = rng.integers(feats.shape[0])
        _, _, h, wd = feats.shape
        y0 = rng.integers(0, max(h - size, 0) + 1)
        x0 = rng.integers(0, max(wd - size, 0) + 1)
        f = feats[t, :, y0 : y0 + size, x0 : x0 + size].copy()
        lb = lab[t, y0 : y0 + size, x0 : x0 + size].copy()
        if f.shape[1] < size or f.shape[2] < size:  # pad small scenes with ignored pixels
            ph, pw = size - f.shape[1], size - f.shape[2]
            f = np.pad(f, ((0, 0), (0, ph), (0, pw)))
            lb = np.pad(lb, ((0, ph), (0, pw)), constant_values=IGNORE)
        if has_swir and rng.random() < 0.3:  # the same scene without SWIR
            f[[4, 5]] = -temporal._CENTRE / temporal._SPREAD
            f[[10, 11]] = f[19] * (-temporal._CENTRE / temporal._SPREAD)
            f[[16, 17]] = 0
            f[18] = 0
        if rng.random() < 0.15:  # the same date alone, without the series
            f[6:18] = 0
            f[19] = 0
        if rng.random() < 0.35:
            _synthetic(rng, f, lb)
        k = rng.integers(4)
        f, lb = np.rot90(f, k, (1, 2)), np.rot90(lb, k)
        if rng.random() < 0.5:
            f, lb = f[:, :, ::-1], lb[:, ::-1]
        xs.append(np.ascontiguousarray(f))
        ys.append(np.ascontiguousarray(lb))
        ws.append(w)
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys)), torch.tensor(ws)


def _loss(logits, labels, weights):
    prob = torch.softmax(logits, 1)
    ok = labels != IGNORE
    lab = torch.where(ok, labels, torch.zeros_like(labels)).long()
    allowed = ALLOWED[lab].permute(0, 3, 1, 2)  # N, 5, H, W
    nll = -torch.log((prob * allowed).sum(1).clamp_min(1e-6))
    w = LABEL_WEIGHT[lab] * weights[:, None, None] * ok
    return (nll * w).sum() / w.sum().clamp_min(1.0)


def train(net, items, weights, steps, rng, lr=2e-3):
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    net.train()
    start = time.time()
    for step in range(steps):
        x, y, w = _batch(rng, items, weights)
        loss = _loss(net(x), y, w)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 200 == 0 or step == steps - 1:
            print(
                f"  step {step:5d} loss {loss.item():.4f} ({time.time() - start:.0f} s)", flush=True
            )
    net.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument(
        "--out", type=Path, default=sd.ROOT / "xcloudfree" / "weights" / "mask_v2.pt"
    )
    args = parser.parse_args()
    sd.require()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    srcs = sources()
    report = {"sources": [], "steps": args.steps}
    items, weights, cubes = [], [], []
    for name, cube, lab, w in srcs:
        feats, valid, has_swir = _features(cube)
        lab = np.where(valid, lab, IGNORE).astype(np.uint8)
        items.append((feats, lab, w, has_swir))
        weights.append(w)
        cubes.append((cube, lab, w, has_swir))
        report["sources"].append({"name": name, "dates": int(cube.sizes["time"]),
                                  "pixels": int((lab != IGNORE).sum())})  # fmt: skip
    labelled = sum(s["pixels"] for s in report["sources"]) / 1e6
    print(f"{len(items)} sources, {labelled:.1f} M labelled px")
    net = TemporalMaskNet(MaskConfig())
    print("stage 1: references from the provisional rank test")
    train(net, items, weights, args.steps, rng)
    print("stage 2: + references from the network's own pass 1")
    for (feats0, lab, w, has_swir), (cube, _, _, _) in zip(list(items), cubes):
        if cube.sizes["time"] < 2:
            continue
        with torch.inference_mode():
            probs = torch.softmax(net(torch.from_numpy(feats0)), 1).numpy()
        _, valid, _ = temporal.mask_inputs(cube.values, cube.band.values)
        clear = valid & (probs[:, CLEAR] + probs[:, SNOW] > 0.5)
        items.append((_features(cube, clear)[0], lab, w, has_swir))
        weights.append(w)
    train(net, items, weights, args.steps, rng, lr=1e-3)
    net.config.name = "xcloudfree-mask"
    net.config.version = "2.0"
    net.config.training_data = "; ".join(s["name"] for s in report["sources"][:4]) + "; ..."
    args.out.parent.mkdir(parents=True, exist_ok=True)
    net.save(args.out)
    results = sd.ROOT / "benchmarks" / "results" / "mask_training.json"
    results.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
