"""The classical fills: gap fillers that learn nothing, and composites.

:mod:`.baselines`
    ``median``, ``nearest``, ``interpolate`` and ``regression`` (the hybrid's base),
    their ``quality`` and expected error;
:mod:`.spatial`
    the same-date fill, where no other date is clear (``fallback=`` of
    :func:`xcloudfree.remove`);
:mod:`.neighbours`
    which other dates a fill draws from;
:mod:`.composite`
    cloud-free composites per period from a result of :func:`xcloudfree.remove`
    (:func:`xcloudfree.composite`).
"""

from .baselines import BASELINES, fill

__all__ = ["BASELINES", "fill"]
