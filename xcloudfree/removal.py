"""``remove``: the one front door to cloud removal, whatever the method.

Every option is validated here, once, into a :class:`~xcloudfree.options.RemovalOptions`
before any work is queued; the cube is checked once by :func:`~xcloudfree.as_cube`.
The model path then runs in :func:`xcloudfree.inference.run`, the classical fills
in :func:`xcloudfree.fills.fill`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr

from ._version import __version__
from .chunking import apply_policy
from .cube import as_cube, band_variables
from .errors import ModelUnavailableError, UnfilledWarning
from .fills.baselines import LOCAL_HALO, REGRESSIONS, error_from_quality, fill
from .fills.spatial import inpaint_unfilled
from .masking import as_mask, resolve_mask
from .options import METHODS, STAGES, RemovalOptions

__all__ = ["METHODS", "ModelUnavailableError", "as_mask", "remove"]


def _band_labels(obj: Any) -> Any:
    """The caller's band labels, given back on the output (``red`` stays ``red``)."""
    if isinstance(obj, xr.Dataset):
        return np.array([str(v) for v in band_variables(obj)[0]])
    if isinstance(obj, xr.DataArray) and "band" in obj.coords:
        return obj["band"].variable.to_base_variable()
    return None


def remove(
    cube: xr.DataArray,
    method: str = "hybrid",
    *,
    mask: xr.DataArray | str | Callable[[xr.DataArray], xr.DataArray] | None = None,
    scale: float | None = None,
    offset: float = 0.0,
    dilate: int | None = None,
    model: Any = None,
    device: Any = "auto",
    batch_size: int | None = None,
    stages: tuple[str, ...] = ("stgan", "cyclegan"),
    threshold: float | None = None,
    dtype: str = "float32",
    adapt: bool = False,
    guard: bool = True,
    fallback: str | None = None,
    progress: bool = True,
) -> xr.Dataset:
    """Remove clouds from a Sentinel-2 cube.

    Parameters
    ----------
    cube
        A cube ``(time, band, y, x)`` of 0-1 reflectance with at least B02, B03, B04
        and B08 (or B8A); see :func:`xcloudfree.as_cube`. Dask input stays lazy.
    method
        ``"hybrid"`` (the STGAN + CycleGAN model shipped in the package) or a
        classical method: ``"median"``, ``"nearest"``, ``"interpolate"``,
        ``"regression"``, ``"local"`` (the regression corrected by its own misses
        around the cloud; see :mod:`xcloudfree.fills.baselines`).
    mask
        Which pixels to fill: a mask source of :func:`xcloudfree.mask_classes`
        (``"fused"``, the default for every method, ``"temporal"``, ``"spectral"``, ``"scl"``,
        ``"csmask"``, ``"model"``, or a callable), or your own boolean mask
        ``(time, y, x)`` DataArray, used as given. ``cube.cloudfree.mask()`` with
        the same ``mask``, ``threshold`` and ``dilate`` is exactly the mask applied.
    scale, offset
        For integer DN input: ``reflectance = DN * scale + offset``; Sentinel-2 takes
        ``scale=1e-4``, and L2A of processing baseline 04.00 or later (January 2022
        on) also ``offset=-0.1``. :func:`xcloudfree.load_stac` applies both itself.
    dilate
        Pixels by which a computed mask is grown (default: the mask source's
        operating point, 2 px); not applied to a DataArray or callable ``mask``.
    model
        ``"hybrid"`` only: a :class:`~xcloudfree.models.HybridModel`, or the path
        of one saved by :meth:`~xcloudfree.models.HybridModel.save`; default the
        shipped pretrained model.
    device
        ``"hybrid"`` only: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``...
        On dask, ``"auto"`` is resolved on each worker, so GPU workers use their GPU.
    batch_size
        ``"hybrid"`` only: windows (up to 640 x 640 px plus a 49 px halo each) per
        forward pass. None (default) fits as many as a pixel budget allows (about
        0.16 GB of activations on a CPU, less when little memory is free; 20 GB on a
        GPU; see :func:`xcloudfree.inference.devices.batch_pixels`). One forward runs at a time
        per device and process, whatever the number of dask threads.
    stages
        ``"hybrid"`` only: ``("stgan", "cyclegan")``; one stage alone gives the
        ablations ``("stgan",)`` and ``("cyclegan",)``.
    threshold
        Probability of cloud, haze or shadow above which a computed mask calls a
        pixel unusable (default: the mask source's operating point).
    dtype
        ``"hybrid"`` only: arithmetic precision of the networks, ``"float32"``,
        ``"bfloat16"`` (mixed precision, for CUDA GPUs) or ``"float16"`` (CUDA only).
    adapt
        ``"regression"`` and ``"hybrid"``: before filling, learn a per-date
        correction of the regression on the scene's own clear pixels, kept only where
        it beats the plain regression on clear pixels held out of the fit
        (:mod:`xcloudfree.inference.adaptation`); the hybrid's networks then start from it.
        Costs about 1.5-3.5 s per date to fill on two CPU cores, once per scene
        whatever the chunking.
    guard
        ``"hybrid"`` only: let the scene weigh the networks. Before filling, the
        scene's own cloud shapes are laid over clear pixels of each date, and the
        date keeps only the share of the networks' change to the regression base
        that brings those pixels closer to their known values
        (:mod:`xcloudfree.inference.guard`; 0 gives the base back). ``False`` keeps
        the networks' output whole, as for the ablations.
    fallback
        What a cloudy pixel gets when no other date is clear there (every cloudy pixel
        of a single-date cube): ``"inpaint"`` fills it from the clear pixels around it
        on the same date, at the finest of several scales that reaches one
        (:mod:`xcloudfree.fills.spatial`; ``fill_source == 2``, with the larger
        expected error of that scale); ``"keep"`` keeps the cloudy input and ``"nan"``
        makes it NaN (``fill_source == 3`` for both, as for a pixel with nothing within
        reach to fill from). Default: ``"inpaint"`` (in a series it touches only
        pixels masked on every date). Eager input warns
        (:class:`~xcloudfree.errors.UnfilledWarning`) with the share of masked pixels
        that no other date could fill; on dask, ``fill_source`` says so per pixel.
    progress
        Show progress bars while numpy (eager) input is processed. Dask input is
        lazy: see its progress with ``dask.diagnostics.ProgressBar`` or
        ``distributed.progress`` when it is computed.

    Returns
    -------
    xarray.Dataset
        ``reflectance`` (same dims, coords, band order and CRS as the input,
        float32), ``cloud_mask`` (time, y, x, bool: filled), ``mask_class``
        (uint8 with CF flags: clear, thick cloud, thin cloud/haze, shadow, snow,
        nodata) and ``cloud_probability`` (when the mask was computed here, for
        sources that have one), ``quality`` (time, y, x; 1 = observed clear,
        lower = a less certain fill, 0 = no clear observation to fill from, the
        input kept) and, for ``"hybrid"``, ``"regression"`` and ``"local"``, ``expected_error``
        (time, y, x): the calibrated expected absolute error of the filled
        reflectance (band mean), 0 where observed, NaN where nothing could be
        filled. ``quality`` is ``1 / (1 + expected_error / 0.01)`` there; see
        :func:`xcloudfree.fills.baselines.fill`. ``fill_source`` (time, y, x, uint8
        with CF flags) says where each value came from: 0 observed, 1 other dates,
        2 the same date's surroundings (``fallback="inpaint"``), 3 not filled.

    Raises
    ------
    OptionError
        For an unknown ``method``, model options with a classical method, or a bad
        ``device``, ``dtype`` or ``batch_size``.
    ModelFileError
        For a ``model`` file that is not a readable xcloudfree model.
    ModelUnavailableError
        For ``method="hybrid"`` when the shipped weights are missing.

    Examples
    --------
    >>> import xcloudfree
    >>> cube = xcloudfree.datasets.sample_timeseries().isel(time=slice(12, 18))
    >>> out = xcloudfree.remove(cube, method="nearest")
    >>> sorted(out.data_vars)
    ['cloud_mask', 'cloud_probability', 'fill_source', 'mask_class', 'quality', 'reflectance']
    >>> out.reflectance.dtype.name, str(out.rio.crs)
    ('float32', 'EPSG:4326')
    """
    options = RemovalOptions.build(
        method, mask=mask, dilate=dilate, model=model, device=device, batch_size=batch_size,
        stages=stages, threshold=threshold, dtype=dtype, adapt=adapt, guard=guard,
        progress=progress, fallback=fallback,
    )  # fmt: skip
    given = mask if options.mask is None else None
    labels = _band_labels(cube)
    cube = as_cube(cube, scale=scale, offset=offset)
    if fallback is None:
        fallback = "inpaint"
    if options.engine is not None:
        from .inference import run

        # The hybrid's networks or, for the regression with adapt=True, the adapted
        # regression alone.
        out = run(cube, options, given)
        reflectance, quality = out["reflectance"], out["quality"]
        variables = dict(out.drop_vars(["reflectance", "quality"]).data_vars)
    else:
        halo = (dilate or 2) + 1
        cube = apply_policy(cube, halo=max(halo, LOCAL_HALO) if method == "local" else halo)
        variables = dict(resolve_mask(cube, options.mask, given).data_vars)
        reflectance, quality = fill(cube, variables["cloud_mask"], method)
    applied = variables.pop("cloud_mask")
    reflectance, quality, source = inpaint_unfilled(
        reflectance, quality, applied, fallback, observed=cube
    )
    if source.chunks is None:
        _warn_unfilled(source.values, cube.sizes["time"], fallback)
    reflectance.name = "reflectance"
    variables = {
        "reflectance": reflectance,
        "cloud_mask": applied.rename("cloud_mask"),
        **{k: variables[k] for k in ("mask_class", "cloud_probability") if k in variables},
        "quality": quality,
        "fill_source": source,
    }
    if method in ("hybrid", *REGRESSIONS):
        variables["expected_error"] = error_from_quality(quality)
    if labels is not None:
        variables["reflectance"] = reflectance.assign_coords(band=labels)
    ds = xr.Dataset(variables)
    crs = cube.rio.crs
    if crs is not None and any(ds[v].rio.crs is None for v in ds.data_vars):
        ds = ds.rio.write_crs(crs)  # a CRS given in attrs only reaches every variable
    ds.attrs = {
        "title": "cloud-free Sentinel-2 reflectance",
        "method": method
        if method != "hybrid" or options.engine.stages == STAGES
        else f"hybrid ({'+'.join(options.engine.stages)} only)",
        **({"adaptation": "per-scene (xcloudfree.inference.adaptation)"} if adapt else {}),
        "software": f"xcloudfree {__version__}",
        "mask": "user-supplied mask (DataArray)"
        if isinstance(mask, xr.DataArray)
        else ds["cloud_mask"].attrs["description"],
    }
    if method == "hybrid":
        from .models.files import fingerprint
        from .models.hybrid import PRETRAINED

        ref = options.engine.model
        shipped = f"shipped {PRETRAINED.removesuffix('.pt')}"
        source = shipped if ref is None else f"user model {ref!r}"[:120]
        ds.attrs["model"] = f"{source} (weights {fingerprint(options.engine.network())})"
    return ds


#: Share of the masked pixels, with no clear observation on another date, below which
#: ``remove()`` does not warn.
UNFILLED_FLOOR = 0.001


def _warn_unfilled(source: np.ndarray, dates: int, fallback: str) -> None:
    """Say how many masked pixels no other date could fill, and what became of them."""
    masked = int((source > 0).sum())
    same_date, left = int((source == 2).sum()), int((source == 3).sum())
    # One date: filling from the surroundings is all there is, and was asked for. Under
    # UNFILLED_FLOOR of the masked pixels (a bright roof masked on every date), the
    # warning would be noise: fill_source still says so per pixel.
    if dates == 1 or same_date + left <= UNFILLED_FLOOR * masked:
        return
    what = f"{same_date / masked:.1%} of them filled from the same date's surroundings"
    if left:
        how = {"keep": "left as they were", "nan": "made NaN"}.get(
            fallback, "out of the same-date fill's reach, left as they were"
        )
        what += f", {left / masked:.1%} {how} (fill_source 3)"
    warnings.warn(
        f"{(same_date + left) / masked:.1%} of the masked pixels have no clear observation "
        f"on any other date: {what}. A longer series fills more of them from other dates",
        UnfilledWarning, stacklevel=3,
    )  # fmt: skip
