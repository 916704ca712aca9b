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


def test_share_within_5pct_and_rmse_ratio_against_the_solver(tmp_path, monkeypatch):
    import csv

    import pinn_bias_correction as pbc

    # four seeds; the PINN's D off by -8%, -2%, -12%, +1%, its estimated log bias -0.05 each;
    # the solver's off by +3%, -6%, 0%, +2%; r exact everywhere. A fifth PINN seed has no
    # solver row and is left out.
    d_err, s_err = [-0.08, -0.02, -0.12, 0.01, 0.5], [0.03, -0.06, 0.0, 0.02]
    rows = [{"seed": 10 + i, "D_true": 0.1, "D_hat": 0.1 * (1 + e), "D_log_bias": -0.05,
             "r_true": 1.0, "r_hat": 1.0, "r_log_bias": 0.0} for i, e in enumerate(d_err)]
    solver_csv = tmp_path / "solver.csv"
    with open(solver_csv, "w", newline="") as f:
        w = csv.DictWriter(f, ["seed", "D_hat", "r_hat"])
        w.writeheader()
        w.writerows({"seed": 10 + i, "D_hat": 0.1 * (1 + e), "r_hat": 1.0}
                    for i, e in enumerate(s_err))
    monkeypatch.setattr(pbc, "SOLVER_CSV", solver_csv)
    out = {}
    pbc._against_solver(out, [{k: str(v) for k, v in r.items()} for r in rows])
    assert out["n_with_solver"] == 4
    assert out["D_uncorrected_within_5pct"] == 0.5          # -2% and +1%
    corrected = (1 + np.array(d_err[:4])) * np.exp(0.05) - 1  # -3.4%, +3.0%, -7.5%, +6.2%
    assert out["D_corrected_within_5pct"] == 0.5
    assert out["D_solver_within_5pct"] == 0.75
    rmse_solver = np.sqrt(np.mean(np.square(s_err)))
    assert out["D_solver_rel_rmse_same_seeds"] == pytest.approx(rmse_solver)
    assert out["D_corrected_rmse_ratio_to_solver"] == pytest.approx(
        np.sqrt(np.mean(corrected ** 2)) / rmse_solver)
    assert out["D_uncorrected_rmse_ratio_to_solver"] == pytest.approx(
        np.sqrt(np.mean(np.square(d_err[:4]))) / rmse_solver)
    assert out["r_uncorrected_within_5pct"] == 1.0
    assert np.isnan(out["r_corrected_rmse_ratio_to_solver"])   # the solver's r is exact


def test_2d_replicates_summary_of_two_rounds(tmp_path, monkeypatch):
    import csv

    import pinn_replicates_2d as rep

    monkeypatch.setattr(rep, "OUT", tmp_path)
    monkeypatch.setattr(rep, "SOLVER_CSV", tmp_path / "solver.csv")
    truth = {"D": 1.0, "r": 1.0, "r_elevation": -0.3, "gamma": 1.0}
    # seed 1: all four within 10% after round 2 only; seed 2: D 20% low throughout
    errs = {1: {"hat": -0.3, "round1": -0.15, "corrected": 0.05},
            2: {"hat": -0.2, "round1": -0.2, "corrected": -0.2}}
    rows = []
    for seed, e in errs.items():
        row = {"seed": seed, "n_sim": 2, "seconds": 10.0, "fit_seconds": 3.0}
        for p, t in truth.items():
            row[f"{p}_true"] = t
            for k in ("hat", "round1", "corrected"):
                row[f"{p}_{k}"] = t * (1 + (e[k] if p == "D" else 0.02))
        row["ic_width_hat"] = 0.5 if seed == 1 else 20.0    # seed 2 collapsed: D 0.8, T 8
        rows.append(row)
    with open(rep.csv_path(2), "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with open(tmp_path / "solver.csv", "w", newline="") as f:   # the solver 8% high
        w = csv.DictWriter(f, ["seed"] + [f"{p}_hat" for p in truth])
        w.writeheader()
        w.writerows({"seed": s, **{f"{p}_hat": 1.08 * t for p, t in truth.items()}}
                    for s in errs)
    out = rep.summarize(2)
    assert rep.csv_path(2).name == "pinn_replicates_2d_rounds2.csv"
    assert (tmp_path / "pinn_replicates_2d_rounds2_summary.json").exists()
    assert out["n_rounds"] == 2 and out["n_replicates"] == 2 and out["n_with_solver"] == 2
    assert out["D_fit_rel_bias"] == pytest.approx(-0.25)
    assert out["D_round1_rel_bias"] == pytest.approx(-0.175)
    assert out["D_corrected_rel_rmse"] == pytest.approx(np.sqrt((0.05 ** 2 + 0.2 ** 2) / 2))
    assert out["all_fit_within_10pct"] == 0.0
    assert out["all_corrected_within_10pct"] == 0.5
    assert out["r_elevation_round1_within_10pct"] == 1.0
    assert out["D_corrected_median_abs_rel_error"] == pytest.approx(0.125)
    assert out["collapsed_seeds"] == [2]      # sqrt(4 * 0.8 * 8) = 5.1 < 10
    assert out["D_corrected_rmse_ratio_to_solver"] == pytest.approx(
        np.sqrt((0.05 ** 2 + 0.2 ** 2) / 2) / 0.08)
    assert out["D_corrected_rmse_ratio_to_solver_without_collapsed"] == pytest.approx(0.625)
    assert out["all_solver_within_10pct"] == 1.0
