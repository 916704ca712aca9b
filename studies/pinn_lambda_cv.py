"""Choosing the PINN's ``lambda_pde`` by blocked cross-validation, next to what each value does
to the estimates (1-D yardstick, heat-kernel ansatz).

For each seed (``physreg.datasets.make_fisher_kpp_1d(random_state=seed)``: 8 times x 25 sites,
5% Gaussian noise, D = 0.1, r = 1) and each ``lambda_pde``:

- ``physreg.model_selection.cross_validate`` with ``TimeBlockSplit(n_splits, "blocked")``: the
  PINN (``initial="gaussian"``, t0 known, ``hard_ic="heat"``) refitted without one block of
  observation times, scored by the mean log-likelihood per held-out observation;
- the fit on all the data: D, r, the fitted noise sd, the penalised loss and the PDE residual
  rms at the collocation points and at fresh points;
- the solver MLE on the same data, the yardstick.

Rows go to studies/results/pinn_lambda_cv.jsonl (one per seed and lambda; rerunning skips
what is there); the table is printed and written to studies/results/pinn_lambda_cv.md.

    python studies/pinn_lambda_cv.py --seeds 1019 --lambdas 100,1000,3000
"""

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
from pinn_vs_solver import params_dict, pinn_initial, solver_estimator  # same folder

import physreg
from physreg.model_selection import TimeBlockSplit, cross_validate

OUT = Path(__file__).parent / "results"
JSONL = OUT / "pinn_lambda_cv.jsonl"


def pinn(ds, lam, seed, a):
    return physreg.PINNEstimator(**pinn_initial("heat", ds), lambda_pde=lam, n_adam=a.n_adam,
                                 n_lbfgs=a.n_lbfgs, random_state=seed)


def one(ds, seed, lam, a, solver):
    t = time.perf_counter()
    cv = cross_validate(pinn(ds, lam, seed, a), ds, cv=TimeBlockSplit(a.n_splits, "blocked"))
    t_cv = time.perf_counter() - t
    est = pinn(ds, lam, seed, a).fit(ds)
    return {"seed": seed, "lambda_pde": lam, "n_adam": a.n_adam, "n_lbfgs": a.n_lbfgs,
            "n_splits": a.n_splits, "cv_scores": cv["test_score"].tolist(),
            "cv_mean": float(np.mean(cv["test_score"])), "cv_seconds": t_cv,
            "params": params_dict(est), "loss": est.loss_, "residual_rms": est.residual_rms_,
            "residual_rms_heldout": est.residual_rms_heldout_, "fit_seconds": est.fit_time_,
            "solver": solver}


def table(rows):
    lines = ["| seed | lambda_pde | CV mean loglik | D | r | sigma | D / solver D | "
             "residual rms (train / fresh) |", "|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["seed"], r["lambda_pde"])):
        p, s = r["params"], r["solver"]
        lines.append(f"| {r['seed']} | {r['lambda_pde']:g} | {r['cv_mean']:.4f} | {p['D']:.4f} | "
                     f"{p['r']:.4f} | {p['sigma']:.4f} | {p['D'] / s['D']:.3f} | "
                     f"{r['residual_rms']:.4f} / {r['residual_rms_heldout']:.4f} |")
    seeds = sorted({r["seed"] for r in rows})
    for seed in seeds:
        sub = [r for r in rows if r["seed"] == seed]
        best = max(sub, key=lambda r: r["cv_mean"])
        s = sub[0]["solver"]
        lines.append(f"\nseed {seed}: CV picks lambda_pde = {best['lambda_pde']:g}; solver MLE "
                     f"D {s['D']:.4f}, r {s['r']:.4f}, sigma {s['sigma']:.4f}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="1019")
    ap.add_argument("--lambdas", default="100,1000,3000")
    ap.add_argument("--n-splits", type=int, default=4)
    ap.add_argument("--n-adam", type=int, default=2000)
    ap.add_argument("--n-lbfgs", type=int, default=3000)
    a = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    rows = [json.loads(line) for line in JSONL.read_text().splitlines()] if JSONL.exists() else []
    key = lambda r: (r["seed"], r["lambda_pde"], r["n_adam"], r["n_lbfgs"], r["n_splits"])  # noqa: E731
    done = {key(r) for r in rows}
    warnings.simplefilter("ignore")
    for seed in (int(s) for s in a.seeds.split(",")):
        todo = [lam for lam in (float(v) for v in a.lambdas.split(","))
                if (seed, lam, a.n_adam, a.n_lbfgs, a.n_splits) not in done]
        if not todo:
            continue
        ds = physreg.datasets.make_fisher_kpp_1d(random_state=seed)
        solver = params_dict(solver_estimator(ds, seed).fit(ds))
        for lam in todo:
            row = one(ds, seed, lam, a, solver)
            with open(JSONL, "a") as f:
                f.write(json.dumps(row) + "\n")
            rows.append(row)
            print(f"seed {seed} lambda {lam:g}: CV {row['cv_mean']:.4f}  D {row['params']['D']:.4f}"
                  f"  ({row['cv_seconds'] + row['fit_seconds']:.0f} s)", flush=True)
    mine = [r for r in rows if (r["n_adam"], r["n_lbfgs"], r["n_splits"])
            == (a.n_adam, a.n_lbfgs, a.n_splits)]
    text = table(mine)
    (OUT / "pinn_lambda_cv.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
