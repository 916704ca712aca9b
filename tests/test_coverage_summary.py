"""The coverage summary of the studies (studies/coverage_solver.py, used by coverage_pinn.py)."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "studies"))
from coverage_solver import coverage_summary  # noqa: E402


def _rows(hat, halfwidth, truth=1.0):
    return [{"D_true": truth, "D_hat": h, "D_profile_lo": h - halfwidth,
             "D_profile_hi": h + halfwidth, "seconds": 1.0} for h in hat]


def test_bias_diagnostics_separate_a_shifted_estimator_from_narrow_intervals():
    rng = np.random.default_rng(0)
    sd = 0.05
    z = rng.standard_normal(2000)
    # biased by -10% (2 sd) with intervals of +-3 sd: covers when z > -1 (0.84), all misses
    # with the truth above, every interval covers once the bias is removed
    out = coverage_summary(_rows(0.9 + sd * z, 3 * sd), ("D",), ("profile",))
    assert out["D_rel_bias"] == pytest.approx(-0.1, abs=0.005)
    assert out["D_profile_coverage"] == pytest.approx(0.841, abs=0.025)
    assert out["D_profile_truth_below"] == 0 and out["D_profile_truth_above"] > 0
    assert out["D_profile_halfwidth_over_sd"] == pytest.approx(3.0, rel=0.05)
    assert out["D_profile_coverage_bias_removed"] > 0.99
    # unbiased with +-1.96 sd: 95% either way
    out = coverage_summary(_rows(1.0 + sd * z, 1.96 * sd), ("D",), ("profile",))
    assert out["D_profile_coverage"] == pytest.approx(0.95, abs=0.015)
    assert out["D_profile_coverage_bias_removed"] == pytest.approx(0.95, abs=0.015)
    assert out["D_profile_halfwidth_over_sd"] == pytest.approx(1.96, rel=0.05)
    assert out["D_profile_mcse"] == pytest.approx(np.sqrt(0.95 * 0.05 / 2000), rel=0.2)
