"""Training pairs: real clouds laid over clear dates, so the truth under the cloud is known.

A pair is a ``(cloudy, clear)`` couple of cubes of one place on the same dates:
``clear`` is the truth and ``cloudy`` the same cube with clouds laid over some of
its clear dates. Clouds (footprint *and* spectra) come from the cube's own cloudy
dates or from a *cloud bank* of real cloudy images from elsewhere. A single clear
image gets a synthetic series: neighbour dates made from it with realistic per-band
radiometric change, small shifts, local change and noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ..cube import as_cube
from ..errors import CubeError
from ..masking import cloud_mask
from ..simulation import simulate_clouds

__all__ = ["make_training_pairs", "pairs_from"]


def _bank_arrays(cloud_bank: xr.Dataset | xr.DataArray, bands: list[str]):
    if isinstance(cloud_bank, xr.Dataset):
        if "reflectance" not in cloud_bank or "cloud_mask" not in cloud_bank:
            raise ValueError(
                "a cloud bank Dataset needs 'reflectance' (time, band, y, x) and 'cloud_mask' "
                "(time, y, x) variables"
            )
        refl = as_cube(cloud_bank["reflectance"])
        mask = cloud_bank["cloud_mask"].transpose("time", "y", "x").astype(bool)
    else:
        refl = as_cube(cloud_bank)
        mask = cloud_mask(refl, "spectral", dilate=0)
    missing = sorted(set(bands) - {str(b) for b in refl["band"].values})
    if missing:
        raise ValueError(f"the cloud bank lacks bands {missing} of the cube: give it all bands")
    return np.asarray(refl.sel(band=bands).values), np.asarray(mask.values)


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], cells: int = 4) -> np.ndarray:
    """A smooth random field in [-1, 1]: bilinear upsampling of a coarse grid."""
    from scipy import ndimage

    coarse = rng.uniform(-1, 1, size=(cells, cells))
    zoom = (shape[0] / cells, shape[1] / cells)
    return ndimage.zoom(coarse, zoom, order=1, mode="nearest")[: shape[0], : shape[1]]


def _shift(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    padded = np.pad(image, ((0, 0), (2, 2), (2, 2)), mode="reflect")
    h, w = image.shape[-2:]
    return padded[:, 2 + dy : 2 + dy + h, 2 + dx : 2 + dx + w]


def _neighbour(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Another plausible acquisition of the same place: gain, offset, local change, shift."""
    c = image.shape[0]
    gain = rng.normal(1.0, 0.06) * rng.normal(1.0, 0.04, size=(c, 1, 1))
    offset = rng.normal(0.0, 0.008, size=(c, 1, 1))
    # Surfaces change unevenly between dates (crops, water, phenology): a smooth field
    # at two scales, different for every band.
    shape = image.shape[-2:]
    fields = [0.1 * _smooth_field(rng, shape, 4) + 0.06 * _smooth_field(rng, shape, 16)
              for _ in range(c)]  # fmt: skip
    local = 1.0 + np.stack(fields)
    out = _shift(image, *rng.integers(-2, 3, size=2)) * gain * local + offset
    return (out + rng.normal(0.0, 0.002, size=out.shape)).astype(np.float32)


def _paste(image, bank, bank_mask, rng, cover):
    """Lay a random bank cloud with cover in ``cover`` over ``image``; return (cloudy, pasted)."""
    h, w = image.shape[-2:]
    for _ in range(20):
        i = rng.integers(bank.shape[0])
        y0 = rng.integers(bank.shape[-2] - h + 1)
        x0 = rng.integers(bank.shape[-1] - w + 1)
        where = bank_mask[i, y0 : y0 + h, x0 : x0 + w]
        if cover[0] <= where.mean() <= cover[1]:
            out = image.copy()
            out[:, where] = bank[i][:, y0 : y0 + h, x0 : x0 + w][:, where]
            return out, where
    return image.copy(), np.zeros((h, w), bool)


def _synthetic_series(clear: xr.DataArray, bank, bank_mask, rng, k, cover) -> xr.Dataset:
    image = np.asarray(clear.isel(time=0).values, dtype=np.float32)
    start = pd.Timestamp(clear["time"].values[0])
    candidates = np.setdiff1d(np.arange(-60, 61, 5), [0])
    offsets = rng.choice(candidates, size=k - 1, replace=False)
    days = np.sort(np.concatenate([[0], offsets]))
    truth = np.stack([image if d == 0 else _neighbour(image, rng) for d in days])
    cloudy = truth.copy()
    for i, d in enumerate(days):
        if d == 0:
            cloudy[i] = _paste(truth[i], bank, bank_mask, rng, cover)[0]
        elif rng.random() < 0.3:  # neighbours are not always clear either
            cloudy[i] = _paste(truth[i], bank, bank_mask, rng, (0.05, 0.9))[0]
            truth[i] = cloudy[i]  # only the target's truth is scored
    times = pd.DatetimeIndex([start + pd.Timedelta(days=int(d)) for d in days])
    coords = {n: v for n, v in clear.coords.items() if "time" not in v.dims}
    coords["time"] = times
    dims = ("time", "band", "y", "x")
    return xr.Dataset(
        {"cloudy": (dims, cloudy), "clear": (dims, truth)}, coords=coords, attrs=clear.attrs
    )


def make_training_pairs(
    cube: xr.DataArray,
    *,
    n: int = 1,
    targets: int | list | None = None,
    cloud_bank: xr.Dataset | xr.DataArray | None = None,
    mask: xr.DataArray | None = None,
    clear_max: float = 0.05,
    cover: tuple[float, float] = (0.15, 0.8),
    k: int = 5,
    seed: int = 0,
) -> list[xr.Dataset]:
    """Training pairs from any cube: real clouds over its clear dates, truth known.

    Parameters
    ----------
    cube
        A ``(time, band, y, x)`` cube. With several dates, clouds come from its own
        partly cloudy dates (or from ``cloud_bank``) and are laid over its clear
        dates. A single clear date gets a synthetic series of ``k`` dates around
        it and clouds from ``cloud_bank`` (required then).
    n
        Pairs to make (different clouds, targets and, for a single date, series).
    targets
        Clear dates to cloud over per pair (number or list), as for
        :func:`xcloudfree.simulate_clouds`. Ignored for a single date.
    cloud_bank
        Real cloudy images: a DataArray ``(time, band, y, x)`` whose clouds are found
        by the spectral test, or a Dataset with ``reflectance`` and ``cloud_mask``.
        Images at least as large as the cube; random windows are used.
    mask
        Cloud mask of ``cube`` (default: the spectral test).
    clear_max, cover
        Largest cloud fraction of a clear date; cloud-fraction range of a donor.
    k
        Dates of a synthetic series.
    seed
        Seed of every random choice.

    Returns
    -------
    list of xarray.Dataset
        Each with ``cloudy`` and ``clear`` cubes, ready for :func:`xcloudfree.train`.

    Examples
    --------
    >>> import xcloudfree
    >>> cube = xcloudfree.datasets.sample_timeseries().isel(x=slice(0, 64), y=slice(0, 64))
    >>> pairs = make_training_pairs(cube, n=2, targets=3)
    >>> len(pairs), sorted(pairs[0].data_vars)
    (2, ['clear', 'cloudy'])
    """
    cube = as_cube(cube)
    bands = [str(b) for b in cube["band"].values]
    rng = np.random.default_rng(seed)
    if cube.sizes["time"] == 1:
        if cloud_bank is None:
            raise ValueError(
                "a single-date cube needs cloud_bank= (real cloudy images) to take clouds from"
            )
        if k < 2:
            raise ValueError(f"k must be at least 2 for a synthetic series, got {k}")
        bank, bank_mask = _bank_arrays(cloud_bank, bands)
        if bank.shape[-2] < cube.sizes["y"] or bank.shape[-1] < cube.sizes["x"]:
            raise ValueError(
                f"cloud bank images ({bank.shape[-2]}x{bank.shape[-1]}) are smaller than the "
                f"cube ({cube.sizes['y']}x{cube.sizes['x']}): crop the cube or give larger ones"
            )
        return [_synthetic_series(cube, bank, bank_mask, rng, k, cover) for _ in range(n)]
    pairs = []
    for i in range(n):
        if cloud_bank is None:
            sim = simulate_clouds(
                cube, targets=targets, clear_max=clear_max, cover=cover, seed=seed + i, mask=mask
            )
            cloudy, clear = sim.cloudy, sim.truth
        else:
            bank, bank_mask = _bank_arrays(cloud_bank, bands)
            if mask is None:
                own = cloud_mask(cube, "spectral", dilate=0)
            else:
                own = mask.transpose("time", "y", "x")
            clear_dates = np.flatnonzero(own.mean(("y", "x")).values <= clear_max)
            if clear_dates.size == 0:
                raise ValueError(f"the cube has no clear date (cloud fraction <= {clear_max})")
            count = min(4 if targets is None else int(targets), clear_dates.size)
            data = np.array(cube.values, copy=True)
            for t in rng.choice(clear_dates, size=count, replace=False):
                data[t] = _paste(data[t], bank, bank_mask, rng, cover)[0]
            cloudy, clear = cube.copy(data=data), cube
        pairs.append(xr.Dataset({"cloudy": cloudy, "clear": clear}))
    return pairs


def unpack(item, names: tuple[str, str], what: str) -> tuple[xr.DataArray, xr.DataArray]:
    """The two DataArrays of a 2-tuple, or of a Dataset's variables ``names``."""
    if isinstance(item, xr.Dataset):
        if any(n not in item for n in names):
            raise ValueError(f"{what}: the Dataset needs {names[0]!r} and {names[1]!r} variables")
        return item[names[0]], item[names[1]]
    if isinstance(item, (tuple, list)) and len(item) == 2:
        return item[0], item[1]
    raise TypeError(
        f"{what}: expected a 2-tuple or a Dataset with {names[0]!r} and {names[1]!r}, "
        f"got {type(item).__name__}"
    )


def pairs_from(cube_pairs) -> list[tuple[xr.DataArray, xr.DataArray]]:
    """Normalise what :func:`xcloudfree.train` accepts to a list of ``(cloudy, clear)`` cubes.

    Accepts one ``xr.Dataset`` with ``cloudy`` and ``clear``, or a sequence of such
    Datasets and/or ``(cloudy, clear)`` tuples.
    """
    if isinstance(cube_pairs, xr.Dataset):
        cube_pairs = [cube_pairs]
    if not isinstance(cube_pairs, Sequence) or isinstance(cube_pairs, (str, bytes)):
        raise TypeError(
            "cube_pairs must be a sequence of (cloudy, clear) cubes or Datasets with 'cloudy' "
            f"and 'clear' variables, got {type(cube_pairs).__name__}"
        )
    out = []
    for i, item in enumerate(cube_pairs):
        cloudy, clear = unpack(item, ("cloudy", "clear"), f"pair {i}")
        cloudy, clear = as_cube(cloudy), as_cube(clear)
        if cloudy.shape != clear.shape or not (cloudy["band"].values == clear["band"].values).all():
            raise CubeError(
                f"pair {i}: cloudy {dict(cloudy.sizes)} and clear {dict(clear.sizes)} must have "
                "the same dates, bands and grid: select them alike, e.g. "
                "clear.sel(band=cloudy.band, time=cloudy.time)"
            )
        for dim in ("time", "y", "x"):
            if dim in cloudy.coords and dim in clear.coords:
                a, b = cloudy[dim].values, clear[dim].values
                same = np.array_equal(a, b) if dim == "time" else np.allclose(a, b)
                if not same:
                    raise CubeError(
                        f"pair {i}: cloudy and clear have the same shape but different {dim} "
                        f"coordinates: a pair is the same {dim} values twice; align them, e.g. "
                        f"clear = clear.sel({dim}=cloudy.{dim})"
                    )
        out.append((cloudy, clear))
    if not out:
        raise CubeError("cube_pairs is empty: give at least one (cloudy, clear) pair")
    return out
