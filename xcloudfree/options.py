"""The options of a run, validated once at the front door.

:func:`xcloudfree.remove`, :func:`xcloudfree.mask_classes` and the model-run
functions of :mod:`xcloudfree.inference` turn their keyword arguments into these
frozen objects before any work is queued, on numpy and dask input alike; the
code below them takes the objects and checks nothing again. They are small and
picklable -- what to compute, apart from the dask graph that computes it -- and a
bad value fails when the object is built, with an :class:`~xcloudfree.errors.OptionError`
naming the fix.

Examples
--------
>>> opts = RemovalOptions.build("regression", adapt=True)
>>> opts.method, opts.engine.adapt, opts.engine.stages, opts.mask.source
('regression', True, (), 'fused')
>>> RemovalOptions.build("median", dtype="bfloat16")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
xcloudfree.errors.OptionError: dtype= is an option of method='hybrid', not of 'median': ...
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr

from .errors import CubeError, OptionError
from .fills.baselines import BASELINES

__all__ = ["MASK_SOURCES", "METHODS", "EngineOptions", "MaskOptions", "RemovalOptions"]

#: Every accepted ``method=`` of :func:`xcloudfree.remove`; ``"hybrid"`` is the
#: STGAN + CycleGAN model.
METHODS: tuple[str, ...] = ("hybrid", *BASELINES)
#: Named mask sources accepted by ``mask=`` / ``method=`` of the mask functions.
MASK_SOURCES: tuple[str, ...] = ("fused", "temporal", "spectral", "scl", "csmask", "model")
#: The hybrid's stages, in the order they run.
STAGES: tuple[str, ...] = ("stgan", "cyclegan")
#: Most pixels each window keeps along an axis (the model also reads its halo).
TILE = 640
#: Width of the blended overlap between neighbouring windows of a block.
FEATHER = 8
#: Accepted ``dtype=`` values: the precision of the networks' arithmetic.
DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16")


def _is_whole(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class MaskOptions:
    """How a cloud mask is computed: see :func:`xcloudfree.mask_classes`.

    Examples
    --------
    >>> MaskOptions("spectral", threshold=0.4).threshold
    0.4
    >>> MaskOptions("spectral", dilate=-1)
    Traceback (most recent call last):
    ...
    xcloudfree.errors.OptionError: dilate=-1 must be a whole number of pixels >= 0, e.g. 2
    """

    source: str | Callable[[xr.DataArray], xr.DataArray] = "fused"
    threshold: float | None = None
    dilate: int | None = None
    device: Any = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.threshold is not None and not (
            isinstance(self.threshold, (int, float, np.floating)) and 0 <= self.threshold <= 1
        ):
            raise OptionError(
                f"threshold={self.threshold!r} is outside 0-1: pass a probability, e.g. 0.5"
            )
        if self.dilate is not None and (not _is_whole(self.dilate) or self.dilate < 0):
            raise OptionError(
                f"dilate={self.dilate!r} must be a whole number of pixels >= 0, e.g. 2"
            )
        if callable(self.source):
            if self.threshold is not None or self.dilate is not None:
                raise OptionError(
                    "threshold= and dilate= apply to computed masks; a callable's mask is used "
                    "as it returns it: threshold or grow it inside the callable"
                )
        elif self.source not in MASK_SOURCES:
            raise OptionError(
                f"unknown mask method {self.source!r}: choose one of {', '.join(MASK_SOURCES)}, "
                "or pass a callable returning a bool (time, y, x) mask"
            )
        elif self.source in ("scl", "csmask") and self.threshold is not None:
            raise OptionError(
                f"threshold= does not apply to method={self.source!r} (it has classes only)"
            )
        if self.source in ("fused", "temporal", "model"):
            from .inference.devices import resolve_device

            resolve_device(self.device)


@dataclasses.dataclass(frozen=True)
class EngineOptions:
    """How the model engine runs: see :func:`xcloudfree.remove` for each option.

    ``model`` is kept as a reference (None for the shipped model, a path, or the
    token of a registered :class:`~xcloudfree.models.HybridModel`), so the object
    stays small whatever the model. ``stages=()`` runs no network: the engine then
    gives the (adapted) regression alone. ``guard`` lets the scene weigh the
    networks' change to the base per date (:mod:`xcloudfree.inference.guard`).

    Examples
    --------
    >>> EngineOptions(stages=["stgan"]).stages
    ('stgan',)
    >>> EngineOptions(batch_size=0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    xcloudfree.errors.OptionError: batch_size must be an integer >= 1, got 0: leave it None ...
    """

    model: Any = None
    device: Any = "auto"
    batch_size: int | None = None
    tile: int = TILE
    dtype: str = "float32"
    stages: tuple[str, ...] = STAGES
    k: int | None = None
    adapt: bool = False
    guard: bool = True

    def __post_init__(self) -> None:
        from .inference.devices import resolve_device
        from .inference.modelcache import model_ref

        stages = (self.stages,) if isinstance(self.stages, str) else tuple(self.stages)
        object.__setattr__(self, "stages", stages)
        if set(stages) - set(STAGES) or len(set(stages)) != len(stages):
            raise OptionError(
                f"stages={stages!r}: pass ('stgan', 'cyclegan') (the hybrid), ('stgan',) or "
                "('cyclegan',)"
            )
        if self.dtype not in DTYPES:
            raise OptionError(
                f"dtype must be one of {DTYPES}, got {self.dtype!r}: use 'float32' (the "
                "default), or 'bfloat16' for mixed precision on a GPU"
            )
        dev = resolve_device(self.device)
        if self.dtype == "float16" and dev.type != "cuda":
            raise OptionError(
                "dtype='float16' needs a CUDA device: use 'bfloat16' or 'float32' on CPU"
            )
        if self.batch_size is not None and (not _is_whole(self.batch_size) or self.batch_size < 1):
            raise OptionError(
                f"batch_size must be an integer >= 1, got {self.batch_size!r}: leave it None "
                "to fit batches to the device's pixel budget"
            )
        if not _is_whole(self.tile) or self.tile < 4 * FEATHER:
            raise OptionError(
                f"tile must be an integer >= {4 * FEATHER}, got {self.tile!r}: leave the "
                f"default ({TILE}) unless memory is short"
            )
        if self.k is not None and (not _is_whole(self.k) or self.k < 1):
            raise OptionError(f"k must be an integer >= 1, got {self.k!r}: leave it None")
        # A model object becomes a small reference that tasks resolve on their worker.
        object.__setattr__(self, "model", model_ref(self.model))

    def network(self):
        """The model this runs (loaded once per process and device); fails early on a bad file."""
        from .inference.modelcache import get_model

        return get_model(self.model, self.device)


@dataclasses.dataclass(frozen=True)
class RemovalOptions:
    """Everything :func:`xcloudfree.remove` was asked to do, checked together.

    ``mask`` is None when the caller gave a mask DataArray (used as given);
    ``engine`` is None for the classical fills, which run no network.
    """

    method: str
    mask: MaskOptions | None
    engine: EngineOptions | None
    dilate: int | None = None
    progress: bool = True
    fallback: str | None = None

    @classmethod
    def build(
        cls,
        method: str = "hybrid",
        *,
        mask: Any = None,
        dilate: int | None = None,
        model: Any = None,
        device: Any = "auto",
        batch_size: int | None = None,
        stages: tuple[str, ...] | str = STAGES,
        threshold: float | None = None,
        dtype: str = "float32",
        adapt: bool = False,
        guard: bool = True,
        progress: bool = True,
        fallback: str | None = None,
    ) -> RemovalOptions:
        """Validate the keyword arguments of :func:`xcloudfree.remove` (bar the cube's own)."""
        from .fills.spatial import FALLBACKS

        if method not in METHODS:
            raise OptionError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
        if fallback is not None and fallback not in FALLBACKS:
            raise OptionError(
                f"fallback={fallback!r}: choose 'inpaint' (fill from the same date's clear "
                "pixels around), 'keep' (keep the cloudy input) or 'nan'"
            )
        stages = (stages,) if isinstance(stages, str) else tuple(stages)
        if adapt and method not in ("hybrid", "regression"):
            raise OptionError(
                f"adapt= corrects the regression fill, which method={method!r} does not use: "
                "use method='regression' or 'hybrid' with adapt=True, or drop adapt="
            )
        if method != "hybrid":
            given = {
                "model=": model is not None, "batch_size=": batch_size is not None,
                "dtype=": dtype != "float32", "stages=": stages != STAGES,
                "guard=": guard is not True,
            }  # fmt: skip
            wrong = [name for name, set_ in given.items() if set_]
            if wrong:
                raise OptionError(
                    f"{', '.join(wrong)} {'is an option' if len(wrong) == 1 else 'are options'} "
                    f"of method='hybrid', not of {method!r}: drop them, or use method='hybrid'"
                )
        elif not stages:
            raise OptionError(
                "stages=(): pass ('stgan', 'cyclegan') (the hybrid), ('stgan',) or ('cyclegan',)"
            )
        if isinstance(mask, xr.DataArray):
            if threshold is not None or dilate is not None:
                raise OptionError(
                    "threshold= and dilate= apply to computed masks; a mask DataArray is used "
                    "as given: grow it first with xcloudfree.masking.dilate_mask(mask, n)"
                )
            mask_options = None
        elif mask is None or isinstance(mask, str) or callable(mask):
            mask_options = MaskOptions(
                "fused" if mask is None else mask, threshold=threshold, dilate=dilate,
                device=device, progress=progress,
            )  # fmt: skip
        else:
            raise CubeError(
                f"mask must be a mask source name, a callable or a bool (time, y, x) "
                f"DataArray, got {type(mask).__name__}"
            )
        engine = None
        if method == "hybrid":
            engine = EngineOptions(
                model=model, device=device, batch_size=batch_size, dtype=dtype, stages=stages,
                adapt=bool(adapt), guard=bool(guard),
            )  # fmt: skip
        elif adapt:  # the adapted regression runs in the engine, without networks
            engine = EngineOptions(device=device, stages=(), adapt=True)
        return cls(
            method, mask_options, engine, dilate=dilate, progress=bool(progress),
            fallback=fallback,
        )  # fmt: skip
