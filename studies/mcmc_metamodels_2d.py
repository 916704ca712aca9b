"""MCMC through 2-D metamodels vs the solver, on the bundled 2-D data with a covariate (one run).

Data: ``physreg.datasets.load_example("fkpp2d_poisson")`` (60 sites x 5 times, Poisson counts
of mean 10 u, r(x, y) = r + r_elevation * elevation(x, y)). Model: known introduction (centre
(4, 6), width 0.5, mass 5 at t = 0), gamma = 1 and kappa = 10 fixed at the generating values
(the metamodels' setup); free D, r, r_elevation over the metamodels' training box D in
[0.5, 2], r in [0.5, 1.5], r_elevation in [-0.6, 0], the estimator's default prior on it.

Runs (NUTS, same chains / warm-up / draws, times exclude compilation; ESS = min bulk ESS over
the three parameters):

- ``solver_nuts``: the reference posterior through the 24 x 40-cell finite-volume solver (the
  grid the metamodels imitate; RKC steps of 0.04 yr);
- ``hyperpinn_nuts``, ``lora_nuts``: NUTS through the positive-output metamodels trained by
  ``studies/metamodel_quality_2d.py`` (``2d_full_log`` and ``2d_lora_log``; a missing one is
  skipped);
- ``hyperpinn_linear_nuts``: NUTS through ``2d_full`` (linear output ``u = H + t' N``, squared
  error of u): small L2 error, but negative u at one observed count (see
  metamodel_quality_2d.py), kept to show what that does to the posterior;
- ``solver_rwmh``: adaptive random-walk Metropolis through the solver (twice the draws), the
  exact posterior for forward-only proposals (a solve without its gradient: ~3.5 ms);
- ``hyperpinn_long+solver``: delayed acceptance (Christen & Fox 2005): ``2d_full_log_long``
  screens each random-walk proposal, the solver decides on the survivors; the exact solver
  posterior. Compare it with ``--reference solver_rwmh`` (then only the runs named in
  ``--only`` and the reference are made).
- ``hyperpinn_focus_nuts``: NUTS through ``2d_full_log_focus`` (half its training theta near
  the solver MLE, see metamodel_quality_2d.py); ``hyperpinn_focus90_nuts``: through
  ``2d_full_log_focus90`` (90 % of them there; its training diverged midway and recovered
  only partly), ``hyperpinn_focus90c_nuts``: ``2d_full_log_focus90_clip`` (the same, with
  the gradient clipped).
- ``--importance``: each metamodel chain's draws reweighted to the solver posterior after
  the run (``MCMCEstimator.importance_correct``: one solver solve per draw, no gradient),
  reported as ``<name>+is``; its ESS is the chain's times the weights' efficiency, its time
  the sampling plus the solves. ``--surrogate quadratic`` adds ``<name>+is-quadratic``: the
  same draws weighted by a quadratic fitted to the exact log weights of ``--n-design`` (32)
  draws, 32 solves instead of one per draw.

Measured (``--only hyperpinn_focus_nuts,hyperpinn_focus90c_nuts --reference solver_nuts
--samples 1500 --importance --surrogate quadratic --tag focus_nuts_isq``, one run, load ~3.7):
the focus metamodel alone is 0.198 sd off in D's mean (focus90_clip 0.123; r and r_elevation
within 0.1) at 54x (43x) solver-NUTS's ESS/s; with the quadratic weights every mean is within
0.034 sd and every 95 % interval end within 0.085 sd at 51.5x (42.5x); exact weights give the
same within 0.002 sd at 25x (21x).

Posterior accuracy against ``solver_nuts``: |difference of means| / reference sd (target
<= 0.1) and 95 % interval endpoint differences / sd (target <= 0.2), with the Monte Carlo
standard error of the mean difference; speed: ESS/s of the sampling phase and its ratio to
solver-NUTS (target >= 30x), and the same with warm-up included.

Writes studies/results/mcmc_metamodels_2d.{json,md}.

    python studies/metamodel_quality_2d.py && python studies/mcmc_metamodels_2d.py \
        [--chains 4] [--warmup 300] [--samples 500] [--only hyperpinn_nuts]
    python studies/mcmc_metamodels_2d.py --only hyperpinn_long+solver --reference solver_rwmh \
        --samples 1500 --warmup 500 --tag da
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from mcmc_metamodels import (  # same folder (run as a script)
    compare_to_reference,
    da_record,
    fit_and_record,
    importance_record,
    metamodel_line,
    table_lines,
)

import physreg
from physreg.likelihoods import Poisson
from physreg.metamodels import load_info

OUT = Path(__file__).parent / "results"
MM = OUT / "metamodels"
NAMES = ["D", "r", "r_elevation"]
FIXED = {"gamma": 1.0, "ic_x": 4.0, "ic_y": 6.0, "ic_width": 0.5, "ic_mass": 5.0}
BOUNDS = {"D": (0.5, 2.0), "r": (0.5, 1.5), "r_elevation": (-0.6, 0.0)}
# the model every run (and metamodel_quality_2d.focus_box) fits: the metamodels' setup
MODEL = dict(likelihood=Poisson(kappa=10.0), growth_covariates=("elevation",),
             initial="gaussian", t0=0.0, fixed=FIXED, bounds=BOUNDS, grid=(24, 40))


def run(name, forward, sampler, metamodel, obs, cov, args):
    # random-walk chains (and delayed acceptance) get twice the draws, as in 1-D
    n_samp = args.samples * (2 if sampler == "rwmh" else 1)
    est = physreg.MCMCEstimator(forward=forward, sampler=sampler, metamodel=metamodel,
                                **MODEL, num_chains=args.chains, num_warmup=args.warmup,
                                num_samples=n_samp, random_state=0)
    out, draws = fit_and_record(est, NAMES, obs, cov)
    out.update(forward=forward, sampler=sampler, num_chains=args.chains,
               num_warmup=args.warmup, num_samples_per_chain=n_samp,
               solver_plan=est.solver_.plan(np.unique(np.asarray(obs.time.values, float)), 0.0),
               map={n: float(est.map_.sel(param=n)) for n in NAMES})
    if forward.endswith("+solver"):
        out["da"] = da_record(est)
    print(name, json.dumps({k: out[k] for k in ("ess_bulk_min", "ess_per_s_sampling", "mean",
                                                "sd", "timing")}, default=float), flush=True)
    return out, draws, est


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--only", default="")
    ap.add_argument("--tag", default="", help="suffix of the output files")
    ap.add_argument("--importance", action="store_true",
                    help="also reweight each metamodel chain to the solver posterior "
                         "(MCMCEstimator.importance_correct): runs '<name>+is'")
    ap.add_argument("--surrogate", choices=("linear", "quadratic"), default=None,
                    help="with --importance, also the weights from a polynomial fitted to "
                         "--n-design solves (importance_correct(surrogate=...)): runs "
                         "'<name>+is-<surrogate>'")
    ap.add_argument("--n-design", type=int, default=32)
    ap.add_argument("--reference", default="solver_nuts", choices=("solver_nuts", "solver_rwmh"),
                    help="the exact-posterior run the others are compared with (always run)")
    args = ap.parse_args()
    obs, cov = physreg.datasets.load_example("fkpp2d_poisson")
    plan = [("solver_nuts", "solver", "nuts", None),
            ("solver_rwmh", "solver", "rwmh", None),
            ("hyperpinn_nuts", "hyperpinn", "nuts", MM / "2d_full_log"),
            ("lora_nuts", "lora", "nuts", MM / "2d_lora_log"),
            ("hyperpinn_linear_nuts", "hyperpinn", "nuts", MM / "2d_full"),
            ("hyperpinn_long_nuts", "hyperpinn", "nuts", MM / "2d_full_log_long"),
            ("hyperpinn_long+solver", "hyperpinn+solver", "rwmh", MM / "2d_full_log_long"),
            ("hyperpinn_focus_nuts", "hyperpinn", "nuts", MM / "2d_full_log_focus"),
            ("hyperpinn_focus90_nuts", "hyperpinn", "nuts", MM / "2d_full_log_focus90"),
            ("hyperpinn_focus90c_nuts", "hyperpinn", "nuts", MM / "2d_full_log_focus90_clip")]
    only = [s for s in args.only.split(",") if s]
    results, draws = {"settings": vars(args), "runs": {}}, {}
    for name, fwd, sampler, mm in plan:
        if only and name not in only and name != args.reference:
            continue
        if not only and name == "solver_rwmh" and args.reference != name:
            continue
        if mm is not None and not mm.with_suffix(".eqx").is_file():
            print(f"{name}: {mm}.eqx missing (run studies/metamodel_quality_2d.py), skipped")
            continue
        results["runs"][name], draws[name], est = run(
            name, fwd, sampler, None if mm is None else str(mm), obs, cov, args)
        if mm is not None:
            rec = load_info(mm)["info"]
            results["runs"][name]["metamodel"] = {
                "path": str(mm.relative_to(OUT.parent.parent)),
                "train_s": rec["train_s"],
                "training_s_incl_solver_data": rec["training_s_incl_solver_data"],
                "rel_l2_median": rec["rel_l2_median"], "rel_l2_p95": rec["rel_l2_p95"],
                "obs_rel_l2_median": rec["obs_rel_l2_median"]}
        if args.importance and fwd in ("hyperpinn", "lora"):
            est.importance_correct()
            results["runs"][name + "+is"], draws[name + "+is"] = importance_record(
                est, results["runs"][name], NAMES)
            print(name + "+is", json.dumps(results["runs"][name + "+is"]["importance"]),
                  flush=True)
            if args.surrogate:
                tag = f"{name}+is-{args.surrogate}"
                est.importance_correct(surrogate=args.surrogate, n_design=args.n_design)
                results["runs"][tag], draws[tag] = importance_record(
                    est, results["runs"][name], NAMES)
                print(tag, json.dumps(results["runs"][tag]["importance"]), flush=True)
    compare_to_reference(results["runs"], draws, NAMES, ref_name=args.reference)
    stem = "mcmc_metamodels_2d" + (f"_{args.tag}" if args.tag else "")
    (OUT / f"{stem}.json").write_text(json.dumps(results, indent=2, default=float))
    write_md(results, stem)


def write_md(results, stem="mcmc_metamodels_2d"):
    runs = results["runs"]
    st = results["settings"]
    L = ["# MCMC through 2-D metamodels vs the solver (bundled fkpp2d_poisson data, one run)", "",
         f"Free D, r, r_elevation; NUTS, {st['chains']} chains, {st['warmup']} warm-up, "
         f"{st['samples']} draws each (random-walk and delayed-acceptance chains twice as "
         "many); ESS = min bulk ESS over the three; times exclude compilation. Reference: "
         f"{st['reference']} (24 x 40 cells).", ""]
    L += table_lines(runs, NAMES, ref_name=st["reference"])
    L += [""]
    for name, r in runs.items():
        if "da" in r:
            d = r["da"]
            L.append(f"- {name}: delayed acceptance saved {100 * d['fraction_exact_saved']:.0f}% "
                     f"of the solver calls (stage 1 / 2 acceptance {d['stage1_acceptance']:.2f}"
                     f" / {d['stage2_acceptance']:.2f}).")
        if "metamodel" in r:
            L.append(metamodel_line(name, r, at_observations=True,
                                    suffix=f"; targets met: {r['targets_met']}"))
    L += ["", "Reproduce: `python studies/metamodel_quality_2d.py && python "
          "studies/mcmc_metamodels_2d.py`."]
    (OUT / f"{stem}.md").write_text("\n".join(L) + "\n")


if __name__ == "__main__":
    main()
