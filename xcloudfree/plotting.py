"""Quicklooks: true-colour before/after per date with the cloud mask overlaid."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from .cube import as_cube, rgb_bands
from .errors import OptionError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["CLASS_COLOURS", "class_overlay", "plot", "rgb"]

#: RGBA overlay colour of each mask class (clear and nodata transparent / grey).
CLASS_COLOURS: dict[int, tuple[float, float, float, float]] = {
    1: (1.0, 0.1, 0.1, 0.5),  # thick cloud: red
    2: (1.0, 0.65, 0.0, 0.5),  # thin cloud, haze, cloud edge: orange
    3: (0.15, 0.35, 1.0, 0.6),  # shadow: blue
    4: (0.0, 0.9, 0.9, 0.5),  # snow: cyan
    255: (0.5, 0.5, 0.5, 0.7),  # nodata: grey
}


def class_overlay(classes: np.ndarray) -> np.ndarray:
    """RGBA image ``(y, x, 4)`` colouring a ``mask_class`` array by :data:`CLASS_COLOURS`.

    Examples
    --------
    >>> class_overlay(np.array([[0, 3]], np.uint8))[0, 1].tolist()
    [0.15, 0.35, 1.0, 0.6]
    """
    out = np.zeros((*classes.shape, 4))
    for code, colour in CLASS_COLOURS.items():
        out[classes == code] = colour
    return out


def rgb(
    cube: xr.DataArray, *, vmax: float = 0.3, gamma: float = 1.0,
    bands: Sequence[str] | None = None,
) -> xr.DataArray:  # fmt: skip
    """True-colour (or false-colour) image(s) of a cube, stretched to 0-1 for display.

    Parameters
    ----------
    cube
        A cube, or one date of it ``(band, y, x)``.
    vmax
        Reflectance shown as full white (0.3 suits land surfaces).
    gamma
        Display gamma (1 = linear).
    bands
        The bands shown as red, green, blue; default true colour (B04, B03, B02).
        ``("B08", "B04", "B03")`` is the usual false colour (vegetation red).

    Returns
    -------
    xarray.DataArray
        ``(..., y, x, rgb)`` float in 0-1, NaN kept.

    Examples
    --------
    >>> import xcloudfree
    >>> img = rgb(xcloudfree.datasets.sample_timeseries().isel(time=3))
    >>> img.dims, float(img.max()) <= 1
    (('y', 'x', 'rgb'), True)
    """
    picked = list(rgb_bands() if bands is None else bands)
    if len(picked) != 3:
        raise OptionError(f"bands= needs three bands (red, green, blue), got {picked}")
    missing = [b for b in picked if b not in cube["band"].values]
    if missing:
        raise OptionError(
            f"bands {missing} are not in the cube (it has {cube['band'].values.tolist()}): "
            "pick three of those, e.g. bands=('B08', 'B04', 'B03') for false colour"
        )
    img = cube.sel(band=picked).rename(band="rgb")
    img = (img / vmax).clip(0, 1) ** (1.0 / gamma)
    return img.transpose(..., "y", "x", "rgb")


def _pick_dates(cube: xr.DataArray, mask: xr.DataArray | None, time: Any, max_dates: int):
    if time is not None:
        wanted = np.atleast_1d(np.asarray(time, "datetime64[ns]"))
        index = cube.get_index("time").get_indexer(wanted)
        if (index < 0).any():
            missing = [str(t)[:10] for t in wanted[index < 0]]
            raise ValueError(f"dates {missing} are not in the cube: pick from cube.time")
        return index
    n = cube.sizes["time"]
    if mask is None or n <= max_dates:
        return np.linspace(0, n - 1, min(n, max_dates)).round().astype(int)
    # Show the dates where there is something to see: partly cloudy first.
    frac = np.asarray(mask.mean(("y", "x")).values)
    score = -np.abs(frac - 0.5)
    return np.sort(np.argsort(score)[::-1][:max_dates])


def plot(
    cube: xr.DataArray | None,
    result: xr.Dataset | None = None,
    *,
    time: Any = None,
    max_dates: int = 4,
    vmax: float = 0.3,
    bands: Sequence[str] | None = None,
    quality: bool = False,
    scale: float | None = None,
    offset: float = 0.0,
) -> Figure:
    """Quicklook of a cube and its cloud-free result, one row per date.

    Columns: the input in true colour, the input with the mask classes overlaid
    (thick cloud red, thin cloud / haze / cloud edge orange, shadow blue, snow
    cyan), (when ``result`` is given) the cloud-free result and, with
    ``quality=True``, the result's per-pixel ``quality``.

    Parameters
    ----------
    cube
        The input cube; None shows the result alone (with its mask overlaid).
    result
        Output of :func:`xcloudfree.remove`; without it the mask is computed with
        :func:`xcloudfree.mask_classes`.
    time
        Dates to show; default: up to ``max_dates`` of the most partly cloudy.
    max_dates
        How many dates to show when ``time`` is not given.
    vmax
        Reflectance shown as white.
    bands
        Bands shown as red, green, blue (default true colour); e.g.
        ``("B08", "B04", "B03")`` for false colour.
    quality
        Add a column with the result's ``quality`` (0-1).
    scale, offset
        For integer DN input, as in :func:`xcloudfree.remove`.

    Returns
    -------
    matplotlib.figure.Figure
        In Jupyter (inline backend) it is shown once, as the cell's value.

    Examples
    --------
    >>> import xcloudfree
    >>> cube = xcloudfree.datasets.sample_timeseries().isel(time=slice(0, 6))
    >>> fig = plot(cube, max_dates=2)
    >>> len(fig.axes)
    4
    """
    import matplotlib.pyplot as plt

    if cube is None and result is None:
        raise OptionError("plot() needs a cube, a result of remove(), or both")
    if quality and (result is None or "quality" not in result):
        raise OptionError("quality=True needs a result of remove() (it holds quality)")
    if cube is not None:
        cube = as_cube(cube, scale=scale, offset=offset)
    if result is None:
        from .masking import mask_classes

        classes = mask_classes(cube, progress=False)
    else:
        classes = result
    mask = classes["cloud_mask"]
    if "mask_class" in classes:
        codes = classes["mask_class"]
    else:  # a result filled with a user's bool mask
        codes = mask.astype(np.uint8)
    base = cube if cube is not None else result["reflectance"]
    index = _pick_dates(base, mask, time, max_dates)
    ncols = 2 + (result is not None and cube is not None) + bool(quality)
    fig, axes = plt.subplots(
        len(index), ncols, figsize=(3.2 * ncols, 3.2 * len(index)), squeeze=False
    )
    before = rgb(base.isel(time=index), vmax=vmax, bands=bands).values
    shown_mask = np.asarray(mask.isel(time=index).values)
    shown_codes = np.asarray(codes.isel(time=index).values)
    after = (
        rgb(result["reflectance"].isel(time=index), vmax=vmax, bands=bands).values
        if result is not None and cube is not None
        else None
    )
    label = "input" if cube is not None else result.attrs.get("method", "result")
    for row, t in enumerate(index):
        date = str(base["time"].values[t])[:10]
        overlay = class_overlay(shown_codes[row])
        panels = [(before[row], f"{date} {label}"), (before[row], "cloud mask")]
        if after is not None:
            panels.append((after[row], f"{result.attrs.get('method', 'result')}"))
        for col, (img, title) in enumerate(panels):
            ax = axes[row, col]
            ax.imshow(np.nan_to_num(img))
            if col == 1:
                ax.imshow(overlay)
                title = f"cloud mask ({shown_mask[row].mean():.0%})"
            ax.set_title(title, fontsize=9)
            ax.set_axis_off()
        if quality:
            ax = axes[row, -1]
            shown = ax.imshow(result["quality"].isel(time=t).values, vmin=0, vmax=1)
            ax.set_title("quality", fontsize=9)
            ax.set_axis_off()
            fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
    fig.tight_layout()
    return _hand_over(fig)


def _hand_over(fig: Figure) -> Figure:
    """Return a figure that Jupyter shows once.

    The inline backend shows every open pyplot figure at the end of a cell *and*
    the cell's value, so a returned figure appeared twice: closing it there leaves
    the returned value alone. Elsewhere it stays open for ``plt.show()``.
    """
    import matplotlib
    import matplotlib.pyplot as plt

    if "inline" in matplotlib.get_backend():
        plt.close(fig)
    return fig
