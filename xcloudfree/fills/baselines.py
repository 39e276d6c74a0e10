"""Classical gap-filling baselines: median, nearest, interpolate, regression, local.

Each method keeps every clear observation as it is and fills the pixels that the
cloud mask flags from the clear observations of the same pixel at other dates:

``"median"``
    the per-pixel temporal median of all clear observations;
``"nearest"``
    the clear observation nearest in time (the earlier one on a tie);
``"interpolate"``
    linear in time between the clear observations before and after (the one
    available side where only one exists);
``"regression"``
    the gap-fillers' trick: for a target date *t* and every other date *s*, fit
    ``x_t = a + g * x_s`` per band on the pixels clear at both dates over the whole
    scene; predict the cloudy pixel from its nearest clear observations before and
    after, each mapped through its fit, averaged with inverse residual-variance
    weights. The fit removes the scene-wide radiometric change between dates
    (phenology, illumination, haze) that plain nearest filling carries over.
``"local"``
    the regression, corrected by what it gets wrong *around* the cloud on the same
    date (regression kriging of its residual): at the date's clear pixels the
    regression is a prediction from the neighbouring dates like any other, and its
    misses there (a crop greening up faster than the scene, a haze gradient) are
    smoothed with a Gaussian of :data:`LOCAL_SIGMA` px over the clear pixels and
    added under the cloud, shrunk toward none where few clear pixels are near.
    Residuals beyond :data:`LOCAL_OUTLIER` (band mean: cloud or haze the mask
    missed, or a change too abrupt to spread, a field ploughed or flooded) are left
    out.

All of them are vectorised over time with numpy. On dask input they are lazy:
the time axis is made one chunk (a fill needs every date of a pixel) while the
spatial chunks are kept, and the regression fits are summed over all chunks
first, so the result does not depend on the chunking (``"local"`` reads
:data:`LOCAL_HALO` px around each chunk).

Pixels with no clear observation at any date cannot be filled: they keep their
input value and get ``quality == 0``. NaN input stays NaN.
"""

from __future__ import annotations

from collections.abc import Callable

import dask.array as dsa
import numpy as np
import xarray as xr

from .._indexing import take_per_pixel
from ..chunking import overlap_depth
from ..errors import OptionError
from .smoothing import around, radius, smooth

__all__ = [
    "BASELINES",
    "error_from_quality",
    "expected_error",
    "fill",
    "pair_maps",
    "quality_from_error",
]

#: Days after which the quality of a pixel filled by a gap method has halved.
QUALITY_HALF_LIFE_DAYS = 30.0
#: Expected absolute error (reflectance) at which ``quality`` is 0.5 (regression, local,
#: hybrid).
QUALITY_HALF_ERROR = 0.01
#: The expected error of a fill:
#: ``ERROR_SCALE[method] * v**a * r**b * m**c`` with ``(a, b, c) = ERROR_EXPONENTS``, where
#: ``v = s2 + DEPARTURE_WEIGHT * d2``: ``s2`` the regression's predictive variance and
#: ``d2`` the hybrid's mean squared departure from its base, the ``"local"`` fill (0 for
#: ``"regression"`` and ``"local"``, whose scale absorbs the local correction); ``r`` the
#: *source error*, how far the regression missed the pixel's two source observations
#: when each was predicted from its own neighbours (a pixel whose dates do not follow
#: each other, a field that is ploughed, mown or flooded, is hard to fill); ``m`` the
#: fill's reflectance (errors grow with brightness). All are band means. Fitted by
#: ``benchmarks/calibration.py`` on simulated clouds over *training* dates of the L1C
#: series and the Hungary L2A cube only (with the guard, which keeps the networks close
#: to their base, the departure weight barely changes the ranking).
ERROR_SCALE = {"regression": 1.83, "local": 1.70, "hybrid": 1.69}
DEPARTURE_WEIGHT = 0.5
ERROR_EXPONENTS = (0.47, 0.04, 0.49)
#: Attributes of every ``quality`` variable.
QUALITY_ATTRS = {
    "long_name": "reconstruction quality",
    "units": "1",
    "description": (
        "1: clear observation; filled pixels, regression, local and hybrid: "
        "1/(1 + expected_error/0.01), expected_error the calibrated expected absolute "
        "error (band mean, reflectance); median, nearest, interpolate: 1/(1 + gap_days/30), "
        "gap_days to the nearest clear observation; filled from the same date's "
        "surroundings (no other date clear, fill_source 2): 1/(1 + expected_error/0.01) with "
        "the error of the scale used; 0: nothing to fill from (the input is kept, or NaN "
        "with fallback='nan'); NaN: no data"
    ),
}
#: Attributes of the ``expected_error`` variable (regression, local and hybrid).
ERROR_ATTRS = {
    "long_name": "expected absolute error",
    "units": "1",
    "description": (
        "calibrated expected absolute error of the reflectance, mean over bands: 0 for a "
        "clear observation, NaN where there is no data or nothing to fill from"
    ),
}
# The source error of a pixel whose sources have no neighbours of their own: about the
# mean absolute error of the regression fill on the held-out cases of the calibration
# (0.005-0.012).
_TYPICAL_SOURCE_ERROR = 0.01
# Smallest error term (reflectance) the power law of expected_error is evaluated at.
_FLOOR = 1e-4
#: The ``"local"`` fill's Gaussian (px), its shrinkage (the share of a fully clear
#: neighbourhood below which the correction fades) and its outlier cut (band-mean
#: residuals beyond it, reflectance, are not spread). Chosen on simulated clouds over
#: training dates only, with the reference and the own mask (``out/diag/local_dev.py``,
#: stop 24): sigma 2-4 px gains most with the reference mask, 8 with the own mask,
#: whose missed cloud rims the cut keeps out (without it, Sweden lost 0.8 dB).
LOCAL_SIGMA = 8.0
LOCAL_SHRINK = 0.05
LOCAL_OUTLIER = 0.02
#: Context the ``"local"`` fill reads around a block: the Gaussian's radius.
LOCAL_HALO = radius(LOCAL_SIGMA)
# Fewer common clear pixels than this and a date pair's fit is not trusted.
_MIN_FIT_PIXELS = 64
# Prior sd of a pair's gain around 1, and its precision. Chosen on training dates only
# (out/diag/se_dev.py: simulated clouds over training targets, with the targets' clear
# pixels cut to a disc of 150, 600 or 2500 px): 0.03 had the best mean of 0.1, 0.05,
# 0.03 and 0.01 (+0.33 dB; L1C with 150 px +1.9 dB, Sweden with 2500 px -0.16 dB).
_GAIN_PRIOR_SD = 0.03
_GAIN_PRIOR = 1.0 / _GAIN_PRIOR_SD**2


def _days(times: np.ndarray) -> np.ndarray:
    return (times.astype("datetime64[s]").astype(np.int64) / 86400.0).astype(np.float64)


def _neighbours(valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the last valid date at or before, and the first at or after, each date.

    ``-1`` and ``T`` mark 'none'. ``valid`` is (T, Y, X).
    """
    t = valid.shape[0]
    idx = np.arange(t).reshape(-1, 1, 1)
    prev = np.maximum.accumulate(np.where(valid, idx, -1), axis=0)
    nxt = np.minimum.accumulate(np.where(valid, idx, t)[::-1], axis=0)[::-1]
    return prev, nxt


def _strict_neighbours(valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`_neighbours` but excluding the date itself."""
    prev, nxt = _neighbours(valid)
    t = valid.shape[0]
    fill_prev = np.full((1, *valid.shape[1:]), -1, dtype=prev.dtype)
    fill_next = np.full((1, *valid.shape[1:]), t, dtype=nxt.dtype)
    return (
        np.concatenate([fill_prev, prev[:-1]], axis=0),
        np.concatenate([nxt[1:], fill_next], axis=0),
    )


def _gap_days(days: np.ndarray, prev: np.ndarray, nxt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = days.shape[0]
    here = days.reshape(-1, 1, 1)
    d_prev = np.where(prev >= 0, here - days[np.clip(prev, 0, t - 1)], np.inf)
    d_next = np.where(nxt < t, days[np.clip(nxt, 0, t - 1)] - here, np.inf)
    return d_prev, d_next


def _fill_median(data, valid, days):
    # Sorting with +inf for the unusable observations is several times faster than
    # np.nanmedian; the median then sits at the middle of the n usable values.
    clear = np.sort(np.where(valid[:, None], data, np.inf), axis=0)
    n = valid.sum(axis=0)[None, None]
    lo = np.take_along_axis(clear, np.maximum((n - 1) // 2, 0), axis=0)[0]
    hi = np.take_along_axis(clear, n // 2, axis=0)[0]
    med = np.where(n[0] > 0, 0.5 * (lo + hi), np.nan).astype(np.float32)
    prev, nxt = _strict_neighbours(valid)
    d_prev, d_next = _gap_days(days, prev, nxt)
    return np.broadcast_to(med, data.shape), np.minimum(d_prev, d_next)


def _fill_nearest(data, valid, days):
    prev, nxt = _strict_neighbours(valid)
    d_prev, d_next = _gap_days(days, prev, nxt)
    use_prev = d_prev <= d_next
    source = np.where(use_prev, prev, nxt)
    return take_per_pixel(data, source), np.minimum(d_prev, d_next)


def _fill_interpolate(data, valid, days):
    prev, nxt = _strict_neighbours(valid)
    d_prev, d_next = _gap_days(days, prev, nxt)
    x_prev = take_per_pixel(data, prev)
    x_next = take_per_pixel(data, nxt)
    both = np.isfinite(d_prev) & np.isfinite(d_next)
    with np.errstate(invalid="ignore", divide="ignore"):
        w_next = np.where(both, d_prev / (d_prev + d_next), np.where(np.isfinite(d_next), 1.0, 0.0))
    w_next = w_next[:, None].astype(np.float32)
    out = np.where(
        w_next == 0, x_prev, np.where(w_next == 1, x_next, (1 - w_next) * x_prev + w_next * x_next)
    )
    return out, np.minimum(d_prev, d_next)


# ---------------------------------------------------------------- regression


def _pair_stats(data: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Sufficient statistics of ``x_t ~ x_s`` for every date pair and band.

    Returns (T, T, B, 6) float64 indexed ``[t, s, band]``: n, sum x_s, sum x_t,
    sum x_s^2, sum x_s x_t, sum x_t^2 over the pixels valid at both t and s.
    Sums of sums are sums, so chunks can be reduced independently and added.
    """
    t, b = data.shape[:2]
    m = valid.reshape(t, -1).astype(np.float64)
    out = np.empty((t, t, b, 6), dtype=np.float64)
    out[..., 0] = (m @ m.T)[..., None]
    for k in range(b):
        # Zero where invalid, so each product below only counts common clear pixels.
        x = np.where(valid, data[:, k], 0.0).reshape(t, -1).astype(np.float64)
        x2 = x * x
        out[:, :, k, 1] = m @ x.T
        out[:, :, k, 2] = x @ m.T
        out[:, :, k, 3] = m @ x2.T
        out[:, :, k, 4] = x @ x.T
        out[:, :, k, 5] = x2 @ m.T
    return out


def _fit(stats: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gain, offset, weighting variance and error variance of ``x_t = a + g x_s``.

    The weighting variance is what the fill weighs a source by; the error variance
    is the best guess of the fill's real error: where a pair has no fit (a target
    with too few clear pixels in common) it is that of a typical fitted pair of the
    band, not the arbitrary 1.0 that merely weighs the pair down.
    """
    n, sx, sy, sxx, sxy, syy = np.moveaxis(stats, -1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx, my = sx / n, sy / n
        vx = sxx / n - mx**2
        cxy = sxy / n - mx * my
        vy = syy / n - my**2
        least_squares = cxy / vx
        # The least-squares gain, drawn toward 1 by its own uncertainty (a normal prior
        # of sd _GAIN_PRIOR_SD): a fit on a few pixels that barely vary, a dark strip
        # left clear on an overcast date, has gains anywhere from 0 to 2 and filled
        # Sweden 2021-08-06 as a flat dark image; thousands of varied pixels keep theirs.
        se2 = np.maximum(vy - least_squares * cxy, 1e-8) / (n * vx)
        gain = (least_squares / se2 + _GAIN_PRIOR) / (1.0 / se2 + _GAIN_PRIOR)
        # The offset keeps the line through the common pixels' means.
        offset = my - gain * mx
        resid = vy - 2 * gain * cxy + gain**2 * vx
    ok = (n >= _MIN_FIT_PIXELS) & (vx > 1e-10) & np.isfinite(gain)
    # Without a trustworthy fit the pair falls back to the identity map with the
    # variance of a plain copy, so it still fills but is weighted down.
    gain = np.where(ok, gain, 1.0)
    offset = np.where(ok, offset, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        copy_var = (syy - 2 * sxy + sxx) / n
    measured = np.isfinite(copy_var) & (copy_var > 0)
    fallback_var = np.where(measured, copy_var, 1.0)
    fitted = np.maximum(resid, 1e-8)
    var = np.where(ok, fitted, fallback_var)
    typical = np.array(
        [np.median(fitted[..., k][ok[..., k]]) if ok[..., k].any() else 1.0
         for k in range(ok.shape[-1])]
    )  # fmt: skip
    error_var = np.where(ok, fitted, np.where(measured, copy_var, typical))
    return gain, offset, var, error_var


def pair_maps(stats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gain and offset ``(T, T, B)`` float32 that map date ``s`` into date ``t``'s radiometry.

    ``x_t ~ offset[t, s] + gain[t, s] * x_s``: the regression's scene-wide pair fits
    (:func:`_fit`, identity where a pair has none) from :func:`_pair_stats` sums.

    Examples
    --------
    >>> data = np.stack([np.linspace(0.1, 0.3, 100), np.linspace(0.2, 0.4, 100)])
    >>> data = data.reshape(2, 1, 10, 10).astype(np.float32)  # date 1 is date 0 + 0.1
    >>> gain, offset = pair_maps(_pair_stats(data, np.ones((2, 10, 10), bool)))
    >>> round(float(gain[1, 0, 0]), 3), round(float(offset[1, 0, 0]), 3)
    (1.0, 0.1)
    """
    gain, offset = _fit(stats)[:2]
    return gain.astype(np.float32), offset.astype(np.float32)


def _apply_regression(data, valid, days, stats):
    """The regression fill, the gap to the nearest source, its variance and source error.

    The variance of each band is the fits' (the error variance of the sources'
    scene-wide fits, see :func:`_fit`, combined like the predictions) plus the
    weighted spread of the two sources' predictions around their mean: two neighbours
    that disagree say the pixel changed, and that the fill is unsure. Returned as the
    mean over bands.

    The source error is the mean, over the pixel's two sources, of the absolute error
    (band mean) of the regression at that source itself: at a clear pixel the fill is
    its prediction from *its* nearest clear dates, so every clear observation says how
    well its neighbours predict it. Where neither source has one, a typical value
    (:data:`_TYPICAL_SOURCE_ERROR`).
    """
    # [target, source, band]
    gain, offset, var, error_var = (a.astype(np.float32) for a in _fit(stats))
    prev, nxt = _strict_neighbours(valid)
    d_prev, d_next = _gap_days(days, prev, nxt)
    t = data.shape[0]
    tgt = np.arange(t).reshape(-1, 1, 1)
    # The (target, source) pair of every pixel as one flat index into the (T, T) tables:
    # np.take on a small table is several times faster than indexing it with two arrays.
    pair_prev = (tgt * t + np.clip(prev, 0, t - 1)).astype(np.intp)
    pair_next = (tgt * t + np.clip(nxt, 0, t - 1)).astype(np.intp)
    has_prev, has_next = np.isfinite(d_prev), np.isfinite(d_next)
    out = np.empty(data.shape, dtype=np.float32)
    spread = np.zeros((t, *data.shape[2:]), dtype=np.float32)
    missed = np.zeros((t, *data.shape[2:]), dtype=np.float32)
    for k in range(data.shape[1]):  # per band keeps the temporaries (T, Y, X)
        g, a, v, e = (np.ascontiguousarray(c[..., k]).reshape(-1)
                      for c in (gain, offset, var, error_var))  # fmt: skip
        band = data[:, k : k + 1]
        x_prev, x_next = take_per_pixel(band, prev)[:, 0], take_per_pixel(band, nxt)[:, 0]
        w_prev = np.where(has_prev, 1.0 / np.take(v, pair_prev), 0.0)
        w_next = np.where(has_next, 1.0 / np.take(v, pair_next), 0.0)
        p_prev = np.take(a, pair_prev) + np.take(g, pair_prev) * np.nan_to_num(x_prev)
        p_next = np.take(a, pair_next) + np.take(g, pair_next) * np.nan_to_num(x_next)
        # +-inf input (kept in its pixel, see the engine) overflows here harmlessly.
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            w = w_prev + w_next
            out[:, k] = (w_prev * p_prev + w_next * p_next) / w
            # The weighted mean's variance, and the sources' spread around it.
            e_prev = np.where(has_prev, np.take(e, pair_prev), 0.0)
            e_next = np.where(has_next, np.take(e, pair_next), 0.0)
            spread += (
                w_prev**2 * e_prev + w_next**2 * e_next + w_prev * w_next * (p_prev - p_next) ** 2
            ) / w**2
            missed += np.abs(out[:, k] - data[:, k])
    spread /= data.shape[1]
    missed /= data.shape[1]
    return out, np.minimum(d_prev, d_next), spread, _source_error(missed, valid, prev, nxt)


def _source_error(missed, valid, prev, nxt):
    """Mean over a pixel's two sources of the regression's own error at them (see above)."""
    own = np.where(valid & np.isfinite(missed), missed, np.nan)[:, None]
    with np.errstate(invalid="ignore"):
        at_prev = take_per_pixel(own, prev)[:, 0]
        at_next = take_per_pixel(own, nxt)[:, 0]
        at_prev[prev < 0] = np.nan
        at_next[nxt < 0] = np.nan
        both = np.stack([at_prev, at_next])
        seen = np.isfinite(both)
        err = np.where(seen, both, 0).sum(0) / seen.sum(0)
    # A fixed value, not a statistic of the block, so chunks cannot change it.
    return np.where(np.isfinite(err), err, _TYPICAL_SOURCE_ERROR).astype(np.float32)


def expected_error(
    method: str,
    spread: np.ndarray,
    departure: np.ndarray | None = None,
    source_error: np.ndarray | None = None,
    level: np.ndarray | None = None,
):
    """Calibrated expected absolute error of a fill (see :data:`ERROR_EXPONENTS`).

    ``spread`` is the regression's predictive variance (band mean), ``departure`` the
    band-mean squared difference between the method's fill and the regression's,
    ``source_error`` the regression's own error at the pixel's sources and ``level`` the
    fill's band-mean reflectance (both from :func:`_apply_regression`'s outputs).
    """
    a, b, c = ERROR_EXPONENTS
    v = spread if departure is None else spread + DEPARTURE_WEIGHT * departure
    err = ERROR_SCALE[method] * np.power(np.maximum(v, _FLOOR**2), a)
    if b:
        err = err * np.power(np.maximum(source_error, _FLOOR), b)
    if c:
        err = err * np.power(np.maximum(np.abs(level), _FLOOR), c)
    return err.astype(np.float32)


def quality_from_error(error: np.ndarray) -> np.ndarray:
    """``quality`` of a filled pixel: 1 / (1 + expected_error / QUALITY_HALF_ERROR)."""
    return (1.0 / (1.0 + error / QUALITY_HALF_ERROR)).astype(np.float32)


def error_from_quality(quality: xr.DataArray) -> xr.DataArray:
    """``expected_error`` back from ``quality``: 0 observed, NaN no data or no source."""
    err = (QUALITY_HALF_ERROR * (1.0 / quality.where(quality > 0) - 1.0)).astype(np.float32)
    return err.rename("expected_error").assign_attrs(ERROR_ATTRS)


_FILLERS: dict[str, Callable] = {
    "median": _fill_median,
    "nearest": _fill_nearest,
    "interpolate": _fill_interpolate,
}

#: Names of the classical methods accepted by :func:`fill` and :func:`xcloudfree.remove`.
BASELINES: tuple[str, ...] = ("median", "nearest", "interpolate", "regression", "local")
#: The methods whose fill is the regression's (and that report ``expected_error``).
REGRESSIONS: tuple[str, ...] = ("regression", "local")


def _finish(data, valid, cloud, filled, gap, error=None):
    """Keep clear and NaN pixels, use the fill elsewhere, and score the result.

    ``error`` (T, Y, X), the fill's expected error, sets the quality of filled pixels;
    without it the gap to the nearest clear observation does.
    """
    has_source = np.isfinite(gap)
    replace = (cloud & has_source)[:, None] & np.isfinite(filled) & np.isfinite(data)
    # In place: the fill is ours, and a second cube-sized array is what sets peak memory.
    out = filled.astype(np.float32, copy=False)
    if not out.flags.writeable:  # a broadcast fill (the median's)
        out = out.copy()
    np.copyto(out, data, where=~replace)
    score = (
        quality_from_error(np.nan_to_num(error, nan=np.inf))
        if error is not None
        else 1.0 / (1.0 + gap / QUALITY_HALF_LIFE_DAYS)
    )
    quality = np.where(valid, 1.0, np.where(cloud & has_source, score, 0.0)).astype(np.float32)
    quality = np.where(np.isnan(data).any(axis=1), np.float32(np.nan), quality)
    return out, quality


def _valid(data: np.ndarray, cloud: np.ndarray) -> np.ndarray:
    return ~cloud & np.isfinite(data).all(axis=1)


def local_correction(
    data: np.ndarray, valid: np.ndarray, cloud: np.ndarray, filled: np.ndarray
) -> np.ndarray:
    """Add to ``filled`` (in place, and return it) the smoothed residual of the clear pixels.

    ``data`` and ``filled`` are ``(T, B, Y, X)``, ``filled`` the regression's prediction at
    every pixel (from each pixel's neighbouring dates, so at a clear pixel it is a prediction
    like any other). Per date with cloud and band: ``G(r) / (G(n) + LOCAL_SHRINK)``,
    ``r`` the residual at the clear pixels whose band-mean residual is within
    ``LOCAL_OUTLIER``, ``n`` their indicator and ``G`` a Gaussian of ``LOCAL_SIGMA`` px
    (zero outside the block; a dask block carries :data:`LOCAL_HALO` px of context).
    Only the cloud's pixels are corrected (the fill is used nowhere else), so only the
    cloud's bounding box grown by that radius is smoothed.
    """
    for t in np.flatnonzero(cloud.any(axis=(1, 2))):
        win = around(cloud[t], LOCAL_HALO)
        with np.errstate(invalid="ignore"):
            resid = data[t][(slice(None), *win)] - filled[t][(slice(None), *win)]
            use = valid[t][win] & (np.abs(resid.mean(axis=0)) <= LOCAL_OUTLIER)
        if not use.any():
            continue
        support = smooth(use.astype(np.float32), LOCAL_SIGMA) + np.float32(LOCAL_SHRINK)
        for k in range(data.shape[1]):
            r = np.where(use, resid[k], np.float32(0)).astype(np.float32)
            filled[t, k][win] += smooth(r, LOCAL_SIGMA) / support
    return filled


def _fill_block(data, cloud, days, method, stats=None):
    valid = _valid(data, cloud)
    if method in REGRESSIONS:
        filled, gap, spread, source = _apply_regression(data, valid, days, stats)
        if method == "local":
            filled = local_correction(data, valid, cloud, filled)
        error = expected_error(method, spread, None, source, filled.mean(axis=1))
        return _finish(data, valid, cloud, filled, gap, error)
    filled, gap = _FILLERS[method](data, valid, days)
    return _finish(data, valid, cloud, filled, gap)


def _stats_block(data, cloud):
    return _pair_stats(data, _valid(data, cloud))[..., None, None]


def regression_stats(data: dsa.Array, cloud: dsa.Array) -> dsa.Array:
    """Pair statistics of the regression fill, summed over every chunk of a dask cube.

    ``data`` is ``(T, B, Y, X)`` with time and band in one chunk, ``cloud`` the
    ``(T, Y, X)`` bool mask chunked like it in space. Returns a lazy
    ``(T, T, B, 6)`` float64 array in one chunk (see :func:`_pair_stats`).
    """
    t = data.shape[0]
    partial = dsa.blockwise(
        _stats_block, "tsbkyx", data, "tbyx", cloud, "tyx",
        new_axes={"s": t, "k": 6}, adjust_chunks={"y": 1, "x": 1}, dtype=np.float64,
    )  # fmt: skip
    return partial.sum(axis=(4, 5))


def fill(
    data: xr.DataArray, cloud: xr.DataArray, method: str = "regression"
) -> tuple[xr.DataArray, xr.DataArray]:
    """Fill the cloudy pixels of a cube with a classical method.

    Parameters
    ----------
    data
        A validated cube ``(time, band, y, x)`` (see :func:`xcloudfree.as_cube`).
    cloud
        Boolean ``(time, y, x)`` mask, True where the pixel is cloudy.
    method
        One of :data:`BASELINES`.

    Returns
    -------
    reflectance, quality : xarray.DataArray
        The filled cube (float32, same coords) and ``quality`` (time, y, x): 1 for a
        clear observation; for a filled pixel ``1 / (1 + expected_error / 0.01)``
        with ``"regression"`` and ``"local"`` (the calibrated expected absolute error, see
        :func:`expected_error`), ``1 / (1 + gap_days / 30)`` with the other methods
        (``gap_days`` to the nearest clear observation); 0 where no clear
        observation exists (the input value is kept), NaN where the input is NaN.

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> x = xr.DataArray(np.array([0.1, 0.5, 0.3], "f4").reshape(3, 1, 1, 1),
    ...     dims=("time", "band", "y", "x"),
    ...     coords={"time": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-04"])})
    >>> cloudy = xr.DataArray(np.array([False, True, False]).reshape(3, 1, 1),
    ...                       dims=("time", "y", "x"))
    >>> out, q = fill(x, cloudy, "interpolate")
    >>> [round(float(v), 4) for v in out.values.ravel()]
    [0.1, 0.1667, 0.3]
    """
    if method not in BASELINES:
        raise OptionError(f"unknown baseline {method!r}: choose one of {BASELINES}")
    cloud = cloud.transpose("time", "y", "x").astype(bool)
    days = _days(data["time"].values)
    quality_coords = {k: v for k, v in data.coords.items() if "band" not in v.dims}
    if data.chunks is None:
        arr = data.values
        cl = np.asarray(cloud.values)
        stats = _pair_stats(arr, _valid(arr, cl)) if method in REGRESSIONS else None
        out, quality = _fill_block(arr, cl, days, method, stats)
    else:
        arr = data.data.rechunk({0: -1, 1: -1})
        cl = dsa.asarray(cloud.data).rechunk((-1, arr.chunks[2], arr.chunks[3]))
        b = arr.shape[1]
        extra: tuple = ()
        if method in REGRESSIONS:
            # indices absent from the output: the whole (small) array goes to every task
            extra = (regression_stats(arr, cl), "qrsu")
        depth = {}
        if method == "local":
            depth = overlap_depth(arr.shape, LOCAL_HALO)
            arr = dsa.overlap.overlap(arr, depth=depth, boundary="none")
            cl = dsa.overlap.overlap(cl, depth=overlap_depth(cl.shape, LOCAL_HALO), boundary="none")
        both = dsa.blockwise(
            _both_block, "tbyx", arr, "tbyx", cl, "tyx", *extra,
            adjust_chunks={"b": b + 1}, concatenate=True, dtype=np.float32,
            days=days, method=method,
        )  # fmt: skip
        if depth:
            both = dsa.overlap.trim_internal(both, depth, boundary="none")
        out = both[:, :b]
        quality = both[:, b]
    reflectance = data.copy(data=out)
    quality_da = xr.DataArray(
        quality,
        dims=("time", "y", "x"),
        coords=quality_coords,
        name="quality",
        attrs=QUALITY_ATTRS,
    )
    return reflectance, quality_da


def _both_block(data, cloud, stats=None, *, days, method):
    # One task yields both outputs (quality as an extra band) so the fill runs once.
    out, quality = _fill_block(data, cloud, days, method, stats)
    return np.concatenate([out, quality[:, None]], axis=1)
