"""xcloudfree: cloud removal for Sentinel-2 image time series, native to xarray.

``import xcloudfree`` registers the ``DataArray.cloudfree`` accessor. The main
entry points are :func:`remove`, :func:`cloud_mask`, :func:`load_stac`, the
metrics in :mod:`xcloudfree.metrics` and the real sample in
:mod:`xcloudfree.datasets`.
"""

from . import accessor, datasets, errors, metrics
from ._version import __version__
from .baselines import BASELINES
from .cube import as_cube, band_id
from .errors import XCloudFreeError
from .masking import cloud_mask, cloud_probability
from .plotting import plot
from .removal import METHODS, ModelUnavailableError, remove
from .simulation import SimulatedClouds, simulate_clouds
from .stac import load_stac

__all__ = [
    "BASELINES",
    "METHODS",
    "ModelUnavailableError",
    "SimulatedClouds",
    "XCloudFreeError",
    "__version__",
    "accessor",
    "as_cube",
    "band_id",
    "cloud_mask",
    "cloud_probability",
    "datasets",
    "errors",
    "load_stac",
    "metrics",
    "plot",
    "remove",
    "simulate_clouds",
]
