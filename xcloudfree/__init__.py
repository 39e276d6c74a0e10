"""xcloudfree: cloud removal for Sentinel-2 image time series, native to xarray.

``import xcloudfree`` registers the ``DataArray.cloudfree`` accessor. The main
entry points are :func:`remove`, :func:`train`, :func:`load_model`,
:func:`cloud_mask` and :func:`mask_classes`, :func:`load_stac`, :func:`composite`, the metrics in
:mod:`xcloudfree.metrics` and the real sample in :mod:`xcloudfree.io.datasets` (also
``xcloudfree.datasets``). Where the code lives: :mod:`xcloudfree.inference` runs the
networks, :mod:`xcloudfree.io` reads and writes, :mod:`xcloudfree.fills` holds the
classical fills, and :mod:`xcloudfree.options` validates every option once.
"""

from . import accessor, chunking, errors, fills, io, masking, metrics, options
from ._version import __version__
from .cube import as_cube, band_id
from .errors import (
    ModelFileError,
    OptionError,
    RechunkWarning,
    UnfilledWarning,
    XCloudFreeError,
)
from .fills.baselines import BASELINES
from .fills.composite import composite
from .io import datasets, writers
from .io.stac import load_stac
from .masking import cloud_mask, cloud_probability, mask_classes
from .plotting import plot
from .removal import METHODS, ModelUnavailableError, remove
from .simulation import SimulatedClouds, simulate_clouds

# Torch is heavy: the model and training entry points load on first use.
_LAZY = {
    "train": "xcloudfree.training.loop",
    "make_training_pairs": "xcloudfree.training.pairs",
    "load_model": "xcloudfree.models.hybrid",
    "HybridModel": "xcloudfree.models.hybrid",
}


_LAZY_MODULES = ("models", "training", "inference")


def __getattr__(name: str):
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _LAZY_MODULES:
        return importlib.import_module(f"xcloudfree.{name}")
    raise AttributeError(f"module 'xcloudfree' has no attribute {name!r}")


__all__ = [
    "BASELINES",
    "METHODS",
    "HybridModel",
    "ModelFileError",
    "ModelUnavailableError",
    "OptionError",
    "RechunkWarning",
    "SimulatedClouds",
    "UnfilledWarning",
    "XCloudFreeError",
    "__version__",
    "accessor",
    "as_cube",
    "band_id",
    "chunking",
    "cloud_mask",
    "cloud_probability",
    "composite",
    "datasets",
    "errors",
    "fills",
    "inference",
    "io",
    "load_model",
    "load_stac",
    "make_training_pairs",
    "mask_classes",
    "masking",
    "metrics",
    "options",
    "plot",
    "remove",
    "simulate_clouds",
    "train",
    "writers",
]
