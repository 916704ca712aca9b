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
  metamodel_quality_2d.py), kept to show what that does to the posterior.

Posterior accuracy against ``solver_nuts``: |difference of means| / reference sd (target
<= 0.1) and 95 % interval endpoint differences / sd (target <= 0.2), with the Monte Carlo
standard error of the mean difference; speed: ESS/s of the sampling phase and its ratio to
solver-NUTS (target >= 30x), and the same with warm-up included.

Writes studies/results/mcmc_metamodels_2d.{json,md}.

    python studies/metamodel_quality_2d.py && python studies/mcmc_metamodels_2d.py \
        [--chains 4] [--warmup 300] [--samples 500] [--only hyperpinn_nuts]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import wasserstein_distance

import physreg
from physreg.inference._diagnostics import summarize
from physreg.likelihoods import Poisson
from physreg.metamodels import load_info

OUT = Path(__file__).parent / "results"
MM = OUT / "metamodels"
NAMES = ["D", "r", "r_elevation"]
FIXED = {"gamma": 1.0, "ic_x": 4.0, "ic_y": 6.0, "ic_width": 0.5, "ic_mass": 5.0}
BOUNDS = {"D": (0.5, 2.0), "r": (0.5, 1.5), "r_elevation": (-0.6, 0.0)}


def run(name, forward, metamodel, obs, cov, args):
    est = physreg.MCMCEstimator(forward=forward, sampler="nuts", metamodel=metamodel,
                                likelihood=Poisson(kappa=10.0), growth_covariates=("elevation",),
                                initial="gaussian", t0=0.0, fixed=FIXED, bounds=BOUNDS,
                                grid=(24, 40), num_chains=args.chains, num_warmup=args.warmup,
                                num_samples=args.samples, random_state=0)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        est.fit(obs, covariates=cov)
    wall = time.perf_counter() - t0
    res = est.result_
    post = est.posterior_["posterior"]
    draws = {n: post[n].values.ravel() for n in NAMES}
    summ = summarize(res.samples, NAMES)
    ess = min(summ[n]["ess_bulk"] for n in NAMES)
    out = {"forward": forward, "sampler": res.sampler, "num_chains": args.chains,
           "num_warmup": args.warmup, "num_samples_per_chain": args.samples,
           "timing": res.timing, "fit_wall_s": wall, "solver_plan": est.solver_.plan(
               np.unique(np.asarray(obs.time.values, float)), 0.0),
           "ess_bulk_min": ess, "r_hat_max": max(summ[n]["r_hat"] for n in NAMES),
           "ess_per_s_sampling": ess / res.timing["sampling_s"],
           "ess_per_s_warmup_sampling": ess / (res.timing["sampling_s"] + res.timing["warmup_s"]),
           "summary_unconstrained": summ,
           "map": {n: float(est.map_.sel(param=n)) for n in NAMES},
           "mean": {n: float(draws[n].mean()) for n in NAMES},
           "sd": {n: float(draws[n].std(ddof=1)) for n in NAMES},
           "ci95": {n: np.quantile(draws[n], [0.025, 0.975]).tolist() for n in NAMES},
           "warnings": sorted({str(x.message)[:160] for x in w})}
    print(name, json.dumps({k: out[k] for k in ("ess_bulk_min", "ess_per_s_sampling", "mean",
                                                "sd", "timing")}, default=float), flush=True)
    return out, draws


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    obs, cov = physreg.datasets.load_example("fkpp2d_poisson")
    plan = [("solver_nuts", "solver", None),
            ("hyperpinn_nuts", "hyperpinn", MM / "2d_full_log"),
            ("lora_nuts", "lora", MM / "2d_lora_log"),
            ("hyperpinn_linear_nuts", "hyperpinn", MM / "2d_full")]
    only = [s for s in args.only.split(",") if s]
    results, draws = {"settings": vars(args), "runs": {}}, {}
    for name, fwd, mm in plan:
        if only and name not in only and name != "solver_nuts":
            continue
        if mm is not None and not mm.with_suffix(".eqx").is_file():
            print(f"{name}: {mm}.eqx missing (run studies/metamodel_quality_2d.py), skipped")
            continue
        results["runs"][name], draws[name] = run(name, fwd, None if mm is None else str(mm),
                                                 obs, cov, args)
        if mm is not None:
            rec = load_info(mm)["info"]
            results["runs"][name]["metamodel"] = {
                "path": str(mm.relative_to(OUT.parent.parent)),
                "train_s": rec["train_s"],
                "training_s_incl_solver_data": rec["training_s_incl_solver_data"],
                "rel_l2_median": rec["rel_l2_median"], "rel_l2_p95": rec["rel_l2_p95"],
                "obs_rel_l2_median": rec["obs_rel_l2_median"]}
    ref = results["runs"]["solver_nuts"]
    for name, r in results["runs"].items():
        if name == "solver_nuts":
            continue
        cmp = {}
        for n in NAMES:
            sd = ref["sd"][n]
            cmp[n] = {"mean_diff_over_sd": abs(r["mean"][n] - ref["mean"][n]) / sd,
                      "ci_lower_diff_over_sd": abs(r["ci95"][n][0] - ref["ci95"][n][0]) / sd,
                      "ci_upper_diff_over_sd": abs(r["ci95"][n][1] - ref["ci95"][n][1]) / sd,
                      "wasserstein_over_sd": float(wasserstein_distance(
                          draws[name][n], draws["solver_nuts"][n])) / sd}
            ess_a = r["summary_unconstrained"][n]["ess_bulk"]
            ess_b = ref["summary_unconstrained"][n]["ess_bulk"]
            cmp[n]["mc_se_mean_diff_over_sd"] = float(np.hypot(r["sd"][n] / np.sqrt(ess_a),
                                                               sd / np.sqrt(ess_b)) / sd)
        r["vs_solver_nuts"] = cmp
        r["targets_met"] = {
            "mean_within_0.1_sd": all(c["mean_diff_over_sd"] <= 0.1 for c in cmp.values()),
            "ci95_endpoints_within_0.2_sd": all(
                max(c["ci_lower_diff_over_sd"], c["ci_upper_diff_over_sd"]) <= 0.2
                for c in cmp.values())}
        r["ess_per_s_ratio_vs_solver_nuts"] = r["ess_per_s_sampling"] / ref["ess_per_s_sampling"]
        r["ess_per_s_ratio_vs_solver_nuts_warmup_sampling"] = (
            r["ess_per_s_warmup_sampling"] / ref["ess_per_s_warmup_sampling"])
        r["targets_met"]["ess_per_s_ratio_at_least_30"] = (
            r["ess_per_s_ratio_vs_solver_nuts"] >= 30)
        if "metamodel" in r and r["ess_per_s_sampling"] > ref["ess_per_s_sampling"]:
            tr = r["metamodel"]["training_s_incl_solver_data"]
            r["break_even_effective_samples"] = tr / (1.0 / ref["ess_per_s_sampling"]
                                                      - 1.0 / r["ess_per_s_sampling"])
    (OUT / "mcmc_metamodels_2d.json").write_text(json.dumps(results, indent=2, default=float))
    write_md(results)


def write_md(results):
    runs = results["runs"]
    ref = runs["solver_nuts"]
    st = results["settings"]
    L = ["# MCMC through 2-D metamodels vs the solver (bundled fkpp2d_poisson data, one run)", "",
         f"Free D, r, r_elevation; NUTS, {st['chains']} chains, {st['warmup']} warm-up, "
         f"{st['samples']} draws each; ESS = min bulk ESS over the three; times exclude "
         "compilation. Reference: solver NUTS (24 x 40 cells).", "",
         "| run | ESS | sampling s | ESS/s (sampling) | ratio vs solver-NUTS | ESS/s (warm-up+"
         "sampling) | ratio | R-hat max |", "|---|---|---|---|---|---|---|---|"]
    for name, r in runs.items():
        L.append(f"| {name} | {r['ess_bulk_min']:.0f} | {r['timing']['sampling_s']:.1f} | "
                 f"{r['ess_per_s_sampling']:.1f} | "
                 f"{r.get('ess_per_s_ratio_vs_solver_nuts', 1.0):.1f} | "
                 f"{r['ess_per_s_warmup_sampling']:.1f} | "
                 f"{r.get('ess_per_s_ratio_vs_solver_nuts_warmup_sampling', 1.0):.1f} | "
                 f"{r['r_hat_max']:.3f} |")
    L += ["", "Posterior vs solver-NUTS (|mean diff| / sd; 95 % CI endpoint diffs / sd; "
          "Wasserstein / sd). Targets: 0.1, 0.2.", "",
          "| run | param | mean | sd | mean diff/sd | MC s.e. of diff/sd | lo diff/sd | hi diff/sd "
          "| W1/sd |", "|---|---|---|---|---|---|---|---|---|"]
    for n in NAMES:
        L.append(f"| solver_nuts | {n} | {ref['mean'][n]:.4g} | {ref['sd'][n]:.3g} | | | | | |")
    for name, r in runs.items():
        for n, c in r.get("vs_solver_nuts", {}).items():
            L.append(f"| {name} | {n} | {r['mean'][n]:.4g} | {r['sd'][n]:.3g} | "
                     f"{c['mean_diff_over_sd']:.3f} | {c['mc_se_mean_diff_over_sd']:.3f} | "
                     f"{c['ci_lower_diff_over_sd']:.3f} | "
                     f"{c['ci_upper_diff_over_sd']:.3f} | {c['wasserstein_over_sd']:.3f} |")
    L += [""]
    for name, r in runs.items():
        if "metamodel" in r:
            m = r["metamodel"]
            L.append(f"- {name}: metamodel {m['path']} (median rel. L2 "
                     f"{100 * m['rel_l2_median']:.2f} %, p95 {100 * m['rel_l2_p95']:.2f} %, "
                     f"at the observations {100 * m['obs_rel_l2_median']:.2f} %), training "
                     f"{m['training_s_incl_solver_data']:.0f} s incl. solver data; break-even "
                     f"{r.get('break_even_effective_samples', float('nan')):.0f} effective "
                     f"samples; targets met: {r['targets_met']}.")
    L += ["", "Reproduce: `python studies/metamodel_quality_2d.py && python "
          "studies/mcmc_metamodels_2d.py`."]
    (OUT / "mcmc_metamodels_2d.md").write_text("\n".join(L) + "\n")


if __name__ == "__main__":
    main()
