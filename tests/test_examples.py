"""Every example script runs offline on the embedded sample."""

from __future__ import annotations

import runpy
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("plot_*.py"))


def _finite_where_given(out, cube) -> bool:
    given = np.isfinite(cube.values)
    return bool(np.isfinite(out.reflectance.values[given]).all())


#: What each gallery page shows, checked on what the script leaves behind.
SHOWS = {
    "plot_dask_chunked.py": lambda g: (
        g["lazy"].reflectance.chunks is not None and g["diff"] < 1e-6  # lazy equals eager
    ),
    "plot_errors_and_ablation.py": lambda g: (
        set(g["table"].index) == set(g["runs"])
        and bool((g["table"]["psnr_masked"] > 20).all())
        # the guarded hybrid is never below both the regression and the unguarded networks
        and g["table"].loc["hybrid", "psnr_masked"]
        >= g["table"].loc[["regression", "hybrid, no guard"], "psnr_masked"].min() - 0.05
    ),
    "plot_expected_error.py": lambda g: (
        g["rho"] > 0.3  # ranks the real error (the old gap quality: 0.04)
        and g["calibration"]["real"].iloc[-1] > 2 * g["calibration"]["real"].iloc[0]
    ),
    "plot_finetune.py": lambda g: (
        list(dict.fromkeys(g["history"]["phase"])) == ["stgan", "cyclegan", "joint"]
        and _finite_where_given(g["out"], g["region"].isel(time=slice(10, 16)))
    ),
    "plot_mask.py": lambda g: (
        g["codes"].shape == (30, 256, 256)
        and set(np.unique(g["codes"])) <= {0, 1, 2, 3, 4, 255}
        and 0.2 < float(g["masks"]["cloud_mask"].mean()) < 0.8  # a real mix of dates
        and _finite_where_given(g["out"], g["cube"])
    ),
    "plot_pixel_timeseries.py": lambda g: (
        bool(g["cloudy"].any()) and bool(((g["out"].quality >= 0) & (g["out"].quality <= 1)).all())
    ),
    "plot_quickstart.py": lambda g: (
        len(g["fig"].axes) == 9 and _finite_where_given(g["result"], g["cube"].compute())
    ),
}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_and_shows_what_it_says(path, monkeypatch):
    monkeypatch.setattr(plt, "show", lambda: None)
    found = runpy.run_path(str(path), run_name="__main__")
    plt.close("all")
    assert SHOWS[path.name](found), path.name


def test_every_example_has_a_check():
    assert sorted(SHOWS) == sorted(p.name for p in EXAMPLES)


def test_there_are_examples():
    assert EXAMPLES


def _python_blocks(path: Path) -> list[str]:
    text = path.read_text()
    return [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]


def test_getting_started_runs_to_written_composites_without_a_warning(tmp_path, monkeypatch):
    """The offline walk of the getting-started page, as a new user would paste it."""
    import warnings

    page = Path(__file__).resolve().parents[1] / "docs" / "getting_started.md"
    block = next(b for b in _python_blocks(page) if "sample_timeseries" in b)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(plt, "show", lambda: None)
    with warnings.catch_warnings():
        # Every warning a user would see is an error. (Pending)DeprecationWarnings of
        # libraries are hidden from users by Python's default filters (rioxarray's use of
        # affine raises one when it writes a GeoTIFF).
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(?!__main__)")
        exec(compile(block, str(page), "exec"), {"__name__": "__main__"})
    plt.close("all")
    assert (tmp_path / "spring.zarr").is_dir()
    months = sorted(p.name for p in (tmp_path / "monthly").glob("reflectance_*.tif"))
    assert months == [f"reflectance_2018-0{m}-01.tif" for m in (3, 4, 5)]
    assert (tmp_path / "monthly" / "count.tif").is_file()
