"""Simulated clouds with known truth: real cloud shapes and spectra over clear dates.

Scoring a cloud-removal method needs the surface under the cloud. We take clear
dates of a cube and lay over them real clouds taken from its own cloudy dates: the
cloud's footprint *and* its reflectance (all bands) are copied from a donor date,
so the clouds are real in shape and spectrum, while the truth underneath is the
clear date as it was observed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from .cube import as_cube
from .errors import OptionError
from .masking import cloud_mask

__all__ = ["SimulatedClouds", "simulate_clouds"]


@dataclass(frozen=True)
class SimulatedClouds:
    """A cube with clouds laid over some clear dates, and the truth under them.

    Attributes
    ----------
    cloudy
        The cube with clouds pasted in (the input to a method).
    truth
        The original cube (clear at the targeted dates).
    mask
        True where a cloud was pasted, ``(time, y, x)``; False at dates not targeted.
    true_mask
        ``mask`` OR the spectral mask of the original cube: every cloud in ``cloudy``.
    targets
        The targeted (originally clear) dates.
    donors
        For each target, the date its clouds were taken from.

    Examples
    --------
    >>> import xcloudfree
    >>> cube = xcloudfree.datasets.sample_timeseries().isel(y=slice(0, 64), x=slice(0, 64))
    >>> sim = xcloudfree.simulate_clouds(cube, targets=1, seed=0)
    >>> len(sim.targets), sim.mask.dims, bool(sim.mask.any())
    (1, ('time', 'y', 'x'), True)
    """

    cloudy: xr.DataArray
    truth: xr.DataArray
    mask: xr.DataArray
    true_mask: xr.DataArray
    targets: np.ndarray
    donors: np.ndarray


def simulate_clouds(
    cube: xr.DataArray,
    *,
    targets: int | list | None = None,
    clear_max: float = 0.05,
    cover: tuple[float, float] = (0.15, 0.8),
    seed: int = 0,
    mask: xr.DataArray | None = None,
    donors: list | None = None,
) -> SimulatedClouds:
    """Lay real clouds from a cube's own cloudy dates over its clear dates.

    Parameters
    ----------
    cube
        A cube with some clear and some partly cloudy dates.
    targets
        Dates to cloud over: a number of clear dates chosen at random (default 4),
        or a list of dates/labels. Targets must be clear (cloud fraction
        ``<= clear_max`` in the spectral mask).
    clear_max
        Largest cloud fraction for a date to count as clear.
    cover
        Range of cloud fraction for a date to serve as a donor.
    seed
        Seed of the random choices.
    mask
        Cloud mask of ``cube``; default: the spectral test of
        :func:`xcloudfree.cloud_mask`, undilated.
    donors
        Dates whose clouds may be laid (default: every partly cloudy date), e.g.
        dates held out of training, so that no laid cloud was seen in training.

    Returns
    -------
    SimulatedClouds

    Raises
    ------
    ValueError
        If the cube has no clear date or no partly cloudy donor date.

    Examples
    --------
    >>> import xcloudfree
    >>> sim = simulate_clouds(xcloudfree.datasets.sample_timeseries(), targets=2, seed=1)
    >>> len(sim.targets), bool(sim.mask.any())
    (2, True)
    """
    cube = as_cube(cube)
    if mask is None:
        mask = cloud_mask(cube, "spectral", dilate=0)
    mask = mask.transpose("time", "y", "x")
    frac = mask.mean(("y", "x")).values
    clear = np.flatnonzero(frac <= clear_max)
    partly = (frac >= cover[0]) & (frac <= cover[1])
    if donors is not None:
        allowed = np.isin(cube["time"].values, np.asarray(donors, dtype="datetime64[ns]"))
        if not allowed.any():
            raise OptionError(
                f"none of the donors {list(donors)} is a date of the cube: pick donors from "
                "cube.time"
            )
        partly &= allowed
    donors = np.flatnonzero(partly)
    if clear.size == 0 or donors.size == 0:
        raise ValueError(
            f"cannot simulate clouds: the cube needs clear dates (cloud fraction <= {clear_max}) "
            f"and partly cloudy donors (fraction in {cover}); it has {clear.size} and "
            f"{donors.size}. Widen clear_max / cover or use a longer series"
        )
    rng = np.random.default_rng(seed)
    if targets is None or isinstance(targets, int):
        count = min(4 if targets is None else targets, clear.size)
        chosen = np.sort(rng.choice(clear, size=count, replace=False))
    else:
        index = cube.get_index("time")
        try:
            chosen = np.array(sorted(index.get_loc(np.datetime64(t, "ns")) for t in targets))
        except KeyError as exc:
            raise ValueError(f"target date {exc.args[0]} is not in the cube") from None
        bad = [str(index[i])[:10] for i in chosen if i not in clear]
        if bad:
            raise ValueError(f"targets {bad} are not clear (cloud fraction > {clear_max})")
    picked = rng.choice(donors, size=chosen.size, replace=True)
    data = np.array(cube.values, copy=True)
    pasted = np.zeros(mask.shape, dtype=bool)
    donor_mask = mask.values
    for target, donor in zip(chosen, picked):
        where = donor_mask[donor]
        data[target][:, where] = data[donor][:, where]
        pasted[target] = where
    pasted_da = mask.copy(data=pasted).rename("simulated_cloud_mask")
    return SimulatedClouds(
        cloudy=cube.copy(data=data),
        truth=cube,
        mask=pasted_da,
        true_mask=(pasted_da | mask).rename("cloud_mask"),
        targets=cube["time"].values[chosen],
        donors=cube["time"].values[picked],
    )
