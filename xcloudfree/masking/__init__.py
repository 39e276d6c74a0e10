"""Cloud, haze and shadow masks: one class per pixel and date, and the bool mask a fill uses.

:func:`mask_classes` is the one entry point; :func:`cloud_mask` and
:func:`cloud_probability` are views of it, and :func:`xcloudfree.remove` applies
exactly what :func:`cloud_mask` returns with the same arguments. Sources
(``method=``):

``"fused"`` (default)
    ukis-csmask's single-date cloud and shadow joined with the temporal network's haze
    and thin cloud, each trusted for what it can see (:mod:`xcloudfree.masking.fused`):
    opaque cloud on surfaces this project never saw, haze that only the series shows,
    and no "haze" on bright fields whose departure is the ground changing. Its
    ``cloud_probability`` is the temporal network's.
``"temporal"``
    The shipped temporal mask network (:mod:`xcloudfree.masking.temporal`): each
    date against a reference from the other dates of the series, three passes,
    classes clear / thick / thin-haze / shadow / snow; a shadow with no thick cloud
    within reach is clear (:mod:`xcloudfree.masking.shadows`), and so is a pixel flagged
    on every date where it is a stable surface in clear surroundings, such as a bright
    roof (:mod:`xcloudfree.masking.persistent`). Works on one date too.
``"spectral"``
    The documented per-date test of :mod:`xcloudfree.masking.spectral` (cloud only).
``"scl"``
    The Sentinel-2 L2A scene classification, from a ``scl`` coordinate
    ``(time, y, x)`` on the cube: ``cube.assign_coords(scl=scl)``.
``"csmask"``
    ukis-csmask (DLR) alone (:mod:`xcloudfree.masking.detector`): its 6-band (or
    4-band) L1C or L2A model per date, run at about 30 m; cloud and shadow, no haze.
``"model"``
    The hybrid model's own mask head (the default before version 0.3).
a callable
    ``f(cube) -> DataArray`` of bool ``(time, y, x)``, used as returned.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib import resources
from typing import Any

import numpy as np
import xarray as xr

from ..cube import as_cube
from ..errors import CubeError, OptionError
from ..options import MASK_SOURCES, MaskOptions
from .classes import CLEAR, FILLED, NODATA, SNOW, THICK, THIN, class_attrs, from_scl
from .shadows import _pixel_metres, search_radius, shadows_need_clouds
from .spectral import checked_probability, dilate_mask

__all__ = [
    "MASK_METHODS",
    "as_mask",
    "cloud_mask",
    "cloud_probability",
    "dilate_mask",
    "mask_classes",
    "pretrained_mask",
    "resolve_mask",
]

#: Named mask sources accepted by ``method=`` (besides a callable).
MASK_METHODS: tuple[str, ...] = MASK_SOURCES
#: File of the shipped temporal mask network in ``xcloudfree/weights``.
MASK_WEIGHTS = "mask_v2.pt"
_DEFAULT_DILATE = 2


@functools.lru_cache(maxsize=4)
def pretrained_mask(device: str = "cpu"):
    """The shipped temporal mask network (loaded once per process and device).

    Examples
    --------
    >>> net = pretrained_mask()
    >>> net.config.name, 0 < net.config.threshold < 1
    ('xcloudfree-mask', True)
    """
    from ..errors import ModelUnavailableError
    from ..models.temporal_mask import load_mask_model

    ref = resources.files("xcloudfree") / "weights" / MASK_WEIGHTS
    if not ref.is_file():
        raise ModelUnavailableError(
            f"the mask weights ({MASK_WEIGHTS}) are missing from this installation: "
            "reinstall xcloudfree, or pass method='spectral'"
        )
    import torch

    with resources.as_file(ref) as path:
        net = load_mask_model(path, device=device)
    return net.to(memory_format=torch.channels_last)  # see temporal._run


def _days(cube: xr.DataArray) -> np.ndarray:
    return cube["time"].values.astype("datetime64[D]").astype(np.int64)


def _temporal_block(
    block: np.ndarray, *, bands, days, device, threshold, progress=None
) -> np.ndarray:  # fmt: skip
    from ..inference.devices import resolve_device
    from .haze import unmask_faint_haze
    from .persistent import unmask_surfaces
    from .temporal import series_probabilities

    dev = resolve_device(device)
    net = pretrained_mask(str(dev))
    probs, blue = series_probabilities(
        block, bands, days, net, dev, progress, with_blue_departure=True
    )
    # A pixel flagged on every date may be a bright roof (masking.persistent).
    visible = block[:, [bands.index(b) for b in ("B02", "B03", "B04")]]
    probs = unmask_surfaces(probs, visible, threshold)
    # Haze no brighter than the clear ground around it (masking.haze).
    return unmask_faint_haze(probs, blue, threshold)


def _temporal_halo() -> int:
    """Pixels of context a chunk of the temporal mask reads: the network's, and the
    surface and haze checks' around it (the join's faint-haze check needs less)."""
    from .haze import RADIUS as HAZE_RADIUS
    from .persistent import RADIUS

    return pretrained_mask().config.halo + RADIUS + HAZE_RADIUS


def _temporal_probabilities(
    cube: xr.DataArray, device: Any, progress: bool, threshold: float
) -> xr.DataArray:
    """Class probabilities of a cube chunked by the policy for :func:`_temporal_halo`."""
    from ..chunking import overlap_depth
    from ..inference.engine import _progress

    halo = _temporal_halo()
    kw = {"bands": [str(b) for b in cube["band"].values], "days": _days(cube), "device": device,
          "threshold": threshold}  # fmt: skip
    data = cube.data
    if isinstance(data, np.ndarray):
        with _progress(3 * cube.sizes["time"], progress, "cloud mask") as bar:
            probs = _temporal_block(data, progress=bar.update if bar else None, **kw)
    else:
        import dask.array as dsa

        depth = overlap_depth(data.shape, halo)
        ov = dsa.overlap.overlap(data, depth=depth, boundary="none")
        out = ov.map_blocks(
            _temporal_block, chunks=(ov.chunks[0], (5,), *ov.chunks[2:]), dtype=np.float32,
            meta=np.empty((0, 0, 0, 0), np.float32), **kw,
        )  # fmt: skip
        probs = dsa.overlap.trim_internal(out, depth, boundary="none")
    coords = {k: v for k, v in cube.coords.items() if "band" not in v.dims}
    return xr.DataArray(probs, dims=("time", "class", "y", "x"), coords=coords)


def _classes_of(probs: xr.DataArray, threshold: float) -> tuple[xr.DataArray, xr.DataArray]:
    """Classes (before dilation) and p(thick + thin + shadow) from class probabilities."""
    filled = probs.isel({"class": list(FILLED)})
    p_fill = filled.sum("class", skipna=False)
    best_filled = filled.fillna(-1.0).argmax("class") + THICK
    ground = xr.where(probs.isel({"class": SNOW}) > probs.isel({"class": CLEAR}), SNOW, CLEAR)
    cls = xr.where(p_fill > threshold, best_filled, ground)
    return xr.where(p_fill.notnull(), cls, NODATA).astype(np.uint8), p_fill


def _from_classes(classes: xr.DataArray, dilate: int) -> xr.Dataset:
    """The bool mask of every source: filled classes grown by ``dilate``, never nodata."""
    core = classes.isin(list(FILLED))
    valid = classes != NODATA
    mask = dilate_mask(core, dilate) & valid
    # The dilation ring is a cloud edge: surface partly visible, like thin cloud.
    cls = xr.where(mask & ~core, THIN, classes).astype(np.uint8)
    return xr.Dataset({"cloud_mask": mask, "mask_class": cls})


def _scl_classes(cube: xr.DataArray) -> xr.DataArray:
    if "scl" not in cube.coords:
        raise CubeError(
            "method='scl' needs the L2A scene classification as a 'scl' coordinate "
            "(time, y, x): load it with xcloudfree.load_stac(..., scl=True), or attach "
            "your own with cube.assign_coords(scl=scl_dataarray)"
        )
    scl = cube.coords["scl"].transpose("time", "y", "x").drop_vars("scl", errors="ignore")
    if scl.chunks is None:
        return scl.copy(data=from_scl(scl.values))
    return scl.copy(data=scl.data.map_blocks(from_scl, dtype=np.uint8))


def _is_l2a(cube: xr.DataArray) -> bool:
    """Surface reflectance (L2A) by the cube's own word: its product or STAC collection,
    or a scene classification beside it; otherwise top of atmosphere (L1C)."""
    said = f"{cube.attrs.get('product', '')} {cube.attrs.get('stac_collection', '')}"
    return "L2A" in said.upper() or "scl" in cube.coords


def _detector_setup(cube: xr.DataArray) -> tuple[list[str], int, str]:
    """The detector's bands, its block-mean factor to about 30 m, and the product level."""
    from .detector import detector_inputs

    names, _ = detector_inputs(cube["band"].values)
    factor = max(1, round(30 / _pixel_metres(cube)))
    return names, factor, "l2a" if _is_l2a(cube) else "l1c"


def _csmask_classes(cube: xr.DataArray) -> xr.DataArray:
    """ukis-csmask's classes per date at about 30 m, back on the cube's grid
    (:mod:`.detector`: a tile grid fixed to the cube, so the same on any chunking)."""
    from . import detector

    names, factor, level = _detector_setup(cube)
    data = cube.sel(band=names).transpose("time", "band", "y", "x").data
    size = data.shape[2:]
    kw = {"factor": factor, "level": level, "size": size}
    if isinstance(data, np.ndarray):
        whole = [[0, -(-n // factor)] for n in size]
        out = detector.classify_native(data, starts=whole, at=(0, 0), **kw)
    else:
        import dask.array as dsa

        starts = detector.tile_chunks(size, factor, data.chunks[2:])
        native = [tuple(np.diff([min(b * factor, n) for b in s]).tolist())
                  for s, n in zip(starts, size)]  # fmt: skip
        data = data.rechunk({0: -1, 1: -1, 2: native[0], 3: native[1]})
        margin = detector.MARGIN * factor
        depth = {0: 0, 1: 0, **{2 + i: margin if len(c) > 1 else 0 for i, c in enumerate(native)}}
        ov = dsa.overlap.overlap(data, depth=depth, boundary="none")
        out = ov.map_blocks(
            _detector_block, drop_axis=1, dtype=np.uint8, chunks=(data.chunks[0], *native),
            starts=starts, **kw,
        )  # fmt: skip
        out = out.rechunk((cube.data.chunks[0], *cube.data.chunks[2:]))
    return cube.isel(band=0, drop=True).copy(data=out)


def _detector_block(block, *, starts, block_info=None, **kw):
    from .detector import classify_native

    _, i, j = block_info[None]["chunk-location"]
    return classify_native(block, starts=starts, at=(i, j), **kw)


def _fused_candidates(values, temporal, single, *, bands, days) -> np.ndarray:
    from .fused import candidates
    from .temporal import mask_inputs

    return candidates(temporal, single, mask_inputs(values, bands)[0][:, :4], days)


def _fused_classes(
    cube: xr.DataArray, temporal: xr.DataArray, single: xr.DataArray
) -> xr.DataArray:  # fmt: skip
    """:func:`.fused.fuse` of the temporal and the single-date classes: the per-pixel
    part chunk by chunk, the faint-haze check with its halo; then shadows need a thick
    cloud of the join. ``cube`` is chunked as for the temporal mask, whose halo is wider."""
    from ..chunking import overlap_depth
    from .fused import settle
    from .haze import RADIUS as HAZE_RADIUS

    kw = {"bands": [str(b) for b in cube["band"].values], "days": _days(cube)}
    temporal = temporal.transpose("time", "y", "x")
    single = single.transpose("time", "y", "x")
    data = cube.data
    if isinstance(data, np.ndarray):
        cand = _fused_candidates(data, np.asarray(temporal.values), np.asarray(single.values),
                                 **kw)  # fmt: skip
        out = settle(cand)
    else:
        import dask.array as dsa

        grid = (data.chunks[0], *data.chunks[2:])
        cand = dsa.map_blocks(
            _fused_candidates, data, dsa.asarray(temporal.data).rechunk(grid),
            dsa.asarray(single.data).rechunk(grid), dtype=np.float32,
            chunks=(data.chunks[0], (2,), *data.chunks[2:]), **kw,
        )  # fmt: skip
        depth = overlap_depth(cand.shape, HAZE_RADIUS)
        ov = dsa.overlap.overlap(cand, depth=depth, boundary="none")
        out = ov.map_blocks(settle, drop_axis=1, dtype=np.uint8,
                            chunks=(ov.chunks[0], *ov.chunks[2:]))  # fmt: skip
        out = dsa.overlap.trim_internal(out, {0: 0, 1: depth[2], 2: depth[3]}, boundary="none")
    classes = temporal.copy(data=out)
    # A shadow needs a cloud: the join's thick cloud, not the network's alone.
    thick = (classes == THICK).astype(np.float32).where(classes != NODATA)
    return shadows_need_clouds(classes, thick, search_radius(cube))


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


def resolve_mask(
    cube: xr.DataArray, options: MaskOptions | None, given: xr.DataArray | None = None
) -> xr.Dataset:
    """The mask a fill applies to a checked cube: ``given`` as it is, or computed.

    Returns ``cloud_mask`` and, when computed here, ``mask_class`` and (for sources
    with one) ``cloud_probability``. ``options`` is None exactly when ``given`` is
    a mask DataArray (see :class:`xcloudfree.options.RemovalOptions`).
    """
    if options is None:
        return xr.Dataset({"cloud_mask": as_mask(given, cube).rename("cloud_mask")})
    return classes_for(cube, options)


def mask_classes(
    cube: xr.DataArray,
    method: str | Callable[[xr.DataArray], xr.DataArray] = "fused",
    *,
    threshold: float | None = None,
    dilate: int | None = None,
    scale: float | None = None,
    offset: float = 0.0,
    device: Any = "auto",
    progress: bool = True,
) -> xr.Dataset:
    """Per pixel and date: the mask class, the bool mask a fill uses, and its probability.

    Parameters
    ----------
    cube
        A cube (see :func:`xcloudfree.as_cube`) with B02, B03, B04 and B08 or B8A;
        B11 and B12 help where present. Dask input stays lazy (time and band must
        be one chunk each; :func:`xcloudfree.remove` rechunks for you).
    method
        ``"fused"`` (default), ``"temporal"``, ``"spectral"``, ``"scl"``, ``"csmask"``,
        ``"model"``, or a callable ``f(cube)`` returning a bool ``(time, y, x)``
        mask; see :mod:`xcloudfree.masking`.
    threshold
        Probability of "not clear ground" (thick + thin + shadow) above which a
        pixel is masked. Default: the source's operating point (the temporal
        network's is chosen for the fill's error under cloud).
    dilate
        Grow the mask by this many pixels; default the source's operating point
        (2 px). Not applied to a callable's mask.
    scale, offset
        For integer (DN) input, as in :func:`xcloudfree.remove`.
    device
        Where the temporal network runs: ``"auto"`` (CUDA when available), ``"cpu"``...
    progress
        Show a progress bar for numpy (eager) input.

    Returns
    -------
    xarray.Dataset
        ``cloud_mask`` (bool: not usable as clear ground), ``mask_class`` (uint8
        with CF ``flag_values``/``flag_meanings``: 0 clear, 1 thick cloud, 2 thin
        cloud/haze/cloud edge, 3 shadow, 4 snow, 255 nodata) and, for sources
        with one, ``cloud_probability`` (float32, NaN where the input is NaN).

    Examples
    --------
    >>> import xcloudfree
    >>> cube = xcloudfree.datasets.sample_timeseries().isel(time=slice(0, 6))
    >>> m = mask_classes(cube, progress=False)
    >>> sorted(m.data_vars), m.mask_class.attrs["flag_meanings"].split()[3]
    (['cloud_mask', 'cloud_probability', 'mask_class'], 'cloud_shadow')
    >>> bool((m.cloud_mask == m.mask_class.isin([1, 2, 3])).all())
    True
    """
    options = MaskOptions(method, threshold=threshold, dilate=dilate, device=device,
                          progress=progress)  # fmt: skip
    return classes_for(as_cube(cube, scale=scale, offset=offset), options)


def classes_for(cube: xr.DataArray, options: MaskOptions) -> xr.Dataset:
    """:func:`mask_classes` of a cube already checked by :func:`~xcloudfree.as_cube`.

    ``options`` were validated when built; nothing is checked again here.
    """
    method, threshold, dilate = options.source, options.threshold, options.dilate
    device, progress = options.device, options.progress
    grow = _DEFAULT_DILATE if dilate is None else int(dilate)
    if callable(method):
        mask = as_mask(method(cube), cube)
        cls = xr.where(mask, THICK, CLEAR).astype(np.uint8)
        ds = xr.Dataset({"cloud_mask": mask, "mask_class": cls})
        label = f"user callable {getattr(method, '__name__', repr(method))}"
    elif method in ("temporal", "fused"):
        from ..chunking import apply_policy

        # Chunked once for both parts, so that the join reads the network's chunks.
        cube = apply_policy(cube, halo=_temporal_halo())
        net = pretrained_mask()
        cut = net.config.threshold if threshold is None else threshold
        probs = _temporal_probabilities(cube, device, progress, cut)
        grow = net.config.dilate if dilate is None else int(dilate)
        classes, p_fill = _classes_of(probs, cut)
        # A shadow with no thick cloud within reach is dark ground (masking.shadows).
        classes = shadows_need_clouds(classes, probs.isel({"class": THICK}, drop=True),
                                      search_radius(cube))  # fmt: skip
        from ..models.files import fingerprint

        label = (f"{net.config.name} {net.config.version} (weights {fingerprint(net)}): "
                 f"p(cloud, haze or shadow) > {cut:g}")  # fmt: skip
        if method == "fused":
            from .detector import MIN_CONTEXT

            factor = _detector_setup(cube)[1]
            if min(cube.sizes["y"], cube.sizes["x"]) >= MIN_CONTEXT * factor:
                classes = _fused_classes(cube, classes, _csmask_classes(cube))
                label = f"ukis-csmask joined with {label} (xcloudfree.masking.fused)"
            else:
                label = (f"{label}; ukis-csmask not joined: the cube is under {MIN_CONTEXT} "
                         "detector pixels (about 30 m) on a side")  # fmt: skip
        ds = _from_classes(classes, grow).assign(cloud_probability=p_fill)
    elif method in ("spectral", "model"):
        engine = None
        if method == "model":
            from ..options import EngineOptions

            engine = EngineOptions(device=device)
        prob = checked_probability(cube, method, engine, progress)
        prob = prob.drop_vars([c for c in prob.coords if c not in prob.dims and c != "spatial_ref"])
        cut = 0.5 if threshold is None else threshold
        if method == "model" and threshold is None:
            from ..models import pretrained

            cut = pretrained().config.threshold
        classes = xr.where(prob > cut, THICK, CLEAR)  # a cloud test knows no other class
        classes = xr.where(prob.notnull(), classes, NODATA).astype(np.uint8)
        ds = _from_classes(classes, grow).assign(cloud_probability=prob)
        label = f"{method} cloud test: p(cloud) > {cut:g}"
    else:  # "scl" or "csmask": MaskOptions accepts no other name
        classes = _scl_classes(cube) if method == "scl" else _csmask_classes(cube)
        ds = _from_classes(classes, grow)
        label = "Sentinel-2 SCL" if method == "scl" else "ukis-csmask"
    desc = f"{label}, dilated by {grow} px" if not callable(method) else label
    ds["cloud_mask"].attrs = {"long_name": "cloud mask (not usable as clear ground)",
                              "description": desc}  # fmt: skip
    ds["mask_class"].attrs = class_attrs(desc)
    if "cloud_probability" in ds:
        ds["cloud_probability"] = ds["cloud_probability"].astype(np.float32)
        ds["cloud_probability"].attrs = {
            "long_name": "probability of cloud, haze or shadow", "units": "1",
            "description": label,
        }  # fmt: skip
    for name in ds.data_vars:
        ds[name].name = name
    return ds.transpose("time", "y", "x")


def cloud_mask(
    cube: xr.DataArray,
    method: str | Callable[[xr.DataArray], xr.DataArray] = "fused",
    *,
    threshold: float | None = None,
    dilate: int | None = None,
    scale: float | None = None,
    offset: float = 0.0,
    return_probability: bool = False,
    device: Any = "auto",
    progress: bool = True,
) -> xr.DataArray | tuple[xr.DataArray, xr.DataArray]:
    """The bool mask :func:`xcloudfree.remove` applies with the same arguments.

    True where a pixel is not usable as clear ground (thick or thin cloud, haze,
    cloud shadow, and the dilation ring around them); False where clear, snow or
    nodata. See :func:`mask_classes` for the parameters and the classes.

    Parameters
    ----------
    return_probability
        Also return ``cloud_probability`` (not for ``"scl"``, ``"csmask"`` or callables).

    Examples
    --------
    >>> import xcloudfree
    >>> cube = xcloudfree.datasets.sample_timeseries()
    >>> mask = cloud_mask(cube, progress=False).sel(time=["2018-01-31", "2018-08-09"])
    >>> mask.dtype.name, mask.mean(("y", "x")).round(1).values.tolist()
    ('bool', [1.0, 0.0])
    """
    ds = mask_classes(
        cube, method, threshold=threshold, dilate=dilate, scale=scale, offset=offset,
        device=device, progress=progress,
    )  # fmt: skip
    if return_probability:
        if "cloud_probability" not in ds:
            raise OptionError(f"method={method!r} gives classes only: return_probability=False")
        return ds["cloud_mask"], ds["cloud_probability"]
    return ds["cloud_mask"]


def cloud_probability(
    cube: xr.DataArray,
    method: str = "temporal",
    *,
    scale: float | None = None,
    offset: float = 0.0,
    device: Any = "auto",
    progress: bool = True,
) -> xr.DataArray:
    """Probability (0-1) that a pixel is cloud, haze or cloud shadow; see :func:`mask_classes`.

    Examples
    --------
    >>> import xcloudfree
    >>> cube = xcloudfree.datasets.sample_timeseries().isel(time=[0, 2])
    >>> p = cloud_probability(cube, "spectral")
    >>> p.dims, float(p.isel(time=1).mean()) > float(p.isel(time=0).mean())
    (('time', 'y', 'x'), True)
    """
    ds = mask_classes(
        cube, method, scale=scale, offset=offset, device=device, progress=progress, dilate=0
    )
    if "cloud_probability" not in ds:
        raise OptionError(f"method={method!r} gives classes only, no probability")
    return ds["cloud_probability"]
