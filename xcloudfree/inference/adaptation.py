"""Per-scene adaptation: a small network learned on the scene's own clear pixels.

The user's cube is the one training set that always matches the user's region: on
every date, its clear pixels are pixels whose truth is known and whose nearest clear
dates before and after are also known. For each date with something to fill, a
small convolutional network (two 3x3 layers of :data:`HIDDEN` channels and a 1x1
output) learns a correction of the regression fill from the two neighbours' values
and the regression itself on that date's clear pixels, and then corrects the
regression under the date's clouds, where the same inputs exist. It learns what one
scene-wide gain and offset cannot: relations between dates and bands that vary with
the land cover.

The scene validates its own fill: a fifth of each date's clear pixels (in 16 px
blocks) is held out of the fit, and a date keeps its correction only where it beats
the plain regression on them; otherwise it keeps the regression.

The networks are fitted once per scene on at most :data:`WINDOWS` windows of
:data:`WINDOW` px spread over the region (the whole region when it is smaller), so
the result does not depend on the chunking, and stored as one small array
``(time, parameters + 2)`` that every chunk's task receives (see
:func:`xcloudfree.inference.engine.fill_with_model`).
"""

from __future__ import annotations

import numpy as np

from .._indexing import take_per_pixel
from ..fills.baselines import _apply_regression, _strict_neighbours, _valid

__all__ = [
    "HIDDEN", "STEPS", "WINDOW", "WINDOWS", "apply_adapters", "fit_adapters", "n_parameters",
    "training_windows",
]  # fmt: skip

#: Channels of the hidden layers.
HIDDEN = 48
#: Adam steps per date, each on one whole window: about 3.4 s per date of 10 bands on
#: two CPU cores. Measured on the sample's held-out dates: 150 steps on 64 px crops
#: gave -0.1 dB against the plain regression, 300 on 64 px +0.2, 300 on 128 px +0.4.
STEPS = 300
#: Side of a training crop (a window smaller than this is used whole).
CROP = 128
#: Side of a training window, and the most windows used per scene.
WINDOW = 128
WINDOWS = 4
#: Share of the clear pixels held out to validate each date's correction.
HOLDOUT = 0.2
_BLOCK = 16
_LR = 1e-3
_MIN_PIXELS = 500


def _network(bands: int, *, inputs: int = 3, hidden: int = HIDDEN):
    """The per-date network: ``inputs`` stacks of ``bands`` channels in, ``bands`` out."""
    import torch

    net = torch.nn.Sequential(
        torch.nn.Conv2d(inputs * bands, hidden, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(hidden, hidden, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(hidden, bands, 1),
    )  # fmt: skip
    # Zero output layer: every date starts exactly at the regression.
    torch.nn.init.zeros_(net[-1].weight)
    torch.nn.init.zeros_(net[-1].bias)
    return net


def n_parameters(bands: int) -> int:
    """Parameters of one date's network for ``bands`` bands."""
    return sum(p.numel() for p in _network(bands).parameters())


def training_windows(shape: tuple[int, int], count: int = WINDOWS) -> list[tuple[slice, slice]]:
    """Up to ``count`` windows of :data:`WINDOW` px spread over a ``(y, x)`` region."""
    per_axis = []
    for size in shape:
        if size <= WINDOW:
            per_axis.append([slice(0, size)])
            continue
        n = min(int(np.ceil(np.sqrt(count))), size // WINDOW)
        starts = np.linspace(0, size - WINDOW, n).round().astype(int)
        per_axis.append([slice(s, s + WINDOW) for s in starts])
    grid = [(ys, xs) for ys in per_axis[0] for xs in per_axis[1]]
    if len(grid) <= count:
        return grid
    # Fewer than the grid holds: spread along it (2 of a 2 x 2 grid: the diagonal).
    return [grid[i] for i in np.linspace(0, len(grid) - 1, count).round().astype(int)]


def _inputs(data: np.ndarray, prev: np.ndarray, nxt: np.ndarray, regression: np.ndarray):
    """``(T, 3C, H, W)``: the previous and next clear values and the regression.

    ``prev``, ``nxt``: each pixel's nearest clear dates (``_strict_neighbours``).
    """
    x_prev = np.where((prev >= 0)[:, None], take_per_pixel(data, prev), regression)
    x_next = np.where((nxt < data.shape[0])[:, None], take_per_pixel(data, nxt), regression)
    out = np.concatenate([x_prev, x_next, regression], axis=1)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def _holdout(shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    blocks = rng.random((-(-shape[0] // _BLOCK), -(-shape[1] // _BLOCK))) < HOLDOUT
    return np.kron(blocks, np.ones((_BLOCK, _BLOCK), bool))[: shape[0], : shape[1]]


def fit_adapters(
    windows: list[np.ndarray],
    masks: list[np.ndarray],
    need: np.ndarray,
    stats: np.ndarray,
    *,
    days: np.ndarray,
    seed: int = 0,
) -> np.ndarray:
    """One network per date that needs filling, learned on the windows' clear pixels.

    Parameters
    ----------
    windows, masks
        ``(T, C, h, w)`` reflectance and ``(T, h, w)`` fill masks of the training windows.
    need
        ``(T,)`` bool: dates with something to fill anywhere in the region.
    stats
        Regression statistics of the whole region.
    days, seed
        Days of the dates; seed of the crops, hold-outs and initial weights.

    Returns
    -------
    numpy.ndarray
        ``(T, P + 2)`` float32: each row a date's flattened parameters, then the
        held-out mean absolute error of the corrected and of the plain regression.
        A row of NaN: no correction for that date (nothing to fill, too few clear
        pixels, or the correction did not beat the regression on held-out pixels).
    """
    import torch

    t, c = windows[0].shape[:2]
    p = n_parameters(c)
    out = np.full((t, p + 2), np.nan, np.float32)
    prepared = []
    for data, mask in zip(windows, masks, strict=True):
        data = data.astype(np.float32)
        valid = _valid(data, mask)
        regression = _apply_regression(data, valid, days, stats)[0]
        prev, nxt = _strict_neighbours(valid)
        # At least one clear neighbour, as under cloud (a missing one reads the
        # regression in both places), so the first and last dates learn too.
        usable = valid & ((prev >= 0) | (nxt < t))
        inputs = _inputs(data, prev, nxt, regression)
        prepared.append((inputs, np.nan_to_num(data), usable))
    with torch.random.fork_rng(devices=[]), torch.inference_mode(False):
        torch.manual_seed(seed)
        for d in np.flatnonzero(need):
            row = _fit_date(d, prepared, seed)
            if row is not None:
                out[d] = row
    return out


def _fit_date(d: int, prepared, seed: int) -> np.ndarray | None:
    import torch

    rng = np.random.default_rng((seed, int(d)))
    xs, ys, trains, vals = [], [], [], []
    for k, (inp, truth, usable) in enumerate(prepared):
        hold = _holdout(usable.shape[1:], seed=seed * 1000 + int(d) * 10 + k)
        xs.append(torch.from_numpy(inp[d]))
        ys.append(torch.from_numpy(truth[d]))
        trains.append(torch.from_numpy(usable[d] & ~hold))
        vals.append(torch.from_numpy(usable[d] & hold))
    if sum(int(m.sum()) for m in trains) < _MIN_PIXELS or sum(int(m.sum()) for m in vals) < 100:
        return None
    c = ys[0].shape[0]
    net = _network(c)
    opt = torch.optim.Adam(net.parameters(), lr=_LR)
    for _ in range(STEPS):
        k = int(rng.integers(len(xs)))
        x, y, m = _crop(xs[k], ys[k], trains[k], rng)
        base = x[:, 2 * c :]
        loss = ((base + net(x) - y).abs() * m).sum() / (m.sum() * c).clamp(min=1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        err_fit = err_reg = n = 0.0
        for x, y, m in zip(xs, ys, vals, strict=True):
            base = x[None, 2 * c :]
            pred = base + net(x[None])
            err_fit += float(((pred - y[None]).abs() * m).sum())
            err_reg += float(((base - y[None]).abs() * m).sum())
            n += float(m.sum()) * c
    if not err_fit < err_reg:
        return None
    params = torch.cat([q.detach().reshape(-1) for q in net.parameters()]).numpy()
    return np.concatenate([params, [err_fit / n, err_reg / n]]).astype(np.float32)


def _crop(x, y, m, rng):
    h, w = x.shape[-2:]
    i = int(rng.integers(max(1, h - CROP + 1)))
    j = int(rng.integers(max(1, w - CROP + 1)))
    sl = (slice(None), slice(i, i + CROP), slice(j, j + CROP))
    return x[sl][None], y[sl][None], m[sl[1:]][None, None].float()


def apply_adapters(
    data: np.ndarray, valid: np.ndarray, regression: np.ndarray, adapters: np.ndarray
) -> np.ndarray:
    """Correct ``regression`` in place with each date's network; returns the error ratios.

    The ratio (held-out error of the corrected over the plain regression, 1 where a
    date has no correction) scales that date's expected error.
    """
    import torch

    t, c = data.shape[:2]
    ratio = np.ones(t, np.float32)
    dates = [d for d in range(t) if np.isfinite(adapters[d]).all()]
    if not dates:
        return ratio
    inp = _inputs(data, *_strict_neighbours(valid), regression)
    net = _network(c)
    shapes = [q.shape for q in net.parameters()]
    with torch.inference_mode():
        for d in dates:
            flat = torch.from_numpy(adapters[d, :-2])
            offset = 0
            for q, shape in zip(net.parameters(), shapes, strict=True):
                n = int(np.prod(shape))
                q.copy_(flat[offset : offset + n].reshape(shape))
                offset += n
            correction = net(torch.from_numpy(inp[d : d + 1]))[0].numpy()
            regression[d] += correction
            ratio[d] = adapters[d, -2] / adapters[d, -1]
    return ratio
