"""One PINNEstimator fit on the bundled 1-D dataset: estimates, errors against the truth, time.

    python studies/pinn_fit_1d.py --initial gaussian                  # defaults
    python studies/pinn_fit_1d.py --initial gaussian --opt float32=True --opt lambda_pde=30
    python studies/pinn_fit_1d.py --data make --seed 1000             # make_fisher_kpp_1d(seed)

Appends one JSON line per fit to studies/results/pinn_fit_1d.jsonl (options, estimates, relative
errors, fit time split into Adam and L-BFGS, host), and prints it.
"""

import argparse
import ast
import json
import platform
import time
import warnings
from pathlib import Path

import physreg

OUT = Path(__file__).parent / "results"


def parse_options(items) -> dict:
    """``["NAME=VALUE", ...]`` (Python literals) -> dict of estimator arguments."""
    opts = {}
    for item in items:
        k, _, v = item.partition("=")
        opts[k.strip()] = ast.literal_eval(v.strip())
    return opts


def timed_fit(est, *args):
    """Fit a PINNEstimator (warnings silenced); returns (params dict, the fit's record:
    seconds, timings, loss, residual, convergence, host)."""
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(*args)
    wall = time.perf_counter() - t
    p = {str(n): float(est.params_.sel(param=n)) for n in est.params_.param.values}
    return p, {"fit_seconds": wall, "timings": est.pinn_.timings, "loss": est.loss_,
               "residual_rms": est.residual_rms_,
               "residual_rms_heldout": getattr(est, "residual_rms_heldout_", None),
               "converged": est.converged_,
               "host": platform.node()}


def append_row(name: str, row: dict, indent=None):
    """Append ``row`` to ``studies/results/<name>.jsonl`` and print it."""
    OUT.mkdir(exist_ok=True)
    with open(OUT / f"{name}.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row, indent=indent))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", choices=("bundled", "make"), default="bundled")
    ap.add_argument("--seed", type=int, default=0, help="random_state of make_fisher_kpp_1d")
    ap.add_argument("--initial", choices=("gaussian", "first"), default="gaussian")
    ap.add_argument("--opt", action="append", default=[],
                    help="NAME=VALUE, a PINNEstimator argument (Python literal), repeatable")
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    if a.data == "bundled":
        ds = physreg.datasets.load_example("fkpp1d_gaussian")
    else:
        ds = physreg.datasets.make_fisher_kpp_1d(random_state=a.seed)
    truth = physreg.datasets.truth_of(ds)
    opts = parse_options(a.opt)
    kw = dict(initial=a.initial, t0=float(ds.attrs["t0"]) if a.initial == "gaussian" else None)
    est = physreg.PINNEstimator(**kw, **opts)
    p, record = timed_fit(est, ds)
    row = {"tag": a.tag, "data": a.data, "seed": a.seed, "initial": a.initial, "options": opts,
           "params": p, "rel_error": {k: p[k] / truth[k] - 1 for k in ("D", "r") if k in p},
           **record}
    append_row("pinn_fit_1d", row)


if __name__ == "__main__":
    main()
