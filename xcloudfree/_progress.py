"""Progress bars: tqdm's notebook widget where it can draw, its text bar elsewhere."""

from __future__ import annotations

import importlib.util
from typing import Any

__all__ = ["progress_bar"]


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
