"""Progress bars: tqdm's notebook widget where it can draw, its text bar elsewhere."""

from __future__ import annotations

import contextlib
import importlib.util
from typing import Any

__all__ = ["dask_progress", "progress_bar"]


def progress_bar(*args: Any, **kwargs: Any) -> Any:
    """A ``tqdm`` bar: the Jupyter widget when ``ipywidgets`` is installed, else text.

    ``tqdm.auto`` picks the widget in any notebook and, without ``ipywidgets``,
    warns ("IProgress not found") and prints nothing useful; the text bar works
    in a notebook too.

    Examples
    --------
    >>> with progress_bar(total=2, disable=True) as bar:
    ...     bar.update(2)
    """
    if importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm
    return tqdm(*args, **kwargs)


def dask_progress(show: bool) -> contextlib.AbstractContextManager:
    """dask's progress bar (for lazy work computed here) when ``show``, else nothing."""
    if not show:
        return contextlib.nullcontext()
    from dask.diagnostics import ProgressBar

    return ProgressBar(minimum=1.0)
