"""Solver MLE on replicates of the 2-D covariate + sparse Poisson case: bias, RMSE, Wald coverage.

The bundled 2-D dataset (``studies/synthetic_solver.py 2d``) is one draw; whether an error of a
coefficient there is bias or noise needs replicates. Each replicate: fresh data from
``physreg.datasets.make_fisher_kpp_2d(random_state=seed)`` (60 sites x 5 times, Poisson counts
with kappa = 10 known, r(x) = r + r_elevation z(x) with a fresh random covariate field),
every parameter fitted (D, r, r_elevation, gamma, the introduction's centre, width and mass) on a
24 x 40 grid with the RKC stepper (D box (0.05, 20)), Wald 95% intervals.

Rows are appended to studies/results/replicates_solver_2d.csv (rerunning resumes); the summary
(relative bias, relative RMSE, median relative Wald SE, Wald coverage with Monte Carlo SE) goes
to studies/results/replicates_solver_2d_summary.json.

    python studies/replicates_solver_2d.py --n-rep 40
    python studies/replicates_solver_2d.py --n-rep 20 --n-sites 240   # 4x the sites
"""

import argparse
import csv
import json
import time
import warnings
from pathlib import Path

import numpy as np

import physreg
from physreg.likelihoods import Poisson

OUT = Path(__file__).parent / "results"
CSV = OUT / "replicates_solver_2d.csv"
PARAMS = ("D", "r", "r_elevation", "gamma")


def replicate(seed, n_sites=60):
    obs, cov = physreg.datasets.make_fisher_kpp_2d(n_sites=n_sites, random_state=seed)
    truth = physreg.datasets.truth_of(obs)
    est = physreg.SolverEstimator(initial="gaussian", t0=float(obs.attrs.get("t0", 0.0)),
                                  likelihood=Poisson(kappa=10.0),
                                  growth_covariates=("elevation",), grid=(24, 40),
                                  bounds={"D": (0.05, 20.0)}, n_starts=2, random_state=seed)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        est.fit(obs, covariates=cov)
        ci = est.confidence_intervals(method="wald")
    row = {"seed": seed, "seconds": time.perf_counter() - t0, "converged": est.converged_,
           "n_iter": est.n_iter_}
    for p in PARAMS:
        row[f"{p}_true"] = truth[p]
        row[f"{p}_hat"] = float(est.params_.sel(param=p))
        row[f"{p}_lo"], row[f"{p}_hi"] = (float(v) for v in ci.sel(param=p).values)
    return row


def summarize(CSV=CSV):
    with open(CSV) as f:
        rows = list(csv.DictReader(f))
    n = len(rows)
    out = {"n_replicates": n,
           "n_converged": sum(r["converged"] == "True" for r in rows),
           "median_seconds": float(np.median([float(r["seconds"]) for r in rows]))}
    for p in PARAMS:
        true = np.array([float(r[f"{p}_true"]) for r in rows])
        hat = np.array([float(r[f"{p}_hat"]) for r in rows])
        lo = np.array([float(r[f"{p}_lo"]) for r in rows])
        hi = np.array([float(r[f"{p}_hi"]) for r in rows])
        rel = hat / true - 1
        c = float(np.mean((lo <= true) & (true <= hi)))
        out[p] = {"rel_bias": float(rel.mean()), "rel_bias_mcse": float(rel.std(ddof=1) / np.sqrt(n)),
                  "rel_rmse": float(np.sqrt(np.mean(rel**2))),
                  "max_abs_rel_error": float(np.max(np.abs(rel))),
                  "fraction_within_10pct": float(np.mean(np.abs(rel) <= 0.10)),
                  "median_rel_wald_se": float(np.median((hi - lo) / (2 * 1.959964) / np.abs(true))),
                  "wald_coverage": c, "wald_coverage_mcse": float(np.sqrt(c * (1 - c) / n))}
    (OUT / f"{CSV.stem}_summary.json").write_text(json.dumps(out, indent=1))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-rep", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=2000)
    ap.add_argument("--n-sites", type=int, default=60)
    a = ap.parse_args()
    csv_path = CSV if a.n_sites == 60 else OUT / f"{CSV.stem}_{a.n_sites}sites.csv"
    OUT.mkdir(exist_ok=True)
    done = set()
    if csv_path.exists():
        with open(csv_path) as f:
            done = {int(r["seed"]) for r in csv.DictReader(f)}
    for seed in range(a.first_seed, a.first_seed + a.n_rep):
        if seed in done:
            continue
        row = replicate(seed, a.n_sites)
        new = not csv_path.exists()
        with open(csv_path, "a") as f:
            if new:
                f.write(",".join(row) + "\n")
            f.write(",".join(str(v) for v in row.values()) + "\n")
        print(f"seed {seed}: {row['seconds']:.0f} s  " + "  ".join(
            f"{p} {row[f'{p}_hat']:.3f}" for p in PARAMS), flush=True)
    print(json.dumps(summarize(csv_path), indent=1))


if __name__ == "__main__":
    main()
