"""Per-scene adaptation: learned from the scene's own clear pixels, guarded, chunk-free."""

from __future__ import annotations

import numpy as np
import pytest

import xcloudfree
from xcloudfree import metrics
from xcloudfree.errors import OptionError
from xcloudfree.inference import adaptation

# Held-out clear dates and cloud donors of the sample (no weights or calibration saw
# them), and the dates between them.
TARGETS = ["2018-06-10", "2018-07-30", "2018-08-09", "2018-09-03"]
DONORS = ["2018-03-07", "2018-09-18"]


@pytest.fixture(scope="module")
def case(sample):
    series = sample.sel(time=slice("2018-03-07", "2018-09-18"))
    return xcloudfree.simulate_clouds(series, targets=TARGETS, donors=DONORS, seed=0)


def _psnr(out, sim):
    pick = {"time": sim.targets}
    return float(
        metrics.psnr(out.reflectance.sel(pick), sim.truth.sel(pick), mask=sim.mask.sel(pick))
    )


def test_adapting_to_the_scene_beats_the_regression_on_held_out_dates(case):
    plain = xcloudfree.remove(case.cloudy, method="regression", mask=case.true_mask)
    adapted = xcloudfree.remove(
        case.cloudy, method="regression", mask=case.true_mask, adapt=True, progress=False
    )
    gain = _psnr(adapted, case) - _psnr(plain, case)
    assert gain > 0.2, gain  # measured +0.45 dB on the whole series
    assert adapted.attrs["adaptation"].startswith("per-scene")
    # Observed pixels are untouched, and the expected error is lower where it learned.
    clear = ~adapted.cloud_mask.values
    np.testing.assert_array_equal(
        np.moveaxis(adapted.reflectance.values, 1, 0)[:, clear],
        np.moveaxis(case.cloudy.values, 1, 0)[:, clear],
    )
    assert float(adapted.expected_error.mean()) < float(plain.expected_error.mean())


def test_the_correction_is_learned_once_so_chunks_do_not_change_it(case, monkeypatch):
    monkeypatch.setattr(adaptation, "STEPS", 20)
    eager = xcloudfree.remove(case.cloudy, method="regression", mask=case.true_mask, adapt=True)
    lazy = xcloudfree.remove(
        case.cloudy.chunk(y=100, x=90), method="regression",
        mask=case.true_mask.chunk(y=100, x=90), adapt=True,
    )  # fmt: skip
    assert lazy.reflectance.chunks is not None
    lazy = lazy.compute()
    np.testing.assert_allclose(lazy.reflectance, eager.reflectance, atol=1e-6)
    np.testing.assert_allclose(lazy.quality, eager.quality, atol=1e-6)


def test_dates_with_nothing_to_fill_get_no_correction(case, monkeypatch):
    monkeypatch.setattr(adaptation, "STEPS", 5)
    data = case.cloudy.values.astype("float32")
    mask = case.true_mask.values
    need = np.zeros(len(data), bool)
    need[2] = True
    from xcloudfree.fills.baselines import _days, _pair_stats, _valid

    stats = _pair_stats(data, _valid(data, mask))
    rows = adaptation.fit_adapters([data], [mask], need, stats, days=_days(case.cloudy.time.values))
    assert rows.shape == (len(data), adaptation.n_parameters(data.shape[1]) + 2)
    assert np.isnan(np.delete(rows, 2, axis=0)).all()


@pytest.mark.parametrize("method", ["median", "nearest", "interpolate"])
def test_adapt_with_a_fill_it_cannot_correct_is_refused(small, method):
    with pytest.raises(OptionError, match="adapt="):
        xcloudfree.remove(small, method=method, adapt=True)


def test_training_windows_spread_over_the_region():
    assert adaptation.training_windows((100, 90)) == [(slice(0, 100), slice(0, 90))]
    wins = adaptation.training_windows((1000, 300))
    assert len(wins) == adaptation.WINDOWS
    assert {w[0].start for w in wins} == {0, 1000 - adaptation.WINDOW}
    assert all(w[0].stop - w[0].start == adaptation.WINDOW for w in wins)
