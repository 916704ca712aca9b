"""Quality of the hypernetwork metamodels of the 1-D Fisher-KPP solution map.

Setup (``physreg.metamodels.FKPPSetup()``): the bundled ``fkpp1d_gaussian`` case, a Gaussian
introduction (centre 2, width 0.3, mass 0.5) at t = 0 on [0, 10] with no-flux ends, gamma = 1,
theta = (D, r) over the prior box D in [0.05, 0.2], r in [0.5, 1.5].

Variants (each trained here, from scratch, with the budget shown in the output):

- ``full_supervised``: full HyperPINN trained on finite-volume solutions (512 Sobol theta,
  40 times x 128 sites);
- ``lora_supervised``: low-rank variant (rank 4), same data and steps;
- ``lora_supervised_long``: the low-rank variant trained three times longer (3 x ``--steps``);
- ``full_residual``: full HyperPINN trained on the PDE residual only (no solver call), the
  physics-only HyperPINN; time-limited;
- ``full_supervised+residual``: supervised data plus the residual (weight 1e-3), time-limited;
- ``full_supervised_gamma``: theta = (D, r, gamma) with gamma in [0.5, 1.5] (1024 Sobol theta).

The plot shows the (D, r) variants' error histograms (the gamma variant's errors are in its
``_errors.npy``).

Error: relative L2 of the whole (40 times in (0, 10]) x (128 sites) field against the 256-cell
finite-volume solver (itself within 0.1 % of a 1024-cell solution), over 128 held-out theta drawn
uniformly (another seed) from the box. Targets (issue 5): median <= 1 %, p95 <= 3 %.

Writes studies/results/metamodel_quality.{json,md,png} and the trained metamodels to
studies/results/metamodels/<variant>.{eqx,json} (read by studies/mcmc_metamodels.py).

    python studies/metamodel_quality.py [--steps 6000] [--budget 240] [--only full_supervised,...]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np

import physreg  # noqa: F401  (float64 policy)
from physreg.metamodels import (
    FKPPSetup,
    HyperPINN,
    default_grid,
    relative_errors,
    sample_box,
    save_metamodel,
    solver_snapshots,
    train_metamodel,
)

OUT = Path(__file__).parent / "results"


def variants(steps, budget):
    return {
        "full_supervised": dict(kind="full", data_weight=1.0, residual_weight=0.0, steps=steps),
        "lora_supervised": dict(kind="lora", data_weight=1.0, residual_weight=0.0, steps=steps),
        # the same, trained three times longer (cosine decay over the longer run)
        "lora_supervised_long": dict(kind="lora", data_weight=1.0, residual_weight=0.0,
                                     steps=3 * steps),
        "full_residual": dict(kind="full", data_weight=0.0, residual_weight=1.0, steps=steps,
                              time_budget=budget, time_power=2.0, batch_points=256),
        "full_supervised+residual": dict(kind="full", data_weight=1.0, residual_weight=1e-3,
                                         steps=steps, time_budget=budget, batch_points=256),
        # theta = (D, r, gamma), gamma in [0.5, 1.5]: 1024 solver solutions
        "full_supervised_gamma": dict(kind="full", data_weight=1.0, residual_weight=0.0,
                                      steps=steps, setup="gamma"),
    }


SETUPS = {"Dr": FKPPSetup(),
          "gamma": FKPPSetup(names=("D", "r", "gamma"), lower=(0.05, 0.5, 0.5),
                             upper=(0.2, 1.5, 1.5), fixed=())}
N_TRAIN = {"Dr": 512, "gamma": 1024}


def time_forward_and_gradient(f, theta, n):
    """Seconds per call of the jitted scalar ``f`` and of its gradient at ``theta`` (compiled
    first, then ``n`` calls): ``{"forward_s": ..., "gradient_s": ...}``."""
    th = jax.numpy.asarray(theta)
    out = {}
    for name, fn in (("forward_s", jax.jit(f)), ("gradient_s", jax.jit(jax.grad(f)))):
        jax.block_until_ready(fn(th))
        t0 = time.perf_counter()
        for _ in range(n):
            r = fn(th)
        jax.block_until_ready(r)
        out[name] = (time.perf_counter() - t0) / n
    return out


def eval_speed(model, theta, t_obs, x_obs, n=2000):
    """Seconds per forward evaluation at the 200 observation points (jit, one theta)."""
    return time_forward_and_gradient(lambda th: model.evaluate(th, t_obs, x_obs).sum(), theta, n)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--budget", type=float, default=240.0)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    setup = FKPPSetup()
    t, x = default_grid(setup)
    t0 = time.perf_counter()
    th_train = sample_box(setup, 512, seed=0)
    u_train = solver_snapshots(setup, th_train, t, x=x)
    data_s = time.perf_counter() - t0
    th_test = sample_box(setup, 128, seed=12345, scheme="uniform")
    u_test = solver_snapshots(setup, th_test, t, x=x)
    # observation points of the bundled data set (8 times x 25 sites)
    ds = physreg.datasets.load_example("fkpp1d_gaussian")
    T_obs, X_obs = np.meshgrid(ds.time.values, ds.x.values, indexing="ij")
    # solver cost at the same points for comparison (jit, one theta, 256 cells)
    from physreg.metamodels._train import _solver

    solver = _solver(setup, 256)

    def solve_obs(th):
        p = {**{k: v for k, v in setup.rates(th).items()}, "ic_x": 2.0, "ic_width": 0.3,
             "ic_mass": 0.5}
        u = solver.solve(p, np.asarray(ds.time.values, float))
        return jax.vmap(lambda row: jax.numpy.interp(jax.numpy.asarray(ds.x.values),
                                                     solver.centres[0], row))(u).sum()

    fs, gs = jax.jit(solve_obs), jax.jit(jax.grad(solve_obs))
    th0 = jax.numpy.asarray([0.1, 1.0])
    solver_speed = {}
    for name, fn in (("forward_s", fs), ("gradient_s", gs)):
        jax.block_until_ready(fn(th0))
        tt = time.perf_counter()
        for _ in range(200):
            r = fn(th0)
        jax.block_until_ready(r)
        solver_speed[name] = (time.perf_counter() - tt) / 200

    results = {"setup": setup.to_json(), "n_train_theta": 512, "n_test_theta": 128,
               "grid": {"n_t": len(t), "n_x": len(x)}, "solver_data_s": data_s,
               "solver_speed_at_obs": solver_speed, "variants": {}}
    path_json = OUT / "metamodel_quality.json"
    if path_json.is_file():
        old = json.loads(path_json.read_text())
        results["variants"].update(old.get("variants", {}))
    only = [s for s in args.only.split(",") if s]
    errs = {}
    data = {"Dr": (th_train, u_train, th_test, u_test, data_s)}
    for name, cfg in variants(args.steps, args.budget).items():
        if only and name not in only:
            continue
        cfg = dict(cfg)
        kind = cfg.pop("kind")
        which = cfg.pop("setup", "Dr")
        su = SETUPS[which]
        if which not in data:
            tt = time.perf_counter()
            a = sample_box(su, N_TRAIN[which], seed=0)
            ua = solver_snapshots(su, a, t, x=x)
            ds_s = time.perf_counter() - tt
            b = sample_box(su, 128, seed=12345, scheme="uniform")
            data[which] = (a, ua, b, solver_snapshots(su, b, t, x=x), ds_s)
        th_tr, u_tr, th_te, u_te, d_s = data[which]
        print(f"== {name}", flush=True)
        model = HyperPINN.build(su, kind=kind, key=0)
        model, rec = train_metamodel(model, theta_train=th_tr, u_train=u_tr, t_grid=t,
                                     x_grid=x, verbose=True, **cfg)
        e = relative_errors(model, th_te, u_te, t, x)
        errs[name] = e
        speed = eval_speed(model, th0 if which == "Dr" else jax.numpy.asarray([0.1, 1.0, 1.0]),
                           T_obs, X_obs)
        info = {"kind": kind, "theta": list(su.names), "n_train_theta": len(th_tr),
                "config": cfg, "n_params": model.n_params,
                "n_hyper_outputs": model.n_hyper_outputs, "steps_done": rec["steps"],
                "train_s": rec["train_s"], "compile_s": rec["compile_s"],
                "final_loss": rec["loss"][-1],
                "rel_l2_median": float(np.median(e)), "rel_l2_p95": float(np.quantile(e, 0.95)),
                "rel_l2_max": float(e.max()), "speed_at_obs": speed,
                "training_s_incl_solver_data": rec["train_s"] + (d_s if cfg["data_weight"]
                                                                  > 0 else 0.0)}
        results["variants"][name] = info
        save_metamodel(model, OUT / "metamodels" / name, info=info)
        np.save(OUT / "metamodels" / f"{name}_errors.npy", e)
        print(json.dumps({k: v for k, v in info.items() if k != "config"}, default=float),
              flush=True)
        path_json.write_text(json.dumps(results, indent=2, default=float))
    write_md(results)
    plot(results, th_test)


def write_md(results):
    lines = ["# Metamodel quality (1-D Fisher-KPP, theta = (D, r) [, gamma])", "",
             "Relative L2 error of the (40 times x 128 sites) field vs the 256-cell solver, "
             f"{results['n_test_theta']} held-out theta (uniform in the box). Targets: median "
             "<= 1 %, p95 <= 3 %.", "",
             "| variant | theta | params | hyper outputs | steps | train s | median % | p95 % | "
             "max % | forward us | gradient us |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, v in results["variants"].items():
        th = ", ".join(v.get("theta", ["D", "r"]))
        lines.append(f"| {name} | {th} | {v['n_params']} | {v['n_hyper_outputs']} | "
                     f"{v['steps_done']} "
                     f"| {v['train_s']:.0f} | {100 * v['rel_l2_median']:.2f} | "
                     f"{100 * v['rel_l2_p95']:.2f} | {100 * v['rel_l2_max']:.2f} | "
                     f"{1e6 * v['speed_at_obs']['forward_s']:.0f} | "
                     f"{1e6 * v['speed_at_obs']['gradient_s']:.0f} |")
    s = results["solver_speed_at_obs"]
    lines += ["", f"Solver (256 cells) at the 200 observation points: forward "
              f"{1e6 * s['forward_s']:.0f} us, gradient {1e6 * s['gradient_s']:.0f} us. "
              f"Solver training data (512 theta): {results['solver_data_s']:.1f} s.",
              "", "Reproduce: `python studies/metamodel_quality.py`."]
    (OUT / "metamodel_quality.md").write_text("\n".join(lines) + "\n")


def plot(results, th_test):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in results["variants"] if (OUT / "metamodels" / f"{n}_errors.npy").is_file()
             and "gamma" not in results["variants"][n].get("theta", [])]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for n in names:
        e = np.load(OUT / "metamodels" / f"{n}_errors.npy")
        axes[0].hist(100 * e, bins=np.logspace(-1.5, 2.1, 40), histtype="step", label=n)
    axes[0].set_xscale("log")
    axes[0].axvline(1, color="k", ls=":")
    axes[0].axvline(3, color="k", ls="--")
    axes[0].set_xlabel("relative L2 error (%)")
    axes[0].legend(fontsize=7)
    if "full_supervised" in names:
        e = np.load(OUT / "metamodels" / "full_supervised_errors.npy")
        sc = axes[1].scatter(th_test[:, 0], th_test[:, 1], c=100 * e, cmap="viridis")
        fig.colorbar(sc, ax=axes[1], label="rel. L2 error (%), full_supervised")
        axes[1].set_xlabel("D")
        axes[1].set_ylabel("r")
    fig.tight_layout()
    fig.savefig(OUT / "metamodel_quality.png", dpi=110)


if __name__ == "__main__":
    main()
