"""PINNEstimator on the bundled 2-D data: covariate in r, 300 sparse Poisson counts.

Data: ``physreg.datasets.load_example("fkpp2d_poisson")`` (60 fixed sites x 5 times on a
20 x 12 domain, Poisson counts with kappa = 10; truth D = 1, r = 1, gamma = 1,
r_elevation = -0.3, a Gaussian introduction at (4, 6) at t0 = 0). The PINN fits D, r, gamma and
r_elevation (kappa fixed at 10, as in ``studies/synthetic_solver.py 2d``) with

- ``--initial gaussian``: the introduction's centre, width and mass fitted, t0 = 0 known (the
  solver's set-up), or
- ``--initial free``: the model starts at the first observed time (t = 1.6) and u there is
  learnt from the data and the physics (no initial-condition information at all).

Appends one JSON line per fit to ``studies/results/pinn_fit_2d.jsonl``: options, estimates,
relative errors against the truth and against the solver MLE on the same data (read from
``studies/results/synthetic_solver.json``), fit time, loss, residual.

    python studies/pinn_fit_2d.py --initial free
    python studies/pinn_fit_2d.py --initial gaussian --opt hard_ic=True

Measured with the defaults (2000 Adam + 3000 L-BFGS, 32 x 3 network, lambda_pde = 100; about
8 minutes each on the shared 2-core machine): both fail. ``gaussian``: D = 0.021 (truth 1),
r = 1.41, gamma = 1.54, r_elevation = -0.125, and the introduction widens (width 1.6 vs 0.5,
mass 0.35 vs 5); ``free``: D = 0.027, r = 1.30, gamma = 1.26, r_elevation = -0.19. The solver
MLE on the same data is within 5% for D, r, gamma (r_elevation -0.355). The failure is the
1-D one, stronger: a small D and an initial state shaped to fit the counts give a network
whose front moves by growth rather than diffusion, at a residual cost (rms ~0.01) that the
penalty weight does not make worth avoiding with 300 sparse counts.
"""

import argparse
import json
from pathlib import Path

from pinn_fit_1d import append_row, parse_options, timed_fit  # same folder (run as a script)

import physreg
from physreg.likelihoods import Poisson

OUT = Path(__file__).parent / "results"
COEFS = ("D", "r", "gamma", "r_elevation")


def solver_reference():
    path = OUT / "synthetic_solver.json"
    if not path.exists():
        return {}
    for entry in json.loads(path.read_text()):
        if entry.get("dataset") == "fkpp2d_poisson":
            return {k: v["estimate"] for k, v in entry["params"].items()}
    return {}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--initial", choices=("gaussian", "free"), default="free")
    ap.add_argument("--opt", action="append", default=[],
                    help="NAME=VALUE, a PINNEstimator argument (Python literal), repeatable")
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    obs, cov = physreg.datasets.load_example("fkpp2d_poisson")
    truth = physreg.datasets.truth_of(obs)
    opts = parse_options(a.opt)
    if a.initial == "gaussian":
        ic = dict(initial="gaussian", t0=float(obs.attrs.get("t0", 0.0)))
    else:
        ic = dict(initial="first", free_initial=True)
    est = physreg.PINNEstimator(likelihood=Poisson(kappa=truth["kappa"]),
                                growth_covariates=("elevation",), **ic, **opts)
    p, record = timed_fit(est, obs, cov)
    ref = solver_reference()
    row = {"tag": a.tag, "initial": a.initial, "options": opts, "params": p,
           "rel_error": {k: p[k] / truth[k] - 1 for k in COEFS if k in p},
           "within_10pct": {k: abs(p[k] / truth[k] - 1) <= 0.10 for k in COEFS if k in p},
           "solver": {k: ref[k] for k in COEFS if k in ref},
           "rel_to_solver": {k: p[k] / ref[k] - 1 for k in COEFS if k in p and k in ref},
           **record}
    append_row("pinn_fit_2d", row, indent=1)


if __name__ == "__main__":
    main()
