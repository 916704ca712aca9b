"""Time of PINN intervals (bootstrap refits, profiles of D and r) against the solver MLE's.

On one dataset (the bundled 1-D example, or ``make_fisher_kpp_1d(random_state=seed)``), both
estimators with the same initial-condition option are fitted (``--initial heat``: the PINN with
the heat-kernel ansatz, the solver with the Gaussian introduction, t0 known), then

- parametric bootstrap with ``--n-boot`` refits (PINN: warm-started L-BFGS refits of network
  and parameters, one after another, or vmapped in chunks of ``--batch-size``; solver:
  whitened BFGS refits),
- profile intervals of D and r,

each timed (wall clock, compilation included). Results (times, intervals, ratios) are appended
to studies/results/pinn_intervals_timing.jsonl.

    python studies/pinn_intervals_timing.py --n-boot 100
    python studies/pinn_intervals_timing.py --data make --seed 1000 --initial heat --n-boot 100

On seed 1000 with ``--initial heat`` (last row of the results): PINN fit 98 s in a fresh
process, 100 bootstrap refits 383 s (solver 18 s), profiles of D and r 173 s (solver 8.4 s).
Refits one after another are 3.4x faster than vmapped (``benchmarks/bench_pinn_refits.py``);
a vmapped 100-refit bootstrap (``--batch-size 20``) ran past 27 minutes and was stopped.
"""

import argparse
import json
import platform
import time
import warnings
from pathlib import Path

from pinn_vs_solver import pinn_initial  # same folder (run as a script)

import physreg

OUT = Path(__file__).parent / "results"


def timed(fn):
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = fn()
    return out, time.perf_counter() - t


def ci_dict(ci, names=("D", "r")):
    return {n: [float(v) for v in ci.sel(param=n).values] for n in names}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", choices=("bundled", "make"), default="bundled")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--initial", choices=("gaussian", "heat", "first"), default="first")
    ap.add_argument("--n-boot", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=1,
                    help="refits per vmapped program (1: one after another, faster on CPU)")
    ap.add_argument("--refit-lbfgs", type=int, default=500)
    ap.add_argument("--skip", action="append", default=[],
                    help="parts to skip: pinn (all PINN parts), pinn-bootstrap, pinn-profile, "
                         "solver")
    ap.add_argument("--solver-initial", choices=("gaussian", "first"), default=None,
                    help="initial condition of the solver (default: --initial)")
    a = ap.parse_args()
    if a.data == "bundled":
        ds = physreg.datasets.load_example("fkpp1d_gaussian")
    else:
        ds = physreg.datasets.make_fisher_kpp_1d(random_state=a.seed)
    truth = physreg.datasets.truth_of(ds)
    ic = pinn_initial(a.initial, ds)
    row = {"data": a.data, "seed": a.seed, "initial": a.initial, "n_boot": a.n_boot,
           "batch_size": a.batch_size, "refit_lbfgs": a.refit_lbfgs, "host": platform.node(),
           "truth": {k: truth[k] for k in ("D", "r")}}

    if "pinn" in a.skip:
        a.skip += ["pinn-bootstrap", "pinn-profile"]
    else:
        pinn = physreg.PINNEstimator(**ic, refit_lbfgs=a.refit_lbfgs, random_state=a.seed)
        _, row["pinn_fit_seconds"] = timed(lambda: pinn.fit(ds))
        row["pinn_estimate"] = {n: float(pinn.params_.sel(param=n)) for n in ("D", "r")}
        print(json.dumps(row), flush=True)
    if "pinn-bootstrap" not in a.skip:
        ci, row["pinn_bootstrap_seconds"] = timed(lambda: pinn.confidence_intervals(
            method="bootstrap", n_boot=a.n_boot, batch_size=a.batch_size))
        row["pinn_bootstrap"] = ci_dict(ci)
        row["pinn_bootstrap_failed"] = int(pinn.bootstrap_.attrs["n_failed"])
        row["pinn_bootstrap_refit_drift"] = pinn.bootstrap_.attrs["refit_drift"]
        print(json.dumps(row), flush=True)
    if "pinn-profile" not in a.skip:
        ci, row["pinn_profile_seconds"] = timed(lambda: pinn.confidence_intervals(
            method="profile", params=["D", "r"], batch_size=a.batch_size))
        row["pinn_profile"] = ci_dict(ci)
        print(json.dumps(row), flush=True)
    if "solver" not in a.skip:
        s_ini = a.solver_initial or ("gaussian" if a.initial == "heat" else a.initial)
        row["solver_initial"] = s_ini
        s_ic = dict(initial=s_ini, t0=float(ds.attrs["t0"]) if s_ini == "gaussian" else None)
        sol = physreg.SolverEstimator(**s_ic, grid=64, n_starts=2, tol=1e-7, random_state=a.seed)
        _, row["solver_fit_seconds"] = timed(lambda: sol.fit(ds))
        row["solver_estimate"] = {n: float(sol.params_.sel(param=n)) for n in ("D", "r")}
        ci, row["solver_bootstrap_seconds"] = timed(lambda: sol.confidence_intervals(
            method="bootstrap", n_boot=a.n_boot))
        row["solver_bootstrap"] = ci_dict(ci)
        ci, row["solver_profile_seconds"] = timed(lambda: sol.confidence_intervals(
            method="profile", params=["D", "r"]))
        row["solver_profile"] = ci_dict(ci)
        for part in ("fit", "bootstrap", "profile"):
            k = f"pinn_{part}_seconds"
            if k in row:
                row[f"ratio_{part}_time"] = row[k] / row[f"solver_{part}_seconds"]
    OUT.mkdir(exist_ok=True)
    with open(OUT / "pinn_intervals_timing.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row, indent=1))


if __name__ == "__main__":
    main()
