"""Every example script runs offline on the embedded sample."""

from __future__ import annotations

import runpy
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("plot_*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path, monkeypatch):
    monkeypatch.setattr(plt, "show", lambda: None)
    runpy.run_path(str(path), run_name="__main__")
    plt.close("all")


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
