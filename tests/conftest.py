"""Shared fixtures: the embedded sample, and the real data beside the clone when present."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SKIP_REASON = (
    f"needs the real Sentinel-2 data in {SHARED_DATA} (../shared/data beside the clone, "
    "present in CI); the core suite runs on the embedded sample"
)


def shared_data(*parts: str) -> Path:
    """Path under ../shared/data, skipping the test when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(SKIP_REASON)
    return path


@pytest.fixture(scope="session")
def sample():
    import xcloudfree

    return xcloudfree.datasets.sample_timeseries()


@pytest.fixture(scope="session")
def small(sample):
    """Six dates (clear, partly cloudy) cropped to 64 x 48 px: fast but real."""
    return sample.isel(time=slice(12, 18), y=slice(100, 164), x=slice(60, 108))
