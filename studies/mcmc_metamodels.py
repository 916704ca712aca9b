"""MCMC with metamodel forward models vs the solver, on the bundled 1-D data (one run).

Data: ``physreg.datasets.load_example("fkpp1d_gaussian")`` (8 times x 25 sites, 5 % Gaussian
noise). Model: known introduction and gamma (fixed at the generating values, which are the
metamodel's setup), free D, r and the noise sd sigma. Every run uses the same prior: the
estimator's default on the unconstrained scale over the box D in [0.05, 0.2], r in [0.5, 1.5]
(the metamodels' training box) and the default sigma bounds.

Runs (4 chains each; times exclude compilation; ESS = min over D, r, sigma of bulk ESS):

- ``solver_nuts``: the reference posterior (256-cell finite-volume solver, NUTS);
- ``hyperpinn_nuts``, ``lora_nuts``, ``lora_long_nuts``: NUTS through the metamodels trained
  by ``studies/metamodel_quality.py`` (``full_supervised``, ``lora_supervised`` and
  ``lora_supervised_long``, the low-rank one trained three times longer);
- ``solver_rwmh``: adaptive random-walk Metropolis through the solver (the peer of DA);
- ``hyperpinn+solver``, ``lora+solver``: delayed acceptance, exact solver posterior;
- ``pinn_rwmh`` (only with ``--with-pinn`` or ``--only pinn_rwmh``): warm-started random-walk
  Metropolis through a PINN retrained (physics only, a few L-BFGS iterations) at each proposal,
  ``--pinn-warmup`` / ``--pinn-samples`` per chain, ``--pinn-opt NAME=VALUE`` for
  ``pinn_options``. Measured (``--pinn-opt n_collocation=2048 --pinn-opt n_lbfgs=4000``,
  4 x (200 + 300), results in ``mcmc_metamodels_pinn.{json,md}``): 635 ms per proposal
  (20 L-BFGS iterations) against ~1.5 ms for a solve, ESS/s 130x *below* solver-NUTS, and a
  posterior 2.8x too wide in D (mean 1.3 sd off, R-hat 1.07): 20 iterations do not re-solve
  the PDE after a move, so the network lags behind theta and the chain over-disperses, as the
  lagging inner solve of ``tests/test_mcmc_pinn.py`` does.
- ``pinn_smc`` and its peer ``solver_smc`` (only with ``--with-pinn`` or ``--only``): adaptive
  tempered SMC (``--smc-particles``, ``--smc-mcmc-steps`` random-walk moves per particle per
  tempering step) from the widened Laplace approximation (``smc_start="laplace"``). In
  ``pinn_smc`` every particle carries its own network: trained from the mode's network at its
  starting point, retrained from its own at every move. The ESS of SMC's particles is the bulk
  ESS of the one "chain" of particles (resampling duplicates count once, roughly): read it with
  that in mind. Measured (``--only solver_smc,pinn_smc --tag smc --pinn-opt n_collocation=2048
  --pinn-opt n_lbfgs=4000 --smc-particles 128 --smc-mcmc-steps 3``, results in
  ``mcmc_metamodels_smc.{json,md}``; the test suite shared the machine for 14 of its minutes):
  both needed 2 tempering steps. ``solver_smc``: means within 0.15 sd of solver-NUTS (MC s.e.
  0.12), log evidence 305.86, 2.8x NUTS's ESS/s. ``pinn_smc``: the same verdict as
  ``pinn_rwmh``, reached by another sampler: D posterior 2.8x too wide (sd 0.0052 vs 0.0018),
  mean 1.15 sd off, r 0.37 sd, sigma 0.07 sd; log evidence 305.26. Physics loss 0.0011 at the
  mode, median 0.0043 over the particles: 20 L-BFGS iterations per move leave the networks
  behind theta. Cost: 36 min to train the 128 starting networks (200 iterations each), 31 min
  of SMC (1.6 s per proposal, vmapped over particles: 2.5x the sequential chain's cost per
  iteration), ESS/s 460x below solver-NUTS.

Posterior accuracy against ``solver_nuts``: |difference of means| / posterior sd (target <= 0.1),
95 % interval endpoints difference / sd (target <= 0.2), 1-D Wasserstein distance per marginal
(user units, and / sd). Speed: ESS/s (sampling phase; and warm-up + sampling) and its ratio
to solver-NUTS (target >= 30x); training time (from the metamodel's record: solver data +
training) and the break-even number of effective samples
``N* = train_s / (1 / ess_s_solver - 1 / ess_s_meta)``. DA: fraction of solver calls saved and
ESS/s ratio to solver-RWMH and solver-NUTS.

Writes studies/results/mcmc_metamodels{_TAG}.{json,md}.

    python studies/mcmc_metamodels.py [--samples 1000] [--warmup 500]
    python studies/mcmc_metamodels.py --only pinn_rwmh --tag pinn --pinn-opt n_collocation=2048
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import wasserstein_distance

import physreg
from physreg.inference._diagnostics import summarize
from physreg.metamodels import load_info

OUT = Path(__file__).parent / "results"
MM = OUT / "metamodels"
NAMES = ["D", "r", "sigma"]
FIXED = {"gamma": 1.0, "ic_x": 2.0, "ic_width": 0.3, "ic_mass": 0.5}
BOUNDS = {"D": (0.05, 0.2), "r": (0.5, 1.5)}


def fit_and_record(est, names, *fit_args):
    """Fit an MCMCEstimator (warnings recorded) and summarise its run: ESS, R-hat, ESS/s of
    the sampling phase (and with warm-up), posterior mean / sd / 95 % interval per parameter.
    The machine's 1-minute load average before and after the fit is recorded with the CPU
    time of the sampling phase (ESS per CPU second): a wall-clock ratio measured while other
    jobs share the cores is only as good as their load was steady.
    Returns (record, {name: flat draws})."""
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        est.fit(*fit_args)
    wall = time.perf_counter() - t0
    load1 = os.getloadavg()[0]
    res = est.result_
    post = est.posterior_["posterior"]
    draws = {n: post[n].values.ravel() for n in names}
    summ = summarize(res.samples, names)
    ess = min(summ[n]["ess_bulk"] for n in names)
    out = {"sampler": res.sampler, "timing": res.timing, "fit_wall_s": wall,
           "ess_bulk_min": ess, "r_hat_max": max(summ[n]["r_hat"] for n in names),
           "ess_per_s_sampling": ess / res.timing["sampling_s"],
           "ess_per_s_warmup_sampling": ess / (res.timing["sampling_s"] + res.timing["warmup_s"]),
           "ess_per_cpu_s_sampling": ess / res.timing["sampling_cpu_s"],
           "loadavg_1min_before_after": [load0, load1],
           "summary_unconstrained": summ,
           "mean": {n: float(draws[n].mean()) for n in names},
           "sd": {n: float(draws[n].std(ddof=1)) for n in names},
           "ci95": {n: np.quantile(draws[n], [0.025, 0.975]).tolist() for n in names},
           "warnings": sorted({str(x.message)[:160] for x in w})}
    if res.sampler == "nuts" and "n_steps" in res.sample_stats:
        # chains run in lock step (vmap): a sampling iteration costs the longest trajectory of
        # the chains, so the seconds per lock-step leapfrog step are the cost of one gradient of
        # all chains (plus NUTS's own work), apart from how many steps the sampler takes
        steps = np.asarray(res.sample_stats["n_steps"])
        lock = float(steps.max(0).sum())
        out["nuts"] = {"steps_per_draw_mean": float(steps.mean()),
                       "lockstep_steps": lock,
                       "s_per_lockstep_step": res.timing["sampling_s"] / lock}
    return out, draws


def compare_to_reference(runs, draws, names, ref_name="solver_nuts"):
    """Add to each run its posterior agreement with the reference run (|mean diff| / sd, 95 %
    endpoint diffs / sd, Wasserstein / sd, the Monte Carlo s.e. of the mean difference), the
    targets of issue 5 (0.1 sd, 0.2 sd, 30x), its ESS/s ratios and the break-even number of
    effective samples of a metamodel (``N* = train_s / (1 / ess_s_ref - 1 / ess_s)``)."""
    ref = runs[ref_name]
    for name, r in runs.items():
        if name == ref_name:
            continue
        cmp = {}
        for n in names:
            sd = ref["sd"][n]
            w1 = float(wasserstein_distance(draws[name][n], draws[ref_name][n],
                                            u_weights=draws[name].get("_weights")))
            # Monte Carlo standard error of the difference of means, in reference sds
            ess_a = r["summary_unconstrained"][n]["ess_bulk"]
            ess_b = ref["summary_unconstrained"][n]["ess_bulk"]
            cmp[n] = {"mean_diff_over_sd": abs(r["mean"][n] - ref["mean"][n]) / sd,
                      "ci_lower_diff_over_sd": abs(r["ci95"][n][0] - ref["ci95"][n][0]) / sd,
                      "ci_upper_diff_over_sd": abs(r["ci95"][n][1] - ref["ci95"][n][1]) / sd,
                      "wasserstein": w1, "wasserstein_over_sd": w1 / sd,
                      "mc_se_mean_diff_over_sd": float(np.hypot(r["sd"][n] / np.sqrt(ess_a),
                                                                sd / np.sqrt(ess_b)) / sd)}
        r["vs_solver_nuts"] = cmp
        r["ess_per_s_ratio_vs_solver_nuts"] = r["ess_per_s_sampling"] / ref["ess_per_s_sampling"]
        r["ess_per_s_ratio_vs_solver_nuts_warmup_sampling"] = (
            r["ess_per_s_warmup_sampling"] / ref["ess_per_s_warmup_sampling"])
        if "ess_per_cpu_s_sampling" in r and "ess_per_cpu_s_sampling" in ref:
            r["ess_per_cpu_s_ratio_vs_solver_nuts"] = (r["ess_per_cpu_s_sampling"]
                                                       / ref["ess_per_cpu_s_sampling"])
        r["targets_met"] = {
            "mean_within_0.1_sd": all(c["mean_diff_over_sd"] <= 0.1 for c in cmp.values()),
            "ci95_endpoints_within_0.2_sd": all(
                max(c["ci_lower_diff_over_sd"], c["ci_upper_diff_over_sd"]) <= 0.2
                for c in cmp.values()),
            "ess_per_s_ratio_at_least_30": r["ess_per_s_ratio_vs_solver_nuts"] >= 30}
        if "metamodel" in r and r["ess_per_s_sampling"] > ref["ess_per_s_sampling"]:
            tr = r["metamodel"]["training_s_incl_solver_data"]
            r["break_even_effective_samples"] = tr / (1.0 / ref["ess_per_s_sampling"]
                                                      - 1.0 / r["ess_per_s_sampling"])


def table_lines(runs, names, ref_name="solver_nuts"):
    """The speed table and the posterior-agreement table (markdown lines)."""
    ref = runs[ref_name]
    nan = float("nan")
    L = [f"| run | draws/chain | ESS | sampling s | ESS/s (sampling) | ratio vs {ref_name} | "
         "ESS/s (warm-up+sampling) | ratio | ESS per CPU s (sampling) | ratio | load avg "
         "before/after | R-hat max |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in runs.items():
        load = r.get("loadavg_1min_before_after", [nan, nan])
        cpu_ratio = r.get("ess_per_cpu_s_ratio_vs_solver_nuts", 1.0 if name == ref_name else nan)
        L.append(f"| {name} | {r['num_samples_per_chain']} | {r['ess_bulk_min']:.0f} | "
                 f"{r['timing']['sampling_s']:.1f} | {r['ess_per_s_sampling']:.1f} | "
                 f"{r.get('ess_per_s_ratio_vs_solver_nuts', 1.0):.1f} | "
                 f"{r['ess_per_s_warmup_sampling']:.1f} | "
                 f"{r.get('ess_per_s_ratio_vs_solver_nuts_warmup_sampling', 1.0):.1f} | "
                 f"{r.get('ess_per_cpu_s_sampling', nan):.1f} | "
                 f"{cpu_ratio:.1f} | "
                 f"{load[0]:.1f} / {load[1]:.1f} | {r['r_hat_max']:.3f} |")
    L += ["", f"Posterior vs {ref_name} (|mean diff| / sd; 95 % CI endpoint diffs / sd; "
          "Wasserstein / sd). Targets: 0.1, 0.2.", "",
          "| run | param | mean | sd | mean diff/sd | MC s.e. of diff/sd | lo diff/sd | hi diff/sd "
          "| W1/sd |", "|---|---|---|---|---|---|---|---|---|"]
    for n in names:
        L.append(f"| {ref_name} | {n} | {ref['mean'][n]:.4g} | {ref['sd'][n]:.3g} | | | | | |")
    for name, r in runs.items():
        for n, c in r.get("vs_solver_nuts", {}).items():
            L.append(f"| {name} | {n} | {r['mean'][n]:.4g} | {r['sd'][n]:.3g} | "
                     f"{c['mean_diff_over_sd']:.3f} | {c['mc_se_mean_diff_over_sd']:.3f} | "
                     f"{c['ci_lower_diff_over_sd']:.3f} | "
                     f"{c['ci_upper_diff_over_sd']:.3f} | {c['wasserstein_over_sd']:.3f} |")
    return L


def da_record(est) -> dict:
    """What a delayed-acceptance fit (``forward="...+solver"``) saved: the fraction of solver
    calls avoided, the two stages' acceptance rates and the solver calls made."""
    info = est.result_.info
    return {k: float(np.sum(info[k])) if k.startswith("exact") else info[k]
            for k in ("fraction_exact_saved", "stage1_acceptance", "stage2_acceptance",
                      "acceptance", "exact_evals_sampling", "exact_evals_warmup")}


def importance_record(est, rec, names) -> tuple[dict, dict]:
    """A metamodel chain's record after ``est.importance_correct()``: weighted posterior mean,
    sd and 95 % interval (user units), the chain's bulk ESS scaled by the weights' efficiency
    (Kish ESS / draws), and ESS/s over the sampling phase plus the solver solves of the
    reweighting. Returns (record, {name: draws, "_weights": weights})."""
    from physreg.mcmc import weighted_quantile

    imp = est.importance_
    w = imp["weight"].values
    space = est.space_
    user = np.asarray(space.to_user(imp["z"].values))
    draws = {n: user[:, space.free.index(n)] for n in names}
    frac = imp.attrs["ess_fraction"]
    summ = {n: {**v, "ess_bulk": v["ess_bulk"] * frac}
            for n, v in rec["summary_unconstrained"].items()}
    ess = min(summ[n]["ess_bulk"] for n in names)
    timing = dict(rec["timing"])
    timing["sampling_s"] = rec["timing"]["sampling_s"] + imp.attrs["solver_s"]
    mean = {n: float(np.sum(w * draws[n])) for n in names}
    out = {**{k: v for k, v in rec.items() if k not in ("nuts", "warnings")},
           "summary_unconstrained": summ, "ess_bulk_min": ess, "timing": timing,
           "ess_per_s_sampling": ess / timing["sampling_s"],
           "ess_per_s_warmup_sampling": ess / (timing["sampling_s"] + timing["warmup_s"]),
           "mean": mean,
           "sd": {n: float(np.sqrt(np.sum(w * (draws[n] - mean[n]) ** 2))) for n in names},
           "ci95": {n: [weighted_quantile(draws[n], w, q) for q in (0.025, 0.975)]
                    for n in names},
           "importance": {k: v if isinstance(v, str) else float(v)
                          for k, v in imp.attrs.items()}}
    out.pop("ess_per_cpu_s_sampling", None)
    return out, {**draws, "_weights": w}


def run(name, forward, sampler, metamodel, ds, args):
    n_samp = args.samples * (2 if sampler == "rwmh" or forward.endswith("+solver") else 1)
    n_warm = args.warmup
    extra = {}
    if forward == "pinn":
        n_samp, n_warm = args.pinn_samples, args.pinn_warmup
        extra["pinn_options"] = dict(args.pinn_opt)
    if sampler == "smc":
        extra.update(smc_particles=args.smc_particles, smc_mcmc_steps=args.smc_mcmc_steps,
                     smc_start="laplace")
    est = physreg.MCMCEstimator(forward=forward, sampler=sampler, metamodel=metamodel,
                                initial="gaussian", t0=0.0, fixed=FIXED, bounds=BOUNDS,
                                num_chains=4, num_warmup=n_warm, num_samples=n_samp,
                                random_state=0, **extra)
    out, draws = fit_and_record(est, NAMES, ds)
    out.update(forward=forward,
               num_samples_per_chain=int(est.posterior_["posterior"].sizes["draw"]))
    res = est.result_
    if forward == "pinn":
        phys = np.asarray(res.sample_stats["physics_loss"])
        if sampler == "smc":
            n_prop = (args.smc_particles * args.smc_mcmc_steps
                      * (res.info["n_tempering_steps"] + 1))
            acc = res.info["final_acceptance"]
        else:
            n_prop, acc = 4 * n_samp, res.info["acceptance"]
        out["pinn"] = {"options": {**est._PINN_DEFAULTS, **dict(args.pinn_opt)},
                       "first_training_s": est.pinn_train_s_,
                       "physics_loss_at_mode": est.pinn_physics_loss_,
                       "physics_loss_draws_median": float(np.median(phys)),
                       "physics_loss_draws_max": float(phys.max()),
                       "acceptance": acc,
                       "s_per_proposal": res.timing["sampling_s"] / n_prop}
    if sampler == "smc":
        out["smc"] = {"log_evidence": est.log_evidence_,
                      "n_tempering_steps": res.info["n_tempering_steps"],
                      "final_acceptance": res.info["final_acceptance"],
                      "particles": args.smc_particles, "mcmc_steps": args.smc_mcmc_steps}
    if forward.endswith("+solver"):
        out["da"] = da_record(est)
    print(name, json.dumps({k: out[k] for k in ("ess_bulk_min", "ess_per_s_sampling", "mean",
                                                "timing")}, default=float), flush=True)
    return out, draws


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--only", default="")
    ap.add_argument("--tag", default="", help="suffix of the output files")
    ap.add_argument("--with-pinn", action="store_true")
    ap.add_argument("--pinn-warmup", type=int, default=200)
    ap.add_argument("--pinn-samples", type=int, default=300)
    ap.add_argument("--smc-particles", type=int, default=128)
    ap.add_argument("--smc-mcmc-steps", type=int, default=3)
    ap.add_argument("--pinn-opt", action="append", default=[], type=_option,
                    help="NAME=VALUE of MCMCEstimator(pinn_options=...), repeatable")
    args = ap.parse_args()
    ds = physreg.datasets.load_example("fkpp1d_gaussian")
    plan = [("solver_nuts", "solver", "nuts", None),
            ("hyperpinn_nuts", "hyperpinn", "nuts", MM / "full_supervised"),
            ("lora_nuts", "lora", "nuts", MM / "lora_supervised"),
            ("lora_long_nuts", "lora", "nuts", MM / "lora_supervised_long"),
            ("solver_rwmh", "solver", "rwmh", None),
            ("hyperpinn+solver", "hyperpinn+solver", "rwmh", MM / "full_supervised"),
            ("lora+solver", "lora+solver", "rwmh", MM / "lora_supervised"),
            ("pinn_rwmh", "pinn", "rwmh", None),
            ("solver_smc", "solver", "smc", None),
            ("pinn_smc", "pinn", "smc", None)]
    only = [s for s in args.only.split(",") if s]
    results, draws = {"settings": vars(args), "runs": {},
                      "command": " ".join(["python", "studies/mcmc_metamodels.py",
                                           *sys.argv[1:]])}, {}
    for name, fwd, sampler, mm in plan:
        if only and name not in only and name != "solver_nuts":
            continue
        if name in ("pinn_rwmh", "solver_smc", "pinn_smc") and not (args.with_pinn
                                                                    or name in only):
            continue
        results["runs"][name], draws[name] = run(name, fwd, sampler,
                                                 None if mm is None else str(mm), ds, args)
        if mm is not None:
            rec = load_info(mm)["info"]
            results["runs"][name]["metamodel"] = {
                "path": str(mm.relative_to(OUT.parent.parent)),
                "train_s": rec["train_s"],
                "training_s_incl_solver_data": rec["training_s_incl_solver_data"],
                "rel_l2_median": rec["rel_l2_median"], "rel_l2_p95": rec["rel_l2_p95"]}
    compare_to_reference(results["runs"], draws, NAMES)
    for name, r in results["runs"].items():
        if name.endswith("+solver") and "solver_rwmh" in results["runs"]:
            rw = results["runs"]["solver_rwmh"]
            r["ess_per_s_ratio_vs_solver_rwmh"] = (r["ess_per_s_sampling"]
                                                   / rw["ess_per_s_sampling"])
    stem = "mcmc_metamodels" + (f"_{args.tag}" if args.tag else "")
    (OUT / f"{stem}.json").write_text(json.dumps(results, indent=2, default=float))
    write_md(results, stem)


def _option(text):
    name, _, value = text.partition("=")
    return name, ast.literal_eval(value)


def metamodel_line(name, r, at_observations=False, suffix=""):
    """The results-file line describing run ``name``'s metamodel (accuracy, training time,
    break-even effective samples)."""
    m = r["metamodel"]
    obs = (f", at the observations {100 * m['obs_rel_l2_median']:.2f} %"
           if at_observations else "")
    return (f"- {name}: metamodel {m['path']} (median rel. L2 "
            f"{100 * m['rel_l2_median']:.2f} %, p95 {100 * m['rel_l2_p95']:.2f} %{obs}), "
            f"training {m['training_s_incl_solver_data']:.0f} s incl. solver data; break-even "
            f"{r.get('break_even_effective_samples', float('nan')):.0f} effective "
            f"samples{suffix}.")


def write_md(results, stem="mcmc_metamodels"):
    runs = results["runs"]
    L = ["# MCMC through metamodels vs the solver (bundled 1-D data, one run)", "",
         "Free D, r, sigma; 4 chains; ESS = min bulk ESS over the three; times exclude "
         "compilation. Reference: solver NUTS. ESS/s is per wall-clock second; ESS per CPU s "
         "divides by the process's CPU time instead (less sensitive to other jobs on the "
         "machine, whose 1-minute load average before and after each fit is shown).", ""]
    L += table_lines(runs, NAMES)
    L += [""]
    for name, r in runs.items():
        if "metamodel" in r:
            L.append(metamodel_line(name, r))
        if "nuts" in r:
            q = r["nuts"]
            L.append(f"- {name}: NUTS {q['steps_per_draw_mean']:.2f} leapfrog steps per draw "
                     f"(mean over chains), {q['lockstep_steps']:.0f} lock-step steps of the "
                     f"4 chains, {1e6 * q['s_per_lockstep_step']:.0f} us each.")
        if "pinn" in r:
            q = r["pinn"]
            L.append(f"- {name}: first training {q['first_training_s']:.0f} s (physics loss "
                     f"{q['physics_loss_at_mode']:.2g} at the mode; median over draws "
                     f"{q['physics_loss_draws_median']:.2g}, max "
                     f"{q['physics_loss_draws_max']:.2g}); {q['s_per_proposal'] * 1e3:.0f} ms "
                     f"per proposal; acceptance {q['acceptance']:.3f}; options "
                     f"{q['options']}.")
        if "smc" in r:
            q = r["smc"]
            L.append(f"- {name}: SMC {q['particles']} particles, {q['mcmc_steps']} moves per "
                     f"particle per step, {q['n_tempering_steps']} tempering steps from the "
                     f"widened Laplace approximation; log evidence {q['log_evidence']:.2f}; "
                     f"final acceptance {q['final_acceptance']:.3f}.")
        if "da" in r:
            d = r["da"]
            L.append(f"- {name}: solver calls saved {100 * d['fraction_exact_saved']:.1f} % "
                     f"(stage-1 acceptance {d['stage1_acceptance']:.3f}, stage-2 "
                     f"{d['stage2_acceptance']:.3f}); ESS/s ratio vs solver-RWMH "
                     f"{r.get('ess_per_s_ratio_vs_solver_rwmh', float('nan')):.2f}, vs "
                     f"solver-NUTS {r['ess_per_s_ratio_vs_solver_nuts']:.2f}.")
    cmd = results.get("command", "python studies/mcmc_metamodels.py")
    L += ["", f"Reproduce: `python studies/metamodel_quality.py && {cmd}`."]
    (OUT / f"{stem}.md").write_text("\n".join(L) + "\n")


if __name__ == "__main__":
    main()
