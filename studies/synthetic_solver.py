"""Solver MLE on the bundled synthetic datasets: accuracy against the known truth, and time.

* 1-D, 5% Gaussian noise (8 times x 25 sites = 200 observations): all 7 parameters fitted;
  profile intervals for D, r; wall time of the fit and of fit + profiles (D, r).
* 1-D scattered Poisson counts (kappa = 50 known).
* 2-D, 300 sparse Poisson counts (kappa = 10 known), r linked to one covariate (elevation):
  D, r, r_elevation, gamma and the introduction fitted.

Writes studies/results/synthetic_solver.json. Times include JAX compilation (first fit of each
structure in the process) and are reported separately for a second, warm fit.

    python studies/synthetic_solver.py
"""

import json
import time
import warnings
from pathlib import Path

import physreg
from physreg.likelihoods import Poisson

OUT = Path(__file__).parent / "results"


def run(name, ds, cov=None, profile=("D", "r"), **kw):
    truth = physreg.datasets.truth_of(ds)
    out = {"dataset": name, "n_obs": int(ds["density"].count())}
    for phase in ("cold", "warm"):
        est = physreg.SolverEstimator(initial="gaussian", t0=float(ds.attrs.get("t0", 0.0)),
                                      **kw)
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            est.fit(ds, covariates=cov)
            t_fit = time.perf_counter() - t0
            ci = est.confidence_intervals(method="profile", params=list(profile))
        out[f"{phase}_fit_seconds"] = t_fit
        out[f"{phase}_fit_profile_seconds"] = time.perf_counter() - t0
    out["warnings"] = sorted({str(x.message)[:120] for x in w})
    out["converged"] = est.converged_
    out["params"] = {}
    for p in est.params_.param.values:
        p = str(p)
        v = float(est.params_.sel(param=p))
        row = {"estimate": v, "truth": truth.get(p)}
        if truth.get(p):
            row["rel_error"] = v / truth[p] - 1
        if p in profile:
            row["profile"] = [float(x) for x in ci.sel(param=p).values]
        out["params"][p] = row
    print(json.dumps(out, indent=1), flush=True)
    return out


def main():
    OUT.mkdir(exist_ok=True)
    res = []

    def save(out):  # after every dataset, so a long 2-D run does not lose the 1-D results
        res.append(out)
        (OUT / "synthetic_solver.json").write_text(json.dumps(res, indent=1))

    save(run("fkpp1d_gaussian", physreg.datasets.load_example("fkpp1d_gaussian"), grid=128))
    save(run("fkpp1d_scattered_poisson",
             physreg.datasets.load_example("fkpp1d_scattered_poisson"),
             likelihood=Poisson(kappa=50.0), grid=128))
    obs, cov = physreg.datasets.load_example("fkpp2d_poisson")
    save(run("fkpp2d_poisson", obs, cov, profile=("D", "r", "r_elevation"),
             likelihood=Poisson(kappa=10.0), growth_covariates=("elevation",), grid=(24, 40)))


if __name__ == "__main__":
    main()
