"""physreg's PINN against DeepXDE on the same 1-D inverse problem, in one run.

The problem: the bundled ``fkpp1d_gaussian`` data (or ``make_fisher_kpp_1d(random_state=N)``
with ``--seed N``), 1-D Fisher-KPP ``du/dt = D u_xx + u (r - gamma u)`` on [0, 10] with no-flux
ends, 8 times x 25 sites, Gaussian noise (sd 0.05). Unknowns: D, r and gamma. The first observed
time slice is the initial condition of both PINNs (interpolated linearly, clipped at 0) and is not
used as data; the 7 later slices are the data.

- physreg: ``PINNEstimator(initial="first")`` with its defaults (width 32, depth 3, 1024 Sobol
  collocation points, 2000 Adam + 3000 L-BFGS steps, float64).
- DeepXDE (PyTorch backend, float64): its own inverse-problem route, as in its examples:
  ``TimePDE`` on ``Interval(0, 10) x TimeDomain(t_first, t_last)``, unknowns as ``dde.Variable``
  (``external_trainable_variables``), ``NeumannBC``, ``IC``, the observations as a
  ``PointSetBC`` (and as anchors), Adam then L-BFGS. Given a fair set-up rather than the
  documentation's bare one: inputs rescaled to [-1, 1] (feature transform), output scaled by
  the density scale U (output transform), positive parameters through logs
  (D = exp(log_D), ...), residual and loss weights written in the same scaled units as physreg
  (so unit weights are sensible), the same network size, collocation counts, starting values
  (physreg's heuristic: D = 0.114, r = 0.229, gamma = 0.219 on the bundled data) and Adam /
  L-BFGS step budget as physreg. PyTorch runs on one thread (``--torch-threads``): on the shared
  2-core machine two OpenMP threads made each step ~9x slower under load (0.30 s vs 0.034 s).
- The solver MLE ``SolverEstimator(initial="gaussian", t0=0.0)`` on the same data, as the
  yardstick (it uses all 8 slices and fits the introduction).

Reported for each method: D, r, gamma, relative errors against the truth (and, for the PINNs,
against the solver MLE, the statistical target), wall and process CPU seconds (each including
its start-up: JAX compilation, DeepXDE's point sampling); and ratios DeepXDE / physreg of
|relative error| (D, r), of |relative difference to the MLE| and of wall and CPU time. Appends one
row per run to benchmarks/results/pinn_deepxde.json (with host, load and package versions).

DeepXDE is NOT a dependency of physreg; install it (and PyTorch's CPU wheel) for this script only:

    pip install torch --index-url https://download.pytorch.org/whl/cpu
    pip install deepxde

Why PyTorch and not DeepXDE's JAX backend: in DeepXDE 1.15 the JAX backend has no L-BFGS
(``optimizers/jax`` offers only adam / rmsprop / sgd) and its inverse-problem support is marked
"in development", while the PyTorch backend has ``dde.Variable`` with L-BFGS
(``torch.optim.LBFGS``), the set-up of DeepXDE's inverse examples. The backend is chosen here
through ``DDE_BACKEND`` before deepxde is imported.

    python benchmarks/bench_pinn_deepxde.py              # bundled data, ~5 min on 2 CPUs
    python benchmarks/bench_pinn_deepxde.py --seed 1000  # make_fisher_kpp_1d(random_state=1000)
    python benchmarks/bench_pinn_deepxde.py --quick      # a smoke run (a few steps; not written)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np

import physreg

OUT = Path(__file__).parent / "results" / "pinn_deepxde.json"

# one budget for both PINNs (physreg's defaults)
WIDTH, DEPTH = 32, 3
N_ADAM, N_LBFGS, LR = 2000, 3000, 3e-3
N_DOMAIN, N_BOUNDARY, N_INITIAL = 1024, 128, 256
# DeepXDE loss weights in scaled units, order [pde, neumann bc, ic, data]: data and residual at
# equal weight, the initial condition 10x the residual (physreg's lambda_ic / lambda_pde = 10)
DDE_WEIGHTS_SCALED = (1.0, 1.0, 10.0, 1.0)


def import_deepxde():
    os.environ["DDE_BACKEND"] = "pytorch"
    try:
        import deepxde as dde
        import torch
    except ImportError as e:
        sys.exit(f"bench_pinn_deepxde.py needs DeepXDE and PyTorch, which physreg does not depend "
                 f"on ({e}). Install them for this script only:\n"
                 "    pip install torch --index-url https://download.pytorch.org/whl/cpu\n"
                 "    pip install deepxde")
    if dde.backend.backend_name != "pytorch":
        sys.exit(f"DeepXDE loaded the {dde.backend.backend_name!r} backend, not 'pytorch' "
                 "(was deepxde imported before DDE_BACKEND was set?).")
    return dde, torch


def version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def git_commit():
    """The repository's HEAD (with "+dirty" when physreg/ has uncommitted changes), or None."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "physreg"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def clocks():
    return time.perf_counter(), time.process_time()


def since(c0):
    w, c = clocks()
    return {"wall_s": w - c0[0], "cpu_s": c - c0[1]}


class Problem:
    """The observations split into the initial slice and the data, and the shared scales."""

    def __init__(self, ds, init=None):
        self.truth = physreg.datasets.truth_of(ds)
        dens = ds["density"]
        self.times = np.asarray(ds.time.values, float)
        self.xs = np.asarray(ds.x.values, float)
        self.domain = tuple(float(v) for v in ds.attrs["domain_x"])
        self.t_first, self.t_last = float(self.times[0]), float(self.times[-1])
        self.y0 = np.asarray(dens.isel(time=0).values, float)
        tt, xx = np.meshgrid(self.times[1:], self.xs, indexing="ij")
        y = np.asarray(dens.isel(time=slice(1, None)).values, float)
        ok = np.isfinite(y)
        self.obs_xt = np.stack([xx[ok], tt[ok]], -1)              # DeepXDE order (x, t)
        self.obs_y = y[ok][:, None]
        self.L = self.domain[1] - self.domain[0]
        self.T = self.t_last - self.t_first
        # physreg's density scale and starting values (physreg.estimators.initial_guess)
        self.U = float(np.quantile(np.abs(self.obs_y), 0.95))
        self.start = {"D": (self.L / 10) ** 2 / self.T, "r": 2.0 / self.T,
                      "gamma": 2.0 / (self.T * self.U)}
        self.start.update(init or {})

    def u0(self, x):
        """The first slice, interpolated linearly (constant beyond the outer sites), >= 0."""
        ok = np.isfinite(self.y0)
        return np.maximum(np.interp(x, self.xs[ok], self.y0[ok]), 0.0)


def fit_deepxde(prob: Problem, n_adam, n_lbfgs, seed=0, threads=1):
    dde, torch = import_deepxde()
    torch.set_num_threads(threads)
    c0 = clocks()
    dde.config.set_default_float("float64")
    dde.config.set_random_seed(seed)
    L, T, U, lo, t0 = prob.L, prob.T, prob.U, prob.domain[0], prob.t_first

    log_D = dde.Variable(float(np.log(prob.start["D"])))
    log_r = dde.Variable(float(np.log(prob.start["r"])))
    log_g = dde.Variable(float(np.log(prob.start["gamma"])))
    variables = [log_D, log_r, log_g]

    def pde(X, u):
        u_t = dde.grad.jacobian(u, X, i=0, j=1)
        u_xx = dde.grad.hessian(u, X, i=0, j=0)
        res = u_t - torch.exp(log_D) * u_xx - u * (torch.exp(log_r) - torch.exp(log_g) * u)
        return res * (T / U)                      # the residual in units of U / T (as physreg)

    geom = dde.geometry.Interval(*prob.domain)
    timedomain = dde.geometry.TimeDomain(prob.t_first, prob.t_last)
    geomtime = dde.geometry.GeometryXTime(geom, timedomain)
    bc = dde.icbc.NeumannBC(geomtime, lambda X: np.zeros((len(X), 1)),
                            lambda _, on_boundary: on_boundary)
    ic = dde.icbc.IC(geomtime, lambda X: prob.u0(X[:, 0:1]), lambda _, on_initial: on_initial)
    observe = dde.icbc.PointSetBC(prob.obs_xt, prob.obs_y, component=0)
    data = dde.data.TimePDE(geomtime, pde, [bc, ic, observe], num_domain=N_DOMAIN,
                            num_boundary=N_BOUNDARY, num_initial=N_INITIAL,
                            anchors=prob.obs_xt)

    net = dde.nn.FNN([2] + [WIDTH] * DEPTH + [1], "tanh", "Glorot normal")
    net.apply_feature_transform(lambda X: torch.cat(
        [2.0 * (X[:, 0:1] - lo) / L - 1.0, 2.0 * (X[:, 1:2] - t0) / T - 1.0], 1))
    net.apply_output_transform(lambda X, u: U * u)
    # unit weights in scaled units: residual already scaled; bc du/dx in U / L; ic, data in U
    w_pde, w_bc, w_ic, w_data = DDE_WEIGHTS_SCALED
    weights = [w_pde, w_bc * (L / U) ** 2, w_ic / U ** 2, w_data / U ** 2]

    model = dde.Model(data, net)
    model.compile("adam", lr=LR, external_trainable_variables=variables, loss_weights=weights)
    model.train(iterations=n_adam, display_every=max(n_adam // 4, 1), verbose=0)
    t_adam = since(c0)
    values = lambda: {k: float(np.exp(v.item()))
                      for k, v in zip(("D", "r", "gamma"), variables, strict=True)}
    after_adam = values()
    if n_lbfgs > 0:
        dde.optimizers.config.set_LBFGS_options(maxiter=n_lbfgs)
        # DeepXDE 1.15 (PyTorch / Paddle) splits L-BFGS into optimiser calls of ``iter_per_step``
        # iterations, computed once at import from the default maxiter: set_LBFGS_options does not
        # update it (deepxde PR #2080), so a small maxiter would still run 1000 iterations
        opts = dde.optimizers.config.LBFGS_options
        opts["iter_per_step"] = min(1000, n_lbfgs)
        opts["fun_per_step"] = opts["maxfun"] * opts["iter_per_step"] // opts["maxiter"]
        model.compile("L-BFGS", external_trainable_variables=variables, loss_weights=weights)
        model.train(display_every=max(n_lbfgs // 4, 1), verbose=0)
    t = since(c0)
    loss = [float(v) for v in np.asarray(model.losshistory.loss_train[-1]).ravel()]
    return {"params": values(), **t, "adam_wall_s": t_adam["wall_s"],
            "steps": int(model.train_state.step),
            "lbfgs_steps": int(model.train_state.step) - n_adam,
            "after_adam": after_adam,
            "final_loss_terms": dict(zip(("pde", "bc", "ic", "data"), loss, strict=False)),
            "setup": {"backend": "pytorch", "torch_threads": threads, "dtype": "float64",
                      "net": [2] + [WIDTH] * DEPTH + [1],
                      "activation": "tanh", "init": "Glorot normal", "n_adam": n_adam, "lr": LR,
                      "n_lbfgs_max": n_lbfgs, "num_domain": N_DOMAIN,
                      "num_boundary": N_BOUNDARY, "num_initial": N_INITIAL,
                      "anchors": "observation points",
                      "loss_weights_scaled": dict(zip(("pde", "bc", "ic", "data"),
                                                      DDE_WEIGHTS_SCALED, strict=True)),
                      "parameterisation": "log", "start": prob.start,
                      "input_scaling": "x, t -> [-1, 1]", "output_scaling": f"u = {U:.4g} * N"}}


def fit_physreg(ds, n_adam, n_lbfgs, init=None):
    est = physreg.PINNEstimator(initial="first", n_adam=n_adam, n_lbfgs=n_lbfgs,
                                initial_params=init or None)
    p, t = timed_fit(est, ds)
    return {"params": p, **t, "timings": {k: float(v) for k, v in est.pinn_.timings.items()},
            "steps": int(est.n_iter_), "loss": est.loss_, "converged": est.converged_,
            "residual_rms": float(np.asarray(est.residual_rms_)),
            "setup": {"width": est.width, "depth": est.depth, "modes": est.modes,
                      "n_collocation": est.n_collocation, "n_adam": n_adam,
                      "n_lbfgs_max": n_lbfgs, "learning_rate": est.learning_rate,
                      "lambda_pde": est.lambda_pde_, "resample": est.resample,
                      "lambda_ic": est.lambda_ic,
                      "lambda_bc": est.lambda_bc, "float32": est.float32}}


def fit_solver(ds):
    est = physreg.SolverEstimator(initial="gaussian", t0=0.0)
    p, t = timed_fit(est, ds)
    return {"params": p, **t}


def timed_fit(est, ds):
    """Fit ``est`` on ``ds`` (warnings silenced); returns (params dict, clock readings)."""
    c0 = clocks()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(ds)
    t = since(c0)
    return {str(n): float(est.params_.sel(param=n)) for n in est.params_.param.values}, t


def add_errors(results, truth):
    """Relative errors against the truth (and, for the PINNs, against the solver MLE, the
    statistical target: with 175 noisy points the MLE itself is several % off the truth) in
    place; returns the ratios DeepXDE / physreg."""
    mle = results["solver"]["params"]
    for name, r in results.items():
        r["rel_error"] = {k: r["params"][k] / truth[k] - 1 for k in ("D", "r", "gamma")
                          if k in r["params"]}
        if name != "solver":
            r["rel_diff_vs_mle"] = {k: r["params"][k] / mle[k] - 1 for k in ("D", "r", "gamma")}
    dx, pr = results["deepxde"], results["physreg_pinn"]
    ratios = {f"abs_rel_error_{k}": abs(dx["rel_error"][k]) / abs(pr["rel_error"][k])
              for k in ("D", "r")}
    ratios.update({f"abs_rel_diff_vs_mle_{k}": abs(dx["rel_diff_vs_mle"][k])
                   / abs(pr["rel_diff_vs_mle"][k]) for k in ("D", "r")})
    ratios["wall_time"] = dx["wall_s"] / pr["wall_s"]
    ratios["cpu_time"] = dx["cpu_s"] / pr["cpu_s"]
    return ratios


def summarise(rows):
    """Over the full runs from the default start, one per dataset (the latest): per method the
    root-mean-square relative error of D and r against the truth (and, for the PINNs, against
    the MLE) and the median wall seconds; the ratios DeepXDE / physreg of those. A ratio of two
    single |errors| (in each row) is unstable when physreg's error is near 0; this one is not."""
    latest = {}
    for row in rows:
        if not row.get("quick") and not row.get("init"):
            latest[row["data"]] = row
    if not latest:
        return None
    rows = list(latest.values())
    out = {"datasets": list(latest), "methods": {}}
    for name in ("solver", "physreg_pinn", "deepxde"):
        m = [r["methods"][name] for r in rows]
        d = {f"rms_rel_error_{k}": float(np.sqrt(np.mean([x["rel_error"][k] ** 2 for x in m])))
             for k in ("D", "r")}
        d.update({f"mean_rel_error_{k}": float(np.mean([x["rel_error"][k] for x in m]))
                  for k in ("D", "r")})
        if name != "solver":
            d.update({f"rms_rel_diff_vs_mle_{k}": float(np.sqrt(np.mean(
                [x["rel_diff_vs_mle"][k] ** 2 for x in m]))) for k in ("D", "r")})
        d["median_wall_s"] = float(np.median([x["wall_s"] for x in m]))
        d["median_cpu_s"] = float(np.median([x["cpu_s"] for x in m]))
        out["methods"][name] = d
    dx, pr = out["methods"]["deepxde"], out["methods"]["physreg_pinn"]
    out["ratios_deepxde_over_physreg"] = {k: dx[k] / pr[k] for k in pr if not k.startswith("mean")}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=None,
                    help="use make_fisher_kpp_1d(random_state=SEED) instead of the bundled data")
    ap.add_argument("--quick", action="store_true", help="a few steps of each (smoke run)")
    ap.add_argument("--torch-threads", type=int, default=1,
                    help="torch.set_num_threads for DeepXDE (default 1: on the shared 2-core "
                         "machine 2 OpenMP threads made each step ~9x slower under load)")
    ap.add_argument("--init", action="append", default=[], metavar="NAME=VALUE",
                    help="starting value of D, r or gamma for both PINNs (default: physreg's "
                         "heuristic), repeatable")
    ap.add_argument("--no-write", action="store_true", help="print the row, do not append it")
    a = ap.parse_args()
    init = {}
    for item in a.init:
        k, _, v = item.partition("=")
        if k.strip() not in ("D", "r", "gamma"):
            ap.error(f"--init takes D, r or gamma, got {item!r}")
        init[k.strip()] = float(v)
    import_deepxde()  # fail early, before any fit, if DeepXDE is missing

    if a.seed is None:
        ds, data_name = physreg.datasets.load_example("fkpp1d_gaussian"), "fkpp1d_gaussian"
    else:
        ds = physreg.datasets.make_fisher_kpp_1d(random_state=a.seed)
        data_name = f"make_fisher_kpp_1d(random_state={a.seed})"
    n_adam, n_lbfgs = (50, 20) if a.quick else (N_ADAM, N_LBFGS)
    prob = Problem(ds, init)
    truth = prob.truth
    load = [os.getloadavg()]

    results = {}
    print("solver MLE ...", flush=True)
    results["solver"] = fit_solver(ds)
    load.append(os.getloadavg())
    print("physreg PINN ...", flush=True)
    results["physreg_pinn"] = fit_physreg(ds, n_adam, n_lbfgs, init)
    load.append(os.getloadavg())
    print("DeepXDE ...", flush=True)
    results["deepxde"] = fit_deepxde(prob, n_adam, n_lbfgs, threads=a.torch_threads)
    load.append(os.getloadavg())

    ratios = add_errors(results, truth)
    row = {"date": time.strftime("%Y-%m-%d %H:%M"), "data": data_name, "quick": a.quick,
           "init": init, "start": prob.start,
           "truth": {k: truth[k] for k in ("D", "r", "gamma")}, "methods": results,
           "ratios_deepxde_over_physreg": ratios,
           "host": {"node": platform.node(), "cpus": os.cpu_count(),
                    "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_before_each_fit_and_end": load},
           "physreg_commit": git_commit(),
           "versions": {n: version(n) for n in ("physreg", "jax", "jinns", "optax", "numpy",
                                                "torch", "deepxde")}}

    print(f"\n{data_name}: truth D={truth['D']}, r={truth['r']}, gamma={truth['gamma']}")
    print(f"{'method':14s} {'D':>8s} {'r':>8s} {'gamma':>8s} {'err D':>8s} {'err r':>8s} "
          f"{'wall s':>8s} {'cpu s':>8s}")
    for name, r in results.items():
        p, e = r["params"], r["rel_error"]
        print(f"{name:14s} {p['D']:8.4f} {p['r']:8.4f} {p.get('gamma', float('nan')):8.4f} "
              f"{e['D']:+8.1%} {e['r']:+8.1%} {r['wall_s']:8.1f} {r['cpu_s']:8.1f}")
    for name in ("physreg_pinn", "deepxde"):
        e = results[name]["rel_diff_vs_mle"]
        print(f"{name:14s} against the MLE: D {e['D']:+.1%}, r {e['r']:+.1%}")
    print("DeepXDE / physreg: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))

    if a.quick or a.no_write:
        return
    OUT.parent.mkdir(exist_ok=True)
    doc = json.loads(OUT.read_text()) if OUT.exists() else {"rows": []}
    doc["rows"].append(row)
    doc["summary"] = summarise(doc["rows"])
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"appended to {OUT}")
    sm = doc["summary"]
    print(f"over {len(sm['datasets'])} dataset(s), DeepXDE / physreg: " + ", ".join(
        f"{k} {v:.2f}" for k, v in sm["ratios_deepxde_over_physreg"].items()))


if __name__ == "__main__":
    main()
