"""Coverage of the solver MLE's 95% intervals (Wald, profile, bootstrap) on the 1-D yardstick case.

Each replicate: fresh data from ``physreg.datasets.make_fisher_kpp_1d(random_state=seed)``
(8 times x 25 sites, 5% Gaussian noise, D = 0.1, r = 1, gamma = 1, Gaussian introduction at a
known date; data simulated on a 512-cell grid), a fit of all 7 parameters (D, r, gamma, the
introduction's centre, width and mass, sigma) on the estimator's grid, then Wald, profile (D, r)
and parametric-bootstrap percentile intervals (n_boot refits each). Coverage is the fraction of
replicates whose interval contains the truth, with its Monte Carlo standard error
sqrt(c (1 - c) / n).

Rows are appended to studies/results/coverage_solver.csv as replicates finish (rerunning resumes);
the summary goes to studies/results/coverage_solver_summary.json.

    python studies/coverage_solver.py --n-rep 200 --n-boot 100
"""

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

import physreg

OUT = Path(__file__).parent / "results"
CSV = OUT / "coverage_solver.csv"
PARAMS = ("D", "r")
METHODS = ("wald", "profile", "bootstrap")


def replicate(seed, n_boot, grid):
    ds = physreg.datasets.make_fisher_kpp_1d(random_state=seed)
    truth = physreg.datasets.truth_of(ds)
    est = physreg.SolverEstimator(initial="gaussian", t0=float(ds.attrs["t0"]), grid=grid,
                                  n_starts=2, tol=1e-7, random_state=seed)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        est.fit(ds)
        cis = {
            "wald": est.confidence_intervals(method="wald"),
            "profile": est.confidence_intervals(method="profile", params=list(PARAMS)),
            "bootstrap": est.confidence_intervals(method="bootstrap", n_boot=n_boot),
        }
    row = {"seed": seed, "seconds": time.perf_counter() - t0, "converged": est.converged_}
    for p in PARAMS:
        row[f"{p}_true"] = truth[p]
        row[f"{p}_hat"] = float(est.params_.sel(param=p))
        for m, ci in cis.items():
            lo, hi = (float(v) for v in ci.sel(param=p).values)
            row[f"{p}_{m}_lo"], row[f"{p}_{m}_hi"] = lo, hi
    return row


def coverage_summary(rows, params=PARAMS, methods=METHODS) -> dict:
    """Relative bias and RMSE of each parameter, and per interval method the coverage, its
    Monte Carlo standard error sqrt(c (1 - c) / n), the median relative width and the number of
    open intervals (an end at 0 or +-inf; they count as covering in the coverage, and the
    coverage among the closed ones is given too) (also used by studies/coverage_pinn.py).

    Two diagnostics of *why* a coverage misses (they use the truth, so they are not interval
    methods): ``{p}_{m}_coverage_bias_removed``, the coverage of the intervals divided by
    ``1 + relative bias`` (the mean over the replicates): what the same widths would give
    without the estimator's bias; and ``{p}_{m}_halfwidth_over_sd``, the median half-width
    over the replicates' standard deviation of the estimate (1.96 for a well-sized 95%
    interval)."""
    n = len(rows)
    out = {"n_replicates": n}
    for p in params:
        true = np.array([float(r[f"{p}_true"]) for r in rows])
        hat = np.array([float(r[f"{p}_hat"]) for r in rows])
        out[f"{p}_rel_bias"] = float(np.mean(hat / true - 1))
        out[f"{p}_rel_rmse"] = float(np.sqrt(np.mean((hat / true - 1) ** 2)))
        bias = out[f"{p}_rel_bias"]
        sd = float(np.std(hat, ddof=1)) if n > 1 else float("nan")
        for m in methods:
            lo = np.array([float(r[f"{p}_{m}_lo"]) for r in rows])
            hi = np.array([float(r[f"{p}_{m}_hi"]) for r in rows])
            c = float(np.mean((lo <= true) & (true <= hi)))
            out[f"{p}_{m}_coverage"] = c
            out[f"{p}_{m}_mcse"] = float(np.sqrt(c * (1 - c) / n))
            out[f"{p}_{m}_median_rel_width"] = float(np.median((hi - lo) / true))
            # open profiles are reported with the natural limit (0 or +-inf) at the open end
            is_open = ~np.isfinite(lo) | ~np.isfinite(hi) | (lo <= 0)
            out[f"{p}_{m}_n_open"] = int(is_open.sum())
            out[f"{p}_{m}_truth_above"] = int((hi < true).sum())
            out[f"{p}_{m}_truth_below"] = int((lo > true).sum())
            out[f"{p}_{m}_coverage_closed_only"] = (
                float(np.mean(((lo <= true) & (true <= hi))[~is_open])) if (~is_open).any()
                else float("nan"))
            lo_b, hi_b = lo / (1 + bias), hi / (1 + bias)
            out[f"{p}_{m}_coverage_bias_removed"] = float(np.mean((lo_b <= true) & (true <= hi_b)))
            out[f"{p}_{m}_halfwidth_over_sd"] = float(np.median(hi - lo) / 2 / sd)
    out["median_seconds_per_replicate"] = float(np.median([float(r["seconds"]) for r in rows]))
    return out


def summarize():
    import csv

    with open(CSV) as f:
        rows = list(csv.DictReader(f))
    out = coverage_summary(rows)
    (OUT / "coverage_solver_summary.json").write_text(json.dumps(out, indent=1))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-rep", type=int, default=200)
    ap.add_argument("--n-boot", type=int, default=100)
    ap.add_argument("--grid", type=int, default=64)
    ap.add_argument("--first-seed", type=int, default=1000)
    a = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    done = set()
    if CSV.exists():
        import csv

        with open(CSV) as f:
            done = {int(r["seed"]) for r in csv.DictReader(f)}
    for seed in range(a.first_seed, a.first_seed + a.n_rep):
        if seed in done:
            continue
        row = replicate(seed, a.n_boot, a.grid)
        new = not CSV.exists()
        with open(CSV, "a") as f:
            if new:
                f.write(",".join(row) + "\n")
            f.write(",".join(str(v) for v in row.values()) + "\n")
        print(f"seed {seed}: {row['seconds']:.1f} s  D {row['D_hat']:.4f}  r {row['r_hat']:.4f}",
              flush=True)
    print(json.dumps(summarize(), indent=1))


if __name__ == "__main__":
    main()
