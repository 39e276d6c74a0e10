"""Image-quality, temporal and mask metrics for cloud-removal results.

Every function takes and returns :class:`xarray.DataArray` objects. Inputs are
typically cubes with dims ``("time", "band", "y", "x")`` (see
:mod:`xcloudfree.cube`), but any dims work as long as the metric's own needs are
met (``y`` and ``x`` for SSIM, ``band`` for SAM, ``time`` for temporal
consistency).

Conventions shared by the image metrics (:func:`mse`, :func:`mae`, :func:`rmse`,
:func:`psnr`, :func:`ssim`, :func:`sam`):

``prediction, reference``
    Same dims (any order; ``reference`` is transposed to ``prediction``'s order),
    same sizes and identical index coordinates.
``mask``
    Optional boolean DataArray whose dims are a subset of the inputs' dims (e.g.
    ``(time, y, x)`` for a cube): only elements where it is ``True`` count, e.g.
    a cloud mask to score the reconstruction under clouds only.
``dims``
    Dims to reduce over. ``None`` (default) reduces over all of them and gives a
    scalar; ``("time", "band")`` gives a per-pixel ``(y, x)`` map;
    ``("band", "y", "x")`` gives one value per date. Coordinates of the dims that
    are kept are carried through.
NaN
    A NaN in either input removes that element from every sum and count (it is
    never counted as zero). A reduction with no valid element gives NaN.
Dask
    Dask-backed inputs give lazy, dask-backed results; nothing is computed here.

All sums are accumulated in float64, and results are float64.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Literal

import numpy as np
import xarray as xr
from scipy.ndimage import uniform_filter

from .errors import CubeError, DimensionError, DTypeError

__all__ = [
    "f1",
    "mae",
    "mse",
    "precision",
    "psnr",
    "recall",
    "rmse",
    "sam",
    "ssim",
    "summary",
    "temporal_consistency",
]

Dims = str | Iterable[Hashable] | None

# SSIM constants of Wang et al. (2004), as in skimage.metrics.structural_similarity.
_K1 = 0.01
_K2 = 0.03
_SPATIAL = ("y", "x")


# --------------------------------------------------------------------------- checks


def _check_dataarray(obj: object, name: str) -> xr.DataArray:
    if not isinstance(obj, xr.DataArray):
        raise DimensionError(
            f"{name} must be an xarray.DataArray, got {type(obj).__name__}: wrap it, e.g. "
            f"xr.DataArray({name}, dims=('y', 'x'))"
        )
    return obj


def _check_real(obj: xr.DataArray, name: str) -> None:
    dtype = obj.dtype
    # Only integers (e.g. DN) and floats; bool, complex, datetime and object are refused.
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise DTypeError(
            f"{name} has dtype {dtype}; metrics need real numbers: pass reflectance, e.g. "
            f"{name}.astype('float32')"
        )


def _check_same_grid(a: xr.DataArray, b: xr.DataArray, name_a: str, name_b: str) -> xr.DataArray:
    """Check that ``b`` has ``a``'s dims, sizes and index coords; return it in ``a``'s order."""
    if set(a.dims) != set(b.dims):
        raise DimensionError(
            f"{name_a} has dims {a.dims} but {name_b} has dims {b.dims}: give both the same "
            f"dims, e.g. select one date with .isel(time=0) or add one with "
            f".expand_dims(time=...)"
        )
    bad = {d: (a.sizes[d], b.sizes[d]) for d in a.dims if a.sizes[d] != b.sizes[d]}
    if bad:
        detail = ", ".join(f"{d}: {sa} vs {sb}" for d, (sa, sb) in bad.items())
        if set(bad) <= {"band"}:
            fix = f"select the same bands in both, e.g. {name_b}.sel(band={name_a}.band)"
        elif set(bad) <= {"time"}:
            fix = f"select the same dates in both, e.g. {name_b}.sel(time={name_a}.time)"
        else:
            fix = (
                "crop or resample them to the same grid first, e.g. "
                f"{name_b}.sel(x={name_a}.x, y={name_a}.y, method='nearest')"
            )
        raise DimensionError(f"{name_a} and {name_b} differ in size ({detail}): {fix}")
    b = b.transpose(*a.dims)
    try:
        # join="exact" refuses silently dropping mismatched labels (xarray's default
        # inner join would score only the overlap and hide the mistake).
        xr.align(a, b, join="exact", copy=False)
    except ValueError:
        differ = [
            d
            for d in a.dims
            if d in a.indexes and d in b.indexes and not a.indexes[d].equals(b.indexes[d])
        ]
        raise CubeError(
            f"{name_a} and {name_b} have different coordinate labels along {differ}: they "
            f"must describe the same dates/pixels. If they do, copy the labels, e.g. "
            f"{name_b} = {name_b}.assign_coords({differ[0] if differ else 'x'}="
            f"{name_a}.{differ[0] if differ else 'x'})"
        ) from None
    return b


def _check_mask(mask: object, like: xr.DataArray, name: str = "mask") -> xr.DataArray:
    mask = _check_dataarray(mask, name)
    extra = [d for d in mask.dims if d not in like.dims]
    if extra:
        raise DimensionError(
            f"{name} has dims {mask.dims}, but {extra} are not dims of the data "
            f"{like.dims}: reduce them first, e.g. {name}.any({extra[0]!r})"
        )
    bad = {d: (mask.sizes[d], like.sizes[d]) for d in mask.dims if mask.sizes[d] != like.sizes[d]}
    if bad:
        detail = ", ".join(f"{d}: {sm} vs {sl}" for d, (sm, sl) in bad.items())
        raise DimensionError(f"{name} and the data differ in size ({detail}): use a {name} "
                             "computed on the same grid")  # fmt: skip
    if mask.dtype != bool:
        if not np.issubdtype(mask.dtype, np.integer):
            raise DTypeError(
                f"{name} has dtype {mask.dtype}, expected bool: threshold it, e.g. "
                f"{name} > 0.5 (NaN in a float {name} is ambiguous)"
            )
        mask = mask != 0
    try:
        xr.align(like, mask, join="exact", copy=False)
    except ValueError:
        raise CubeError(
            f"{name} and the data have different coordinate labels: build the {name} on the "
            f"same grid and dates, or copy the labels with {name}.assign_coords(...)"
        ) from None
    return mask


def _check_dims(dims: Dims, available: Iterable[Hashable], func: str) -> tuple[Hashable, ...]:
    available = tuple(available)
    if dims is None:
        return available
    if isinstance(dims, str):
        dims = (dims,)
    dims = tuple(dims)
    unknown = [d for d in dims if d not in available]
    if unknown:
        raise DimensionError(
            f"{func}: cannot reduce over {unknown}, the data has dims {available}: pass "
            f"dims= from these, e.g. dims={available!r} for a single value"
        )
    return dims


def _prepare(
    prediction: object,
    reference: object,
    mask: object | None,
) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray | None]:
    prediction = _check_dataarray(prediction, "prediction")
    reference = _check_dataarray(reference, "reference")
    _check_real(prediction, "prediction")
    _check_real(reference, "reference")
    reference = _check_same_grid(prediction, reference, "prediction", "reference")
    if mask is not None:
        mask = _check_mask(mask, prediction)
    return prediction, reference, mask


# --------------------------------------------------------------------------- helpers


def _nanmean(x: xr.DataArray, dims: tuple[Hashable, ...]) -> xr.DataArray:
    """Mean over ``dims`` skipping NaN; NaN (and no warning) where nothing is valid."""
    if not dims:
        return x
    total = x.sum(dims, skipna=True)
    count = x.count(dims)
    # Dividing by NaN rather than 0 gives NaN without a RuntimeWarning, also under dask.
    return total / count.where(count > 0)


def _f64(x: xr.DataArray) -> xr.DataArray:
    return x.astype(np.float64)


def _named(x: xr.DataArray, name: str, long_name: str, units: str | None = None) -> xr.DataArray:
    x = x.rename(name)
    x.attrs = {"long_name": long_name}
    if units:
        x.attrs["units"] = units
    return x


def _diff(
    prediction: xr.DataArray, reference: xr.DataArray, mask: xr.DataArray | None
) -> xr.DataArray:
    """``prediction - reference`` in float64, NaN outside the mask."""
    diff = _f64(prediction) - _f64(reference)
    return diff if mask is None else diff.where(mask)


# --------------------------------------------------------------------------- pixel metrics


def mse(
    prediction: xr.DataArray,
    reference: xr.DataArray,
    *,
    mask: xr.DataArray | None = None,
    dims: Dims = None,
) -> xr.DataArray:
    """Mean squared error.

    Parameters
    ----------
    prediction, reference
        Arrays with the same dims, sizes and coordinate labels.
    mask
        Optional boolean array (dims a subset of the inputs'); only ``True``
        elements count.
    dims
        Dims to reduce over; ``None`` reduces over all of them.

    Returns
    -------
    xarray.DataArray
        ``mean((prediction - reference)**2)`` over ``dims`` (float64), NaN where no
        element is valid.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> a = xr.DataArray(np.array([[0.1, 0.2], [0.3, np.nan]]), dims=("y", "x"))
    >>> round(float(mse(a + 0.1, a)), 6)  # the NaN pixel is skipped, not counted as 0
    0.01
    """
    prediction, reference, mask = _prepare(prediction, reference, mask)
    dims = _check_dims(dims, prediction.dims, "mse")
    out = _nanmean(_diff(prediction, reference, mask) ** 2, dims)
    return _named(out, "mse", "mean squared error")


def mae(
    prediction: xr.DataArray,
    reference: xr.DataArray,
    *,
    mask: xr.DataArray | None = None,
    dims: Dims = None,
) -> xr.DataArray:
    """Mean absolute error.

    Parameters and NaN/mask rules as in :func:`mse`.

    Returns
    -------
    xarray.DataArray
        ``mean(|prediction - reference|)`` over ``dims`` (float64).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> a = xr.DataArray(np.zeros((2, 3)), dims=("y", "x"))
    >>> b = a.copy(data=[[0.1, 0.1, 0.1], [0.3, 0.3, 0.3]])
    >>> mae(b, a, dims="x").round(3).values.tolist()
    [0.1, 0.3]
    """
    prediction, reference, mask = _prepare(prediction, reference, mask)
    dims = _check_dims(dims, prediction.dims, "mae")
    out = _nanmean(abs(_diff(prediction, reference, mask)), dims)
    return _named(out, "mae", "mean absolute error")


def rmse(
    prediction: xr.DataArray,
    reference: xr.DataArray,
    *,
    mask: xr.DataArray | None = None,
    dims: Dims = None,
) -> xr.DataArray:
    """Root mean squared error, ``sqrt(mse)``.

    Parameters and NaN/mask rules as in :func:`mse`.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> a = xr.DataArray(np.zeros((4, 4)), dims=("y", "x"))
    >>> float(rmse(a + 0.5, a))
    0.5
    """
    out = np.sqrt(mse(prediction, reference, mask=mask, dims=dims))
    return _named(out, "rmse", "root mean squared error")


def psnr(
    prediction: xr.DataArray,
    reference: xr.DataArray,
    *,
    mask: xr.DataArray | None = None,
    dims: Dims = None,
    data_range: float = 1.0,
) -> xr.DataArray:
    """Peak signal-to-noise ratio in dB.

    ``10 * log10(data_range**2 / mse)`` with the MSE pooled over ``dims``, as
    :func:`skimage.metrics.peak_signal_noise_ratio` does over a whole image.

    Parameters
    ----------
    prediction, reference, mask, dims
        As in :func:`mse`.
    data_range
        The value range of the data: 1 for 0-1 reflectance.

    Returns
    -------
    xarray.DataArray
        PSNR in dB (float64); ``inf`` where the MSE is 0, NaN where no element is
        valid.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> a = xr.DataArray(np.zeros((4, 4)), dims=("y", "x"))
    >>> float(psnr(a + 0.1, a))  # mse = 0.01
    20.0
    """
    err = mse(prediction, reference, mask=mask, dims=dims)
    # Mask the zeros before dividing so identical images give inf without a
    # divide-by-zero warning, also when the warning would surface at dask compute time.
    out = 10.0 * np.log10(data_range**2 / err.where(err > 0))
    out = out.where(err != 0, np.inf)
    return _named(out, "psnr", "peak signal-to-noise ratio", "dB")


# --------------------------------------------------------------------------- SSIM


def _local_ssim_numpy(
    a: np.ndarray, b: np.ndarray, *, win_size: int, data_range: float
) -> np.ndarray:
    """Local SSIM map over the last two axes, skimage's recipe plus NaN handling.

    Without NaN this is exactly ``skimage.metrics.structural_similarity(...,
    full=True)[1]``: uniform ``win_size`` window, ``reflect`` boundary, sample
    covariance. With NaN, window statistics use the valid pixels only (n of them,
    sample covariance ``n / (n - 1)``), and the map is NaN where the centre pixel
    is invalid or fewer than 2 pixels of its window are valid.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    size = (1,) * (a.ndim - 2) + (win_size, win_size)
    npix = win_size * win_size

    def filt(x: np.ndarray) -> np.ndarray:
        return uniform_filter(x, size=size, mode="reflect")

    valid = np.isfinite(a) & np.isfinite(b)
    all_valid = bool(valid.all())
    if not all_valid:
        a = np.where(valid, a, 0.0)
        b = np.where(valid, b, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        if all_valid:
            frac = 1.0
            cov_norm = npix / (npix - 1.0)
        else:
            # Fraction of valid pixels per window; dividing the filtered sums by it
            # turns them into means over the valid pixels only.
            frac = filt(valid.astype(np.float64))
            n = frac * npix
            cov_norm = n / (n - 1.0)
        ux = filt(a) / frac
        uy = filt(b) / frac
        uxx = filt(a * a) / frac
        uyy = filt(b * b) / frac
        uxy = filt(a * b) / frac
        vx = cov_norm * (uxx - ux * ux)
        vy = cov_norm * (uyy - uy * uy)
        vxy = cov_norm * (uxy - ux * uy)
        c1 = (_K1 * data_range) ** 2
        c2 = (_K2 * data_range) ** 2
        s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    if not all_valid:
        # n >= 1.5 rather than 2: the filtered fraction carries round-off.
        s = np.where(valid & (n >= 1.5), s, np.nan)
    return s


def _local_ssim(
    prediction: xr.DataArray, reference: xr.DataArray, *, win_size: int, data_range: float
) -> xr.DataArray:
    """Local SSIM map as a DataArray with ``prediction``'s dims (y, x moved last)."""
    for d in _SPATIAL:
        if d not in prediction.dims:
            raise DimensionError(
                f"ssim needs 'y' and 'x' dims, the data has {prediction.dims}: rename the "
                "spatial dims, e.g. .rename(lat='y', lon='x')"
            )
        if prediction.sizes[d] < win_size:
            raise DimensionError(
                f"ssim needs at least {win_size} pixels along {d!r} (the window size), the "
                f"data has {prediction.sizes[d]}: use a larger area or a smaller win_size"
            )
    if win_size < 1 or win_size % 2 != 1:
        raise ValueError(f"win_size must be an odd positive integer, got {win_size}")
    order = [d for d in prediction.dims if d not in _SPATIAL] + list(_SPATIAL)
    p = prediction.transpose(*order)
    r = reference.transpose(*order)
    pa, ra = p.data, r.data
    kwargs = {"win_size": win_size, "data_range": float(data_range)}
    if _is_dask(pa) or _is_dask(ra):
        import dask.array as da

        pa, ra = da.asarray(pa), da.asarray(ra)
        nd = pa.ndim
        pad = (win_size - 1) // 2
        # Overlap only along y and x; the "reflect" boundary of dask repeats the edge
        # pixel like scipy's "reflect", so chunked and unchunked maps agree exactly.
        depth = {i: (pad if i >= nd - 2 else 0) for i in range(nd)}
        boundary = {i: ("reflect" if i >= nd - 2 else "none") for i in range(nd)}
        data = da.map_overlap(
            _local_ssim_numpy,
            pa,
            ra,
            depth=depth,
            boundary=boundary,
            dtype=np.float64,
            meta=np.array((), dtype=np.float64),
            **kwargs,
        )
    else:
        data = _local_ssim_numpy(pa, ra, **kwargs)
    return xr.DataArray(data, dims=p.dims, coords=p.coords)


def _is_dask(data: object) -> bool:
    return type(data).__module__.startswith("dask")


def _reduce_ssim_map(
    smap: xr.DataArray,
    mask: xr.DataArray | None,
    dims: tuple[Hashable, ...],
    win_size: int,
) -> xr.DataArray:
    """Average a local SSIM map like skimage: crop the border, then mean.

    The border strip of ``(win_size - 1) // 2`` pixels is dropped along each
    reduced spatial dim; the map is averaged over the reduced spatial dims first
    (one mean per 2-D slice, as skimage does), then over the other reduced dims.
    """
    if mask is not None:
        smap = smap.where(mask)
    pad = (win_size - 1) // 2
    spatial = tuple(d for d in dims if d in _SPATIAL)
    other = tuple(d for d in dims if d not in _SPATIAL)
    if pad:
        smap = smap.isel({d: slice(pad, smap.sizes[d] - pad) for d in spatial})
    return _nanmean(_nanmean(smap, spatial), other)


def ssim(
    prediction: xr.DataArray,
    reference: xr.DataArray,
    *,
    mask: xr.DataArray | None = None,
    dims: Dims = None,
    data_range: float = 1.0,
    win_size: int = 7,
) -> xr.DataArray:
    """Structural similarity index (SSIM), computed per 2-D ``(y, x)`` slice.

    The local SSIM map of every ``(y, x)`` slice follows
    :func:`skimage.metrics.structural_similarity` with its defaults
    (``gaussian_weights=False``): a uniform ``win_size`` x ``win_size`` window,
    K1 = 0.01, K2 = 0.03, sample covariance (``N / (N - 1)``) and a ``reflect``
    boundary. It is then averaged:

    * over the reduced spatial dims, dropping the border strip of
      ``(win_size - 1) // 2`` pixels along each of them as skimage does, so a
      single 2-D slice gives exactly skimage's value;
    * then over the other reduced dims (mean of the per-slice means).

    With ``dims`` that keep ``y`` and ``x`` (e.g. ``("time", "band")``) the result
    is the per-pixel map of local SSIM averaged over the other dims; it keeps the
    border pixels (computed with the ``reflect`` boundary), so its mean differs
    slightly from the scalar SSIM.

    Parameters
    ----------
    prediction, reference
        Arrays with ``y`` and ``x`` dims (at least ``win_size`` pixels each), the
        same dims, sizes and coordinate labels.
    mask
        Optional boolean array: only SSIM-map pixels whose window *centre* is
        ``True`` are averaged (the windows still see the surrounding pixels).
    dims
        Dims to reduce over; ``None`` reduces over all of them.
    data_range
        The value range of the data: 1 for 0-1 reflectance.
    win_size
        Odd side length of the window.

    Returns
    -------
    xarray.DataArray
        Mean SSIM (float64, at most 1).

    Notes
    -----
    NaN: the window statistics use only the window's valid pixels (``n`` of them,
    covariance scaled by ``n / (n - 1)``); the map is NaN, and so skipped, where
    the centre pixel is NaN in either input. Without NaN this equals skimage.
    Dask input is processed chunk by chunk with a ``(win_size - 1) // 2`` pixel
    overlap and gives the same values as numpy input.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> a = xr.DataArray(rng.random((16, 16)), dims=("y", "x"))
    >>> float(ssim(a, a))
    1.0
    >>> 0 < float(ssim(a, a * 0.5)) < 1
    True
    """
    prediction, reference, mask = _prepare(prediction, reference, mask)
    dims = _check_dims(dims, prediction.dims, "ssim")
    smap = _local_ssim(prediction, reference, win_size=win_size, data_range=data_range)
    out = _reduce_ssim_map(smap, mask, dims, win_size)
    return _named(out, "ssim", "structural similarity index")


# --------------------------------------------------------------------------- SAM


def sam(
    prediction: xr.DataArray,
    reference: xr.DataArray,
    *,
    mask: xr.DataArray | None = None,
    dims: Dims = None,
) -> xr.DataArray:
    """Spectral angle mapper, in **radians**.

    The angle between the prediction's and the reference's spectrum (the
    ``band`` dim) at every pixel, then averaged over ``dims``. It ignores
    brightness (a spectrum scaled by a constant has angle 0) and lies in
    ``[0, pi]``; 0 is a perfect match.

    Parameters
    ----------
    prediction, reference
        Arrays with a ``band`` dim, the same dims, sizes and coordinate labels.
    mask
        Optional boolean array without a ``band`` dim (e.g. ``(time, y, x)``).
    dims
        Dims to average the per-pixel angle over; ``None`` means all dims other
        than ``band``. ``"band"`` may be listed and is ignored, since the angle
        already consumes it.

    Returns
    -------
    xarray.DataArray
        Mean spectral angle in radians (float64).

    Notes
    -----
    A pixel is skipped where any band is NaN in either input, or where either
    spectrum is all zeros (the angle is undefined). The angle is computed as
    ``2 * arctan2(|p̂ - r̂|, |p̂ + r̂|)`` with unit spectra ``p̂, r̂``, which stays
    accurate near 0 where ``arccos`` of the cosine does not.

    Examples
    --------
    >>> import xarray as xr
    >>> p = xr.DataArray([[1.0, 0.0], [0.2, 0.4]], dims=("x", "band"))
    >>> r = xr.DataArray([[0.0, 1.0], [0.1, 0.2]], dims=("x", "band"))
    >>> sam(p, r, dims=()).round(4).values.tolist()  # orthogonal, then same direction
    [1.5708, 0.0]
    """
    prediction, reference, _ = _prepare(prediction, reference, None)
    if "band" not in prediction.dims:
        raise DimensionError(
            f"sam needs a 'band' dim holding the spectra, the data has {prediction.dims}: "
            "rename it, e.g. .rename(channel='band')"
        )
    if mask is not None:
        if "band" in getattr(mask, "dims", ()):
            raise DimensionError(
                "the sam mask has a 'band' dim, but the angle is per pixel over all bands: "
                "reduce it, e.g. mask.any('band')"
            )
        mask = _check_mask(mask, prediction)
    rest = tuple(d for d in prediction.dims if d != "band")
    if dims is not None:
        dims = [dims] if isinstance(dims, str) else list(dims)
        dims = [d for d in dims if d != "band"]
    dims = _check_dims(dims, rest, "sam")

    p = _f64(prediction)
    r = _f64(reference)
    # skipna=False: a NaN band makes the pixel's spectrum (and so its angle) NaN.
    pn = np.sqrt((p * p).sum("band", skipna=False))
    rn = np.sqrt((r * r).sum("band", skipna=False))
    p_unit = p / pn.where(pn > 0)
    r_unit = r / rn.where(rn > 0)
    d = np.sqrt(((p_unit - r_unit) ** 2).sum("band", skipna=False))
    s = np.sqrt(((p_unit + r_unit) ** 2).sum("band", skipna=False))
    angle = 2.0 * np.arctan2(d, s)
    if mask is not None:
        angle = angle.where(mask)
    out = _nanmean(angle, dims)
    return _named(out, "sam", "spectral angle", "rad")


# --------------------------------------------------------------------------- temporal


def _consecutive(x: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """(later, earlier) frames of every consecutive pair, both labelled with the later date."""
    later = x.isel(time=slice(1, None))
    earlier = x.isel(time=slice(None, -1))
    # Per-date non-index coords (e.g. cloud cover) of the earlier frame would clash.
    drop = [c for c in earlier.coords if c != "time" and "time" in earlier[c].dims]
    earlier = earlier.drop_vars(drop)
    if "time" in later.indexes:  # a bare time dim (no labels) needs no relabelling
        earlier = earlier.assign_coords(time=later["time"].values)
    return later, earlier


def temporal_consistency(
    cube: xr.DataArray,
    reference: xr.DataArray | None = None,
    *,
    method: Literal["mad", "ssim"] = "mad",
    dims: Dims = None,
    mask: xr.DataArray | None = None,
    data_range: float = 1.0,
    win_size: int = 7,
) -> xr.DataArray:
    """Frame-to-frame agreement of a time series.

    Every pair of consecutive dates ``(t - 1, t)`` is compared; the pair is
    labelled with the later date ``t``, so a ``time`` dim kept in the result has
    one entry fewer than the input.

    Without ``reference``:

    * ``method="mad"``: mean absolute change ``|x[t] - x[t - 1]|`` over ``dims``
      and over all pairs in them. Lower is smoother; 0 for a constant series.
    * ``method="ssim"``: SSIM between ``x[t]`` and ``x[t - 1]`` (as in
      :func:`ssim`, border cropped when ``y``/``x`` are reduced). Higher is more
      consistent; 1 for a constant series.

    With ``reference`` (e.g. the true series), the score says how far the
    prediction's changes are from the true changes; lower is better, 0 is a
    perfect match:

    * ``"mad"``: mean of ``|(p[t] - p[t - 1]) - (r[t] - r[t - 1])|``;
    * ``"ssim"``: mean of ``|S_p - S_r|``, where ``S_p`` and ``S_r`` are the local
      SSIM maps between consecutive frames of prediction and reference.

    Parameters
    ----------
    cube
        The (predicted) series, with a ``time`` dim of at least 2 dates (and ``y``,
        ``x`` for ``method="ssim"``).
    reference
        Optional series on the same dims, sizes and labels.
    method
        ``"mad"`` or ``"ssim"``.
    dims
        Dims to reduce over; ``None`` reduces over all of them (``time`` included).
    mask
        Optional boolean array with dims a subset of ``cube``'s. With a ``time``
        dim, a pair counts where the mask is ``True`` at *both* dates, e.g. pass
        the clear-sky mask to score only pixels seen clear on both dates.
    data_range, win_size
        As in :func:`ssim` (``"ssim"`` only).

    Returns
    -------
    xarray.DataArray
        The score (float64).

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> t = pd.date_range("2024-01-01", periods=3)
    >>> x = xr.DataArray([[0.1], [0.3], [0.4]], dims=("time", "x"), coords={"time": t})
    >>> temporal_consistency(x, dims="x").round(3).values.tolist()  # per pair
    [0.2, 0.1]
    >>> round(float(temporal_consistency(x)), 3)
    0.15
    """
    cube = _check_dataarray(cube, "cube")
    _check_real(cube, "cube")
    if method not in ("mad", "ssim"):
        raise ValueError(f"method must be 'mad' or 'ssim', got {method!r}")
    if "time" not in cube.dims or cube.sizes["time"] < 2:
        raise DimensionError(
            f"temporal_consistency needs a 'time' dim with at least 2 dates, the data has "
            f"dims {dict(cube.sizes)}: pass the whole series"
        )
    if reference is not None:
        reference = _check_dataarray(reference, "reference")
        _check_real(reference, "reference")
        reference = _check_same_grid(cube, reference, "cube", "reference")
    if mask is not None:
        mask = _check_mask(mask, cube)
        if "time" in mask.dims:
            m_later, m_earlier = _consecutive(mask)
            mask = m_later & m_earlier
    dims = _check_dims(dims, cube.dims, "temporal_consistency")

    later, earlier = _consecutive(cube)
    if method == "mad":
        change = _f64(later) - _f64(earlier)
        if reference is not None:
            r_later, r_earlier = _consecutive(reference)
            change = change - (_f64(r_later) - _f64(r_earlier))
        change = abs(change)
        if mask is not None:
            change = change.where(mask)
        out = _nanmean(change, dims)
        long_name = "mean absolute change between consecutive dates"
    else:
        smap = _local_ssim(later, earlier, win_size=win_size, data_range=data_range)
        if reference is not None:
            r_later, r_earlier = _consecutive(reference)
            r_smap = _local_ssim(r_later, r_earlier, win_size=win_size, data_range=data_range)
            smap = abs(smap - r_smap)
        out = _reduce_ssim_map(smap, mask, dims, win_size)
        long_name = "SSIM between consecutive dates"
    if reference is not None:
        long_name = f"mean absolute difference to the reference of the {long_name}"
    return _named(out, f"temporal_{method}", long_name)


# --------------------------------------------------------------------------- mask scores


def _mask_counts(
    predicted: xr.DataArray,
    reference: xr.DataArray,
    mask: xr.DataArray | None,
    dims: Dims,
    func: str,
) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    predicted = _check_dataarray(predicted, "predicted")
    reference = _check_dataarray(reference, "reference")
    reference = _check_same_grid(predicted, reference, "predicted", "reference")
    valid = None
    flags = []
    for name, m in (("predicted", predicted), ("reference", reference)):
        if m.dtype == bool:
            flags.append(m)
            continue
        if not (np.issubdtype(m.dtype, np.integer) or np.issubdtype(m.dtype, np.floating)):
            raise DTypeError(f"{name} has dtype {m.dtype}, expected a boolean mask")
        if m.chunks is None:
            values = np.asarray(m.values)
            extra = np.setdiff1d(np.unique(values[~np.isnan(values.astype(float))]), [0, 1])
            if extra.size:
                raise CubeError(
                    f"{name} holds values other than 0/1 (e.g. {extra[0]!r}): threshold it "
                    f"first, e.g. {name} > 0.5"
                )
        # A NaN (no data) element is left out of every count for both masks.
        ok = m.notnull()
        valid = ok if valid is None else valid & ok
        flags.append(m == 1)
    if mask is not None:
        mask = _check_mask(mask, predicted)
        valid = mask if valid is None else valid & mask
    p, r = flags
    if valid is not None:
        # Restricting both flags is enough: p & ~r and ~p & r then only see valid elements.
        p, r = p & valid, r & valid
    dims = _check_dims(dims, predicted.dims, func)
    tp = (p & r).sum(dims, dtype=np.float64)
    fp = (p & ~r).sum(dims, dtype=np.float64)
    fn = (~p & r).sum(dims, dtype=np.float64)
    return tp, fp, fn


def _ratio(num: xr.DataArray, den: xr.DataArray) -> xr.DataArray:
    # 0/0 -> NaN, without a RuntimeWarning.
    return num / den.where(den > 0)


_MASK_DOC = """
    Parameters
    ----------
    predicted, reference
        Masks with the same dims, sizes and labels (e.g. ``(time, y, x)``), boolean
        or 0/1 integers or floats; a NaN element (float) is left out of all counts.
    mask
        Optional boolean array: only ``True`` elements count.
    dims
        Dims to reduce over; ``None`` reduces over all of them.
"""


def precision(
    predicted: xr.DataArray,
    reference: xr.DataArray,
    *,
    mask: xr.DataArray | None = None,
    dims: Dims = None,
) -> xr.DataArray:
    """Precision ``TP / (TP + FP)`` of a predicted mask (e.g. clouds).
    {params}
    Returns
    -------
    xarray.DataArray
        Float64; NaN where nothing is predicted (0/0).

    Examples
    --------
    >>> import xarray as xr
    >>> p = xr.DataArray([True, True, True, False, False], dims="x")
    >>> r = xr.DataArray([True, False, False, True, False], dims="x")
    >>> round(float(precision(p, r)), 4)
    0.3333
    """
    tp, fp, _ = _mask_counts(predicted, reference, mask, dims, "precision")
    return _named(_ratio(tp, tp + fp), "precision", "precision")


def recall(
    predicted: xr.DataArray,
    reference: xr.DataArray,
    *,
    mask: xr.DataArray | None = None,
    dims: Dims = None,
) -> xr.DataArray:
    """Recall ``TP / (TP + FN)`` of a predicted mask.
    {params}
    Returns
    -------
    xarray.DataArray
        Float64; NaN where the reference has no positive (0/0).

    Examples
    --------
    >>> import xarray as xr
    >>> p = xr.DataArray([True, True, True, False, False], dims="x")
    >>> r = xr.DataArray([True, False, False, True, False], dims="x")
    >>> float(recall(p, r))
    0.5
    """
    tp, _, fn = _mask_counts(predicted, reference, mask, dims, "recall")
    return _named(_ratio(tp, tp + fn), "recall", "recall")


def f1(
    predicted: xr.DataArray,
    reference: xr.DataArray,
    *,
    mask: xr.DataArray | None = None,
    dims: Dims = None,
) -> xr.DataArray:
    """F1 score ``2 P R / (P + R)`` of a predicted mask.

    Computed from the counts as ``2 TP / (2 TP + FP + FN)``, which equals
    ``2 P R / (P + R)`` wherever precision ``P`` and recall ``R`` are defined, and
    extends it: it is 0 when there are positives but no true positive (even if
    ``P`` or ``R`` is 0/0), and NaN only when neither mask has a positive (0/0).
    {params}
    Returns
    -------
    xarray.DataArray
        Float64 in ``[0, 1]`` or NaN.

    Examples
    --------
    >>> import xarray as xr
    >>> p = xr.DataArray([True, True, True, False, False], dims="x")
    >>> r = xr.DataArray([True, False, False, True, False], dims="x")
    >>> float(f1(p, r))  # P = 1/3, R = 1/2
    0.4
    """
    tp, fp, fn = _mask_counts(predicted, reference, mask, dims, "f1")
    return _named(_ratio(2 * tp, 2 * tp + fp + fn), "f1", "F1 score")


for _func in (precision, recall, f1):
    _func.__doc__ = _func.__doc__.replace("{params}", _MASK_DOC)  # type: ignore[union-attr]
del _func


# --------------------------------------------------------------------------- summary


def summary(
    prediction: xr.DataArray,
    reference: xr.DataArray,
    mask: xr.DataArray | None = None,
    *,
    data_range: float = 1.0,
) -> xr.Dataset:
    """All image metrics as one scalar :class:`xarray.Dataset`.

    Variables (each reduced over all dims, float64; ``attrs`` give ``long_name``
    and ``units``):

    ``psnr`` (dB), ``ssim``, ``mae``, ``mse``, ``rmse``, ``sam`` (radians)
        over the whole input. ``ssim`` is only present when the data has ``y`` and
        ``x`` dims (of at least 7 pixels), ``sam`` only when it has a ``band`` dim.
    ``psnr_masked`` ... ``sam_masked`` (the same six, suffixed ``_masked``)
        only when ``mask`` is given: the same metrics restricted to ``mask`` (e.g.
        under the clouds). For ``sam_masked`` a ``band`` dim of the mask is
        reduced with ``any``.

    Parameters
    ----------
    prediction, reference
        Arrays with the same dims, sizes and labels, typically cubes.
    mask
        Optional boolean mask, dims a subset of the inputs'.
    data_range
        Value range for PSNR and SSIM: 1 for 0-1 reflectance.

    Returns
    -------
    xarray.Dataset
        Lazy (dask-backed) for dask input: call ``.compute()`` once.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> a = xr.DataArray(np.full((2, 8, 8), 0.2), dims=("band", "y", "x"))
    >>> m = xr.DataArray(np.eye(8, dtype=bool), dims=("y", "x"))
    >>> s = summary(a + 0.1, a, m)
    >>> sorted(s.data_vars)[:4], round(float(s.rmse_masked), 3)
    (['mae', 'mae_masked', 'mse', 'mse_masked'], 0.1)
    """
    prediction, reference, mask = _prepare(prediction, reference, mask)
    has_ssim = all(d in prediction.dims and prediction.sizes[d] >= 7 for d in _SPATIAL)
    has_sam = "band" in prediction.dims

    def metrics(m: xr.DataArray | None) -> dict[str, xr.DataArray]:
        out = {
            "psnr": psnr(prediction, reference, mask=m, data_range=data_range),
            "ssim": (
                ssim(prediction, reference, mask=m, data_range=data_range) if has_ssim else None
            ),
            "mae": mae(prediction, reference, mask=m),
            "mse": mse(prediction, reference, mask=m),
            "rmse": rmse(prediction, reference, mask=m),
            "sam": None,
        }
        if has_sam:
            sam_mask = m.any("band") if m is not None and "band" in m.dims else m
            out["sam"] = sam(prediction, reference, mask=sam_mask)
        return {k: v for k, v in out.items() if v is not None}

    variables = metrics(None)
    if mask is not None:
        for name, value in metrics(mask).items():
            value = value.rename(f"{name}_masked")
            value.attrs["long_name"] += " under the mask"
            variables[f"{name}_masked"] = value
    ds = xr.Dataset(variables)
    ds.attrs["description"] = "xcloudfree.metrics.summary(prediction, reference, mask)"
    return ds
