"""Exception types raised by xcloudfree.

Every error that a user can cause with bad input derives from
:class:`XCloudFreeError`, so ``except xcloudfree.XCloudFreeError`` catches them all,
and each message names the problem and the fix.  The cube errors also derive from
:class:`ValueError` (or :class:`TypeError`), so code written against the standard
exceptions keeps working.
"""

from __future__ import annotations

__all__ = [
    "BandError",
    "CubeError",
    "DTypeError",
    "DimensionError",
    "ModelFileError",
    "ModelUnavailableError",
    "OptionError",
    "RechunkWarning",
    "ScaleError",
    "StacError",
    "TimeError",
    "UnfilledWarning",
    "XCloudFreeError",
]


class XCloudFreeError(Exception):
    """Base class of every error raised by xcloudfree on bad input or state."""


class CubeError(XCloudFreeError, ValueError):
    """The input does not satisfy the cube contract (see :mod:`xcloudfree.cube`)."""


class DimensionError(CubeError):
    """The cube has the wrong dimensions or dimension order."""


class BandError(CubeError):
    """A band is missing, unknown or duplicated."""


class ScaleError(CubeError):
    """The values are not reflectance on a 0-1 scale (e.g. integer DN or 0-10000 floats)."""


class DTypeError(CubeError, TypeError):
    """The cube has a dtype that cannot hold reflectance (bool, complex, object...)."""


class TimeError(CubeError):
    """The ``time`` coordinate is missing, not datetime64, unsorted or duplicated."""


class StacError(XCloudFreeError, RuntimeError):
    """A STAC search or load failed: unreachable catalog, empty result, missing assets."""


class ModelUnavailableError(XCloudFreeError, RuntimeError):
    """The model weights requested are not available in this installation."""


class OptionError(XCloudFreeError, ValueError):
    """An option is unknown or out of range: ``method=``, ``device=``, ``dtype=``, ``stages=``..."""


class ModelFileError(XCloudFreeError, ValueError):
    """A model file is unreadable, not an xcloudfree model, or saved by a newer version."""


class UnfilledWarning(UserWarning):
    """Masked pixels had no clear observation on any other date of the series.

    The message gives their share and what became of them: filled from the same
    date's surroundings (``fill_source == 2``, the default) or left as they were
    (``fill_source == 3``, with ``fallback="keep"`` or where nothing clear is within
    reach). A longer series, or a mask that calls fewer pixels cloudy, leaves fewer.
    """


class RechunkWarning(UserWarning):
    """A dask cube was rechunked because its chunks did not suit the computation.

    The message says from what to what and why; rechunk the input yourself (see
    :func:`xcloudfree.chunking.suggest_chunks`) to silence it.
    """
