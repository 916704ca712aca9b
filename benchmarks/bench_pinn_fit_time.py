"""Wall time of one 1-D PINN fit, by where its compiled programs come from, against the solver.

The 1-D yardstick (``make_fisher_kpp_1d``, 8 times x 25 sites, Gaussian introduction at the
known date; PINN with the heat-kernel ansatz, ``hard_ic="heat"``). Each case runs in a fresh
Python process (imports excluded, everything else included):

- ``cold``: nothing compiled; the fit compiles its Adam program, and its L-BFGS program in a
  background thread while Adam compiles and trains (``physreg.pinn._train.compile_ahead``);
- ``cold, one thread``: the same with the compilation ahead switched off (the L-BFGS program
  compiles when L-BFGS starts, as before);
- ``next dataset``: a second data set (another seed) fitted in the same process: its programs
  are reused (the density scale is rounded to a power of two, so they match);
- ``cache, first`` / ``cache, warm``: with ``physreg.enable_compilation_cache`` on an empty
  folder (the fit compiles and stores), then in a new process on that folder (it loads);
- ``solver``: ``SolverEstimator`` on the same data, cold (its own compilation included).

Writes benchmarks/results/pinn_fit_time.json (times and the ratio of each PINN case to the
solver's cold fit).

    python benchmarks/bench_pinn_fit_time.py                       # default schedule
    python benchmarks/bench_pinn_fit_time.py --n-adam 1000 --n-lbfgs 1500
    python benchmarks/bench_pinn_fit_time.py --lambda-pde 100 --fixed-points --only-cold

``--lambda-pde`` / ``--fixed-points`` set the estimator's ``lambda_pde`` and ``resample=False``
(the defaults before session 9); one entry per (schedule, lambda, resampling) is kept.
"""

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

OUT = Path(__file__).parent / "results" / "pinn_fit_time.json"

CHILD = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
import physreg
args = json.loads(sys.argv[1])
if args["cache"]:
    physreg.enable_compilation_cache(args["cache"])
if args.get("no_ahead"):
    import concurrent.futures
    import physreg.pinn._fit as F
    def _done(*a, **k):
        f = concurrent.futures.Future(); f.set_result(None); return f
    F._compile_ahead = _done
out = {}
for label, seed in args["fits"]:
    ds = physreg.datasets.make_fisher_kpp_1d(random_state=seed)
    t0 = float(ds.attrs["t0"])
    if args["method"] == "solver":
        est = physreg.SolverEstimator(initial="gaussian", t0=t0, grid=64, n_starts=2, tol=1e-7,
                                      random_state=seed)
    else:
        est = physreg.PINNEstimator(initial="gaussian", t0=t0, hard_ic="heat",
                                    n_adam=args["n_adam"], n_lbfgs=args["n_lbfgs"],
                                    lambda_pde=args["lambda_pde"], resample=args["resample"],
                                    random_state=seed)
    t = time.perf_counter()
    est.fit(ds)
    out[label] = {"seconds": time.perf_counter() - t, "seed": seed,
                  "D": float(est.params_.sel(param="D")), "r": float(est.params_.sel(param="r"))}
    if args["method"] == "pinn":
        out[label].update(lambda_pde=float(est.lambda_pde_), resample=bool(est.resample))
print(json.dumps(out))
"""


def child(method, fits, a, cache=None, no_ahead=False):
    args = {"method": method, "fits": fits, "cache": cache, "n_adam": a.n_adam,
            "n_lbfgs": a.n_lbfgs, "no_ahead": no_ahead,
            "lambda_pde": a.lambda_pde, "resample": not a.fixed_points}
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True,
                         text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps(res), flush=True)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-adam", type=int, default=2000)
    ap.add_argument("--n-lbfgs", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--lambda-pde", type=lambda v: v if v == "auto" else float(v),
                    default="auto", help="PINNEstimator lambda_pde (default: its own)")
    ap.add_argument("--fixed-points", action="store_true",
                    help="resample=False (the estimator's default before session 9)")
    ap.add_argument("--only-cold", action="store_true",
                    help="the solver and the cold fit only (no second data set, no cache)")
    a = ap.parse_args()
    s1, s2 = a.seed, a.seed + 1
    cases = {}
    cases.update(child("solver", [["solver", s1]], a))
    if a.only_cold:
        cases.update(child("pinn", [["cold", s1]], a))
    else:
        cases.update(child("pinn", [["cold", s1], ["next dataset", s2]], a))
        cases.update(child("pinn", [["cold, one thread", s1]], a, no_ahead=True))
        with tempfile.TemporaryDirectory() as tmp:
            cases.update(child("pinn", [["cache, first", s1]], a, cache=tmp))
            cases.update(child("pinn", [["cache, warm", s1]], a, cache=tmp))
    solver = cases["solver"]["seconds"]
    for v in cases.values():
        v["ratio_to_solver"] = v["seconds"] / solver
    if not a.only_cold:
        cases["cold"]["ratio_to_one_thread"] = (cases["cold"]["seconds"]
                                                / cases["cold, one thread"]["seconds"])
    out = {"n_adam": a.n_adam, "n_lbfgs": a.n_lbfgs, "lambda_pde": a.lambda_pde,
           "resample": not a.fixed_points, "host": platform.node(), "cases": cases}
    OUT.parent.mkdir(exist_ok=True)
    results = json.loads(OUT.read_text()) if OUT.exists() else []
    key = (a.n_adam, a.n_lbfgs, a.lambda_pde, not a.fixed_points)
    results = [r for r in results
               if (r["n_adam"], r["n_lbfgs"], r["lambda_pde"], r["resample"]) != key]
    OUT.write_text(json.dumps(results + [out], indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
