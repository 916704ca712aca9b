"""Solver MLE on the Jin et al. (2016) PC-3 scratch assays, compared with published estimates.

Fisher-KPP du/dt = D u_xx + r u (1 - u/K) with K = 1.7e-3 cells/um^2 fixed, no-flux ends on
[0, 1900] um, the t = 0 profile as initial condition (interpolated), two observation models:
  * "sd":    Gaussian with the reported standard deviation of each bin (3 replicates) floored at
             5% of K (some bins report sd ~ 0);
  * "sigma": Gaussian with one fitted sigma.
Profile-likelihood 95% intervals for D and r. Writes studies/results/jin2016_solver.{csv,json,png}.

    PHYSREG_DATA_HOME=../shared/data python studies/jin2016_solver.py
"""

import json
import time
import warnings
from pathlib import Path

import physreg
from physreg.likelihoods import Gaussian

OUT = Path(__file__).parent / "results"
K = 1.7e-3


def fit_one(ds, lik, name):
    extras = {"sd": "density_sd"} if lik.use_sd else None
    est = physreg.SolverEstimator(likelihood=lik, competition="K", fixed={"K": K},
                                  initial="first", extras=extras, n_starts=4)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        est.fit(ds)
        ci = est.confidence_intervals(method="profile", params=["D", "r"])
        wald = est.confidence_intervals(method="wald")
    elapsed = time.perf_counter() - t0
    return est, ci, wald, elapsed, [str(x.message) for x in w]


def main():
    OUT.mkdir(exist_ok=True)
    refs = physreg.datasets.load_jin2016_reference()
    rows = []
    fits = {}
    for dens in (12000, 16000, 20000):
        ds = physreg.datasets.load_jin2016(dens)
        for name, lik in (("sd", Gaussian(use_sd=True, sd_floor=0.05 * K)), ("sigma", Gaussian())):
            est, ci, wald, elapsed, warns = fit_one(ds, lik, name)
            fits[(dens, name)] = est
            ref = {r["source"].split("_")[0]: r for r in refs
                   if r["initial_density"] == dens and r["model"] == "FKPP"}
            for p in ("D", "r"):
                v = float(est.params_.sel(param=p))
                row = dict(initial_density=dens, likelihood=name, param=p, estimate=v,
                           profile_lower=float(ci.sel(param=p, bound="lower")),
                           profile_upper=float(ci.sel(param=p, bound="upper")),
                           wald_lower=float(wald.sel(param=p, bound="lower")),
                           wald_upper=float(wald.sel(param=p, bound="upper")),
                           seconds=elapsed, converged=est.converged_, nll=est.nll_)
                for src, r in ref.items():
                    row[f"ref_{src}"] = r[p]
                    row[f"rel_diff_{src}"] = v / r[p] - 1
                rows.append(row)
                print({k: (round(x, 5) if isinstance(x, float) else x) for k, x in row.items()},
                      flush=True)
            if warns:
                print("  warnings:", warns)
    keys = sorted({k for r in rows for k in r}, key=lambda k: list(rows[0]).index(k)
                  if k in rows[0] else 99)
    with open(OUT / "jin2016_solver.csv", "w") as f:
        f.write(",".join(keys) + "\n")
        for r in rows:
            f.write(",".join(str(r.get(k, "")) for k in keys) + "\n")
    (OUT / "jin2016_solver.json").write_text(json.dumps(rows, indent=1))
    from physreg import plotting

    for (dens, name), est in fits.items():
        if name == "sd":
            fig = plotting.plot_fit(est, None)
            fig.savefig(OUT / f"jin2016_solver_fit_{dens}.png", dpi=100)


if __name__ == "__main__":
    main()
