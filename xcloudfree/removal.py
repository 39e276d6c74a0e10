"""``remove``: the one front door to cloud removal, whatever the method."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr

from ._version import __version__
from .baselines import BASELINES, error_from_quality, fill
from .chunking import apply_policy
from .cube import as_cube, band_variables, core_first
from .errors import CubeError, ModelUnavailableError, OptionError
from .masking import mask_classes

__all__ = ["METHODS", "ModelUnavailableError", "as_mask", "remove"]

#: Every accepted ``method=``; ``"hybrid"`` is the STGAN + CycleGAN model.
METHODS: tuple[str, ...] = ("hybrid", *BASELINES)


def as_mask(mask: Any, cube: xr.DataArray) -> xr.DataArray:
    """Check a user-supplied cloud mask against a cube and return it as bool ``(time, y, x)``.

    Parameters
    ----------
    mask
        Boolean DataArray with dims ``time, y, x`` (any order) and the cube's sizes.
        Integer 0/1 masks are accepted; NaN is not.
    cube
        The cube the mask belongs to.

    Raises
    ------
    CubeError
        If dims, sizes, dates or the grid differ, or (eager) values are not 0/1.

    Examples
    --------
    >>> import xcloudfree
    >>> cube = xcloudfree.datasets.sample_timeseries().isel(time=[0, 1])
    >>> as_mask(cube.sel(band="B02") > 0.2, cube).dims
    ('time', 'y', 'x')
    """
    if not isinstance(mask, xr.DataArray):
        raise CubeError(
            f"mask must be an xarray.DataArray with dims ('time', 'y', 'x'), got "
            f"{type(mask).__name__}: wrap it, e.g. xr.DataArray(m, dims=('time', 'y', 'x'))"
        )
    if set(mask.dims) != {"time", "y", "x"}:
        raise CubeError(
            f"mask dims are {mask.dims}, expected ('time', 'y', 'x'): one mask per date, "
            "e.g. cube.cloudfree.mask() gives one"
        )
    mask = mask.transpose("time", "y", "x")
    for dim in ("time", "y", "x"):
        if mask.sizes[dim] != cube.sizes[dim]:
            raise CubeError(
                f"mask has {mask.sizes[dim]} {dim} steps but the cube has {cube.sizes[dim]}: "
                "build the mask from the same cube"
            )
    if "time" in mask.coords and not np.array_equal(
        mask["time"].values.astype("datetime64[ns]"), cube["time"].values.astype("datetime64[ns]")
    ):
        raise CubeError(
            "mask dates differ from the cube's: build the mask from the same cube, or align "
            "it first, e.g. mask.sel(time=cube.time)"
        )
    for dim in ("y", "x"):
        if dim in mask.coords and dim in cube.coords:
            step = float(np.abs(np.diff(cube[dim].values[:2])).max()) if cube.sizes[dim] > 1 else 0
            if not np.allclose(mask[dim].values, cube[dim].values, rtol=0, atol=1e-3 * step):
                raise CubeError(
                    f"mask {dim} coordinates differ from the cube's: the mask is on another "
                    f"grid; reproject or align it first, e.g. mask.interp_like(cube)"
                )
    if mask.dtype != bool:
        if mask.dtype.kind not in "iu":
            raise CubeError(
                f"mask has dtype {mask.dtype}: pass a boolean mask, e.g. probability > 0.5"
            )
        if mask.chunks is None and not np.isin(mask.values, (0, 1)).all():
            raise CubeError("mask holds values other than 0 and 1: threshold it first")
        mask = mask.astype(bool)
    # Take the cube's coordinates so float rounding in x/y never misaligns the two, and
    # drop leftovers such as the scalar ``band`` of ``cube.sel(band="B02") > 0.2``.
    stray = [c for c in mask.coords
             if c not in mask.dims and (c not in cube.coords or c in cube.dims)]  # fmt: skip
    mask = mask.drop_vars(stray)
    return mask.assign_coords({d: cube[d] for d in ("time", "y", "x") if d in cube.coords})


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
        ``"regression"`` (see :mod:`xcloudfree.baselines`).
    mask
        Which pixels to fill: a mask source of :func:`xcloudfree.mask_classes`
        (``"temporal"``, the default for every method, ``"spectral"``, ``"scl"``,
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
        GPU; see :func:`xcloudfree.engine.batch_pixels`). One forward runs at a time
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
        (:mod:`xcloudfree.adaptation`); the hybrid's networks then start from it.
        Costs about 1.5-3.5 s per date to fill on two CPU cores, once per scene
        whatever the chunking.
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
        input kept) and, for ``"hybrid"`` and ``"regression"``, ``expected_error``
        (time, y, x): the calibrated expected absolute error of the filled
        reflectance (band mean), 0 where observed, NaN where nothing could be
        filled. ``quality`` is ``1 / (1 + expected_error / 0.01)`` there; see
        :func:`xcloudfree.baselines.fill`.

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
    ['cloud_mask', 'cloud_probability', 'mask_class', 'quality', 'reflectance']
    >>> out.reflectance.dtype.name, str(out.rio.crs)
    ('float32', 'EPSG:4326')
    """
    if method not in METHODS:
        raise OptionError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    stages = tuple([stages] if isinstance(stages, str) else stages)
    if adapt and method not in ("hybrid", "regression"):
        raise OptionError(
            f"adapt= corrects the regression fill, which method={method!r} does not use: "
            "use method='regression' or 'hybrid' with adapt=True, or drop adapt="
        )
    if method != "hybrid":
        given = {
            "model=": model is not None, "batch_size=": batch_size is not None,
            "dtype=": dtype != "float32", "stages=": stages != ("stgan", "cyclegan"),
        }  # fmt: skip
        wrong = [name for name, set_ in given.items() if set_]
        if wrong:
            raise OptionError(
                f"{', '.join(wrong)} {'is an option' if len(wrong) == 1 else 'are options'} "
                f"of method='hybrid', not of {method!r}: "
                "drop them, or use method='hybrid'"
            )
    elif not stages or set(stages) - {"stgan", "cyclegan"}:
        raise OptionError(
            f"stages={stages!r}: pass ('stgan', 'cyclegan') (the hybrid), ('stgan',) or "
            "('cyclegan',)"
        )
    labels = _band_labels(cube)
    cube = as_cube(cube, scale=scale, offset=offset)
    variables: dict[str, xr.DataArray] = {}

    def resolve(ordered: xr.DataArray) -> xr.DataArray:
        if isinstance(mask, xr.DataArray):
            if threshold is not None or dilate is not None:
                raise OptionError(
                    "threshold= and dilate= apply to computed masks; a mask DataArray is used "
                    "as given: grow it first with xcloudfree.masking.dilate_mask(mask, n)"
                )
            return as_mask(mask, cube)
        if mask is not None and not isinstance(mask, str) and not callable(mask):
            raise CubeError(
                f"mask must be a mask source name, a callable or a bool (time, y, x) "
                f"DataArray, got {type(mask).__name__}"
            )
        computed = mask_classes(
            ordered, "temporal" if mask is None else mask, threshold=threshold,
            dilate=dilate, device=device, progress=progress,
        )  # fmt: skip
        variables.update({k: v for k, v in computed.data_vars.items() if k != "cloud_mask"})
        return computed["cloud_mask"]

    if method == "hybrid" or adapt:
        from .engine import ADAPT_HALO, TILE, check_options, fill_with_model

        # The engine runs the hybrid's networks or, for the regression with adapt=True,
        # the adapted regression alone (no stages, a halo for its 3x3 layers).
        halo = max(ADAPT_HALO, (dilate or 2) + 1)
        options: dict[str, Any] = {"adapt": bool(adapt), "stages": ()}
        if method == "hybrid":
            from .modelcache import get_model, model_ref

            # Fail early, before any work is queued; a model object becomes a small
            # reference that tasks resolve on their worker.
            check_options(device, dtype, batch_size, TILE)
            ref = model_ref(model)
            net = get_model(ref, device)
            halo = net.config.halo + 1
            options.update(
                model=ref, device=device, batch_size=batch_size, dtype=dtype,
                stages=tuple(stages),
            )  # fmt: skip
        order = [str(b) for b in cube["band"].values]
        ordered = apply_policy(core_first(cube), halo=halo)
        applied = resolve(ordered)
        reflectance, quality = fill_with_model(ordered, applied, progress=progress, **options)
        reflectance = reflectance.sel(band=order).assign_coords(band=cube["band"])
    else:
        cube = apply_policy(cube, halo=(dilate or 2) + 1)
        applied = resolve(cube)
        reflectance, quality = fill(cube, applied, method)
    reflectance.name = "reflectance"
    variables = {
        "reflectance": reflectance,
        "cloud_mask": applied.rename("cloud_mask"),
        **{k: variables[k] for k in ("mask_class", "cloud_probability") if k in variables},
        "quality": quality,
    }
    if method in ("hybrid", "regression"):
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
        if method != "hybrid" or tuple(stages) == ("stgan", "cyclegan")
        else f"hybrid ({'+'.join(stages)} only)",
        **({"adaptation": "per-scene (xcloudfree.adaptation)"} if adapt else {}),
        "software": f"xcloudfree {__version__}",
        "mask": "user-supplied mask (DataArray)"
        if isinstance(mask, xr.DataArray)
        else ds["cloud_mask"].attrs["description"],
    }
    if method == "hybrid":
        from .models.files import fingerprint

        source = "shipped hybrid_v1" if model is None else f"user model {ref!r}"[:120]
        ds.attrs["model"] = f"{source} (weights {fingerprint(net)})"
    return ds
