"""Solver MLE on the bundled synthetic datasets: accuracy against the known truth, and time.

* 1-D, 5% Gaussian noise (8 times x 25 sites = 200 observations): all 7 parameters fitted;
  profile intervals for D, r; wall time of the fit and of fit + profiles (D, r).
* 1-D scattered Poisson counts (kappa = 50 known).
* 2-D, 300 sparse Poisson counts (kappa = 10 known), r linked to one covariate (elevation):
  D, r, r_elevation, gamma and the introduction fitted.

Writes studies/results/synthetic_solver.json. Times include JAX compilation (first fit of each
structure in the process) and are reported separately for a second, warm fit. Wall times on a
shared machine depend on its load (recorded); the process CPU time (all threads) does not, and
bounds the wall time the same work takes on an idle machine with one core.

    python studies/synthetic_solver.py [1d] [2d]
"""

import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import physreg
from physreg.likelihoods import Poisson

OUT = Path(__file__).parent / "results"


def run(name, ds, cov=None, profile=("D", "r"), phases=("cold", "warm"), **kw):
    truth = physreg.datasets.truth_of(ds)
    out = {"dataset": name, "n_obs": int(ds["density"].count())}
    for phase in phases:
        est = physreg.SolverEstimator(initial="gaussian", t0=float(ds.attrs.get("t0", 0.0)),
                                      **kw)
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            est.fit(ds, covariates=cov)
            t_fit = time.perf_counter() - t0
            ci = est.confidence_intervals(method="profile", params=list(profile))
            t_prof = time.perf_counter() - t0
            c_prof = time.process_time() - c0
            wald = est.confidence_intervals(method="wald")
        out[f"{phase}_fit_seconds"] = t_fit
        out[f"{phase}_fit_profile_seconds"] = t_prof
        out[f"{phase}_fit_profile_cpu_seconds"] = c_prof  # all threads of this process
        out[f"{phase}_load_average"] = os.getloadavg()[0]
    out["solver"] = est.solver_.plan(np.asarray(est.problem_.t_save), float(est.problem_.t0))
    out["n_iter"] = est.n_iter_
    out["warnings"] = sorted({str(x.message)[:120] for x in w})
    out["converged"] = est.converged_
    out["params"] = {}
    for p in est.params_.param.values:
        p = str(p)
        v = float(est.params_.sel(param=p))
        row = {"estimate": v, "truth": truth.get(p),
               "wald": [float(x) for x in wald.sel(param=p).values]}
        if truth.get(p):
            row["rel_error"] = v / truth[p] - 1
        if p in profile:
            row["profile"] = [float(x) for x in ci.sel(param=p).values]
        out["params"][p] = row
    print(json.dumps(out, indent=1), flush=True)
    return out


def main():
    OUT.mkdir(exist_ok=True)
    path = OUT / "synthetic_solver.json"

    def save(out):  # after every dataset, replacing that dataset's entry in the file
        res = json.loads(path.read_text()) if path.exists() else []
        res = [r for r in res if r["dataset"] != out["dataset"]] + [out]
        path.write_text(json.dumps(res, indent=1))

    only = sys.argv[1:]
    if not only or "1d" in only:
        save(run("fkpp1d_gaussian", physreg.datasets.load_example("fkpp1d_gaussian"),
                 grid=128))
        save(run("fkpp1d_scattered_poisson",
                 physreg.datasets.load_example("fkpp1d_scattered_poisson"),
                 likelihood=Poisson(kappa=50.0), grid=128))
    if not only or "2d" in only:
        # 2-D: a user's box for D (km^2 / yr) lets the solver use its RKC stepper; one
        # (cold) run, the warm repeat would double an already long study
        obs, cov = physreg.datasets.load_example("fkpp2d_poisson")
        save(run("fkpp2d_poisson", obs, cov, profile=("D", "r", "r_elevation"),
                 phases=("cold",), likelihood=Poisson(kappa=10.0),
                 growth_covariates=("elevation",), grid=(24, 40), bounds={"D": (0.05, 20.0)},
                 n_starts=2))


if __name__ == "__main__":
    main()
